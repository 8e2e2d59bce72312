"""CircuitBreaker state machine, driven by a fake clock (no sleeping, no server)."""

from __future__ import annotations

import threading

import pytest

from novacache.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(clock: Clock, **kw: object) -> tuple[CircuitBreaker, list[tuple[str, str]]]:
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        threshold=3,
        window=10,
        cooldown=2,
        clock=clock,
        on_state_change=lambda old, new: changes.append((old, new)),
        **kw,  # type: ignore[arg-type]
    )
    return breaker, changes


def test_opens_after_threshold_failures_in_window(clock: Clock) -> None:
    b, changes = make(clock)
    b.record_failure()
    b.record_failure()
    assert b.state == "closed"
    assert b.allow()
    b.record_failure()
    assert b.state == "open"
    assert changes == [("closed", "open")]
    assert not b.allow()
    assert b.rejected == 1
    assert b.opened == 1


def test_failures_outside_the_window_are_forgotten(clock: Clock) -> None:
    b, _ = make(clock)
    b.record_failure()
    b.record_failure()
    clock.tick(11)
    b.record_failure()
    assert b.state == "closed"


def test_success_resets_the_failure_count(clock: Clock) -> None:
    b, _ = make(clock)
    b.record_failure()
    b.record_failure()
    b.record_success()
    b.record_failure()
    b.record_failure()
    assert b.state == "closed"


def test_half_open_lets_exactly_one_probe_through(clock: Clock) -> None:
    b, changes = make(clock)
    for _ in range(3):
        b.record_failure()
    clock.tick(1.9)
    assert not b.allow()
    clock.tick(0.2)
    assert b.state == "half_open"
    assert b.allow()  # the probe
    assert not b.allow()  # everybody else keeps failing fast
    b.record_success()
    assert b.state == "closed"
    assert b.allow()
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_failed_probe_reopens_for_a_new_cooldown(clock: Clock) -> None:
    b, changes = make(clock)
    for _ in range(3):
        b.record_failure()
    clock.tick(2)
    assert b.allow()
    b.record_failure()
    assert b.state == "open"
    clock.tick(1)
    assert not b.allow()
    clock.tick(1)
    assert b.allow()
    assert changes[-2:] == [("half_open", "open"), ("open", "half_open")]
    assert b.opened == 2


def test_lost_probe_is_retried_after_another_cooldown(clock: Clock) -> None:
    b, _ = make(clock)
    for _ in range(3):
        b.record_failure()
    clock.tick(2)
    assert b.allow()  # this probe never reports back (a cancelled coroutine)
    clock.tick(1)
    assert not b.allow()
    clock.tick(1.1)
    assert b.allow()


def test_listener_errors_do_not_break_calls(clock: Clock) -> None:
    def boom(old: str, new: str) -> None:
        raise RuntimeError("metrics down")

    b = CircuitBreaker(threshold=1, cooldown=1, clock=clock, on_state_change=boom)
    b.record_failure()
    assert b.state == "open"


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(cooldown=0)


def test_threads_agree_on_one_probe(clock: Clock) -> None:
    b, _ = make(clock)
    for _ in range(3):
        b.record_failure()
    clock.tick(2)
    barrier = threading.Barrier(8)
    allowed: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        result = b.allow()
        with lock:
            allowed.append(result)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(allowed) == [False] * 7 + [True]


def test_idle_says_when_the_calls_can_be_skipped(clock: Clock) -> None:
    """``idle``: closed with no failure on record (allow() is True, record_success()
    changes nothing); the tiers' hot paths read it instead of calling both."""
    breaker, _ = make(clock)
    assert breaker.idle
    breaker.record_failure()
    assert not breaker.idle
    assert breaker.allow()
    breaker.record_success()
    assert breaker.idle
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state == "open"
    assert not breaker.idle
    clock.tick(2)
    assert breaker.allow()  # the probe
    assert not breaker.idle
    breaker.record_success()
    assert breaker.state == "closed"
    assert breaker.idle
