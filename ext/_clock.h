/* The clock of novacache's compiled core.
 *
 * Two readings of one monotonic clock, in seconds as a double:
 *
 *   nc_clock_precise()  the exact time (Linux: CLOCK_MONOTONIC, ~17 ns via the vDSO).
 *   nc_clock_fast()     a cheap reading that is never AHEAD of the precise one and lags it
 *                       by less than nc_clock_slack() seconds (Linux:
 *                       CLOCK_MONOTONIC_COARSE, ~4 ns, one scheduler tick of resolution).
 *
 * Deadlines are computed from the precise clock. A TTL hit reads the fast clock; only when
 * that reading falls within the slack before the deadline does it read the precise clock
 * to decide. So expiry stays exact while a hit far from its deadline costs ~4 ns.
 * Where no cheap coarse clock exists, both readings are the precise clock and the slack
 * is 0.
 */
#ifndef NOVACACHE_CLOCK_H
#define NOVACACHE_CLOCK_H

/* Whether nc_clock_precise() returns, bit for bit, what time.monotonic() would at the
 * same instant: on Linux both read CLOCK_MONOTONIC and convert nanoseconds alike.
 * (macOS and Windows Pythons read other clocks or convert otherwise.) */
#if defined(__linux__)
#define NC_CLOCK_IS_PY_MONOTONIC 1
#else
#define NC_CLOCK_IS_PY_MONOTONIC 0
#endif

#if defined(_WIN32)
#include <windows.h>
static double nc__qpc_period = 0.0;
static void nc_clock_init(void) {
    LARGE_INTEGER f;
    QueryPerformanceFrequency(&f);
    nc__qpc_period = 1.0 / (double)f.QuadPart;
}
static inline double nc_clock_precise(void) {
    LARGE_INTEGER c;
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart * nc__qpc_period;
}
static inline double nc_clock_fast(void) { return nc_clock_precise(); }
static inline double nc_clock_slack(void) { return 0.0; }
static const char *nc_clock_name(void) { return "QueryPerformanceCounter"; }

#else
#include <time.h>
static inline double nc__ts(const struct timespec *ts) {
    return (double)ts->tv_sec + (double)ts->tv_nsec * 1e-9;
}
/* The precise reading is converted exactly as CPython converts it for time.monotonic()
 * (whole nanoseconds, divided once), so a deadline computed here compares with a time
 * a Python caller got from time.monotonic() to the last bit. */
static inline double nc_clock_precise(void) {
    struct timespec ts;
    long long ns;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ns = (long long)ts.tv_sec * 1000000000LL + (long long)ts.tv_nsec;
    if (ns % 1000000000LL == 0)
        return (double)(ns / 1000000000LL);
    return (double)ns / 1e9;
}
#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
static double nc__slack = 0.0;
static void nc_clock_init(void) {
    struct timespec res;
    /* Twice the tick, so a late tick update cannot make the fast reading lag more. */
    if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0)
        nc__slack = 2.0 * nc__ts(&res);
    else
        nc__slack = 0.1;
}
static inline double nc_clock_fast(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return nc__ts(&ts);
}
static inline double nc_clock_slack(void) { return nc__slack; }
static const char *nc_clock_name(void) { return "CLOCK_MONOTONIC_COARSE+CLOCK_MONOTONIC"; }
#else
static void nc_clock_init(void) {}
static inline double nc_clock_fast(void) { return nc_clock_precise(); }
static inline double nc_clock_slack(void) { return 0.0; }
static const char *nc_clock_name(void) { return "CLOCK_MONOTONIC"; }
#endif
#endif

#endif /* NOVACACHE_CLOCK_H */
