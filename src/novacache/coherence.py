"""L1 coherence across processes: the bus that keeps the L1 of every process sharing a
Redis coherent (:class:`InvalidationBus`).

Why pub/sub and not ``CLIENT TRACKING``: tracking needs a dedicated connection per
process and RESP3 push handling or a redirect connection, and it reports keys this
process *read*, key by key; redis-py's client-side cache built on it is refused here
(see ``/work/shared/notes/redis-testing.md``). A pub/sub channel per namespace needs
only the Redis tier's ``publish``/``subscribe`` hooks, works the same on Sentinel and on
a Cluster (messages are broadcast to every node), and lets a write send all the keys
of one call (``set_many``, ``delete_many``, ``invalidate_tags``) in one message: the
batching.

Protocol: every message is msgpack ``[kind, origin, keys]``: kind 0 removes ``keys``
from L1, 1 clears L1, 2 is a heartbeat. ``origin`` is the bus's random id: a process
ignores its own messages (it has already updated its L1). Keys are packed as the tiers
store them (UTF-8 with lone surrogates passed through, see :mod:`novacache.tiers._keys`),
so every ``str`` key can be announced. A batch of keys too large for one message is
announced as a clear.

Loss of the bus: a message published while a subscriber is disconnected is lost, and a
silently frozen connection delivers nothing. So each bus publishes a heartbeat every
``heartbeat`` seconds and expects to *receive its own*: when none arrived for
``timeout`` seconds, or the subscription reported an error, the bus is unhealthy. On
becoming unhealthy it flushes L1; while unhealthy the manager does not fill L1 (reads go
below); when a heartbeat *sent after* it went down comes back it flushes L1 once more
(anything that slipped in meanwhile) and is healthy. So no value is served from L1 more
than about ``timeout + heartbeat`` seconds after an invalidation that this process
missed.

Two threads keep that bound: one publishes the heartbeats (and subscribes again when
needed), the watchdog checks the deadline every ``heartbeat`` seconds. A publish to a
frozen server (SIGSTOP, a stalled network) blocks for the tier's timeouts and retries;
only the publishing thread waits, the watchdog never does, so the loss is seen after
``timeout`` whatever the tier's timeouts are (issue 21).

Cost: every process publishes ``1 / heartbeat`` messages a second on the shared channel
and receives everyone's (with 100 processes and the default 50 ms: 2000 small messages a
second each); raise ``heartbeat`` (and ``timeout``) for large fleets.

Promotion race: a process may read an old value from L2 just before another process
overwrites it, and put it into L1 just after the invalidation arrived. The bus counts the
messages it received (``generation``); the manager reads it before going below and skips
the L1 fill when it changed meanwhile.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import msgpack  # type: ignore[import-untyped]

from ._local import LocalCache
from .errors import EntryTooLarge, TierError

__all__ = ["InvalidationBus"]

#: Stripes of keys of the per-key invalidation counts (a power of 2; see stripes).
STRIPES = 1024

KEYS, CLEAR, HEARTBEAT = 0, 1, 2


class InvalidationBus:
    """Pub/sub of L1 invalidations over a :class:`~novacache.tiers.RedisTier`.

    :param tier: the Redis tier (its ``publish``/``subscribe`` hooks and namespace).
    :param channel: the channel name, under the tier's prefix.
    :param heartbeat: seconds between two heartbeats of this process.
    :param timeout: seconds without receiving our own heartbeat before L1 is flushed.

    The manager given the bus calls :meth:`attach`; nothing is subscribed before.
    """

    def __init__(
        self,
        tier: Any,
        channel: str = "novacache:invalidate",
        *,
        heartbeat: float = 0.05,
        timeout: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < heartbeat < timeout:
            raise ValueError("0 < heartbeat < timeout, in seconds")
        self.tier = tier
        self.channel = channel
        self.heartbeat = heartbeat
        self.timeout = timeout
        self.origin = secrets.token_bytes(8)
        self._clock = clock
        self._local: LocalCache | None = None
        self._subscription: Any = None
        self._sub_errors = 0
        self._last_beat = 0.0  # when our last heartbeat came back
        self._beat_sent = 0.0  # when that heartbeat was sent
        self._down_at = 0.0
        self._healthy = False
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._beater: threading.Thread | None = None
        self._lock = threading.Lock()
        # counters, for metrics and tests
        self.generation = 0  # invalidation messages applied (any kind but heartbeats)
        # The same, per stripe of keys (by hash: STRIPES of them), and the flushes and
        # clears (every key): a reader below L1 compares its key's sum before and after,
        # so an invalidation of another key does not cost it its L1 fill.
        self.stripes: list[int] = [0] * STRIPES
        self.epoch = 0
        self.received = 0  # invalidation messages from other processes
        self.published = 0
        self.flushes = 0
        self.publish_errors = 0

    @property
    def healthy(self) -> bool:
        """Whether invalidations are known to reach this process now."""
        return self._healthy

    def now(self) -> float:
        """The bus's clock (its ``clock``): the time :meth:`heard_since` compares with."""
        return float(self._clock())

    def heard_since(self, when: float) -> bool:
        """Whether the bus is healthy and one of its heartbeats sent after ``when`` (the
        bus's clock, :meth:`now`) came back: the server answered since then."""
        return self._healthy and self._beat_sent > when

    def attach(self, local: LocalCache) -> None:
        """Start serving ``local``: subscribe and start the heartbeat and watchdog
        threads. Never raises because Redis is down: the bus then starts unhealthy and
        retries."""
        self._local = local
        self._subscribe()
        self._beater = threading.Thread(
            target=self._beat, name="novacache-invalidation-heartbeat", daemon=True
        )
        self._watchdog = threading.Thread(
            target=self._watch, name="novacache-invalidation-bus", daemon=True
        )
        self._beater.start()
        self._watchdog.start()

    def _subscribe(self) -> bool:
        try:
            sub = self.tier.subscribe(self.channel, self._on_message)
        except TierError:
            return False
        with self._lock:
            if self._stop.is_set():  # closed while we were connecting
                sub.close()
                return False
            self._sub_errors = 0  # before the watchdog can see the new subscription
            self._subscription = sub
        return True

    # -- receiving --------------------------------------------------------------------

    def _on_message(self, data: bytes) -> None:
        try:
            kind, origin, keys = msgpack.unpackb(data, unicode_errors="surrogatepass")
        except Exception:
            return  # not ours: ignored
        if kind == HEARTBEAT:
            if origin == self.origin and isinstance(keys, float):
                self._beat_sent = keys  # ours carry the time they were sent
                self._last_beat = self._clock()
            return
        if origin == self.origin:
            return
        self.received += 1
        local = self._local
        if local is None:
            return
        with self._lock:  # the watchdog's flushes count too
            self.generation += 1
            if kind == KEYS and isinstance(keys, list):
                stripes = self.stripes
                for key in keys:
                    if type(key) is str:
                        stripes[hash(key) & (STRIPES - 1)] += 1
            else:
                self.epoch += 1
        if kind == KEYS:
            local.delete_many(keys)
        elif kind == CLEAR:
            local.clear()

    def _flush(self) -> None:  # called with self._lock held
        self.generation += 1
        self.epoch += 1  # first: a fill of a read begun before is skipped from here on
        if self._local is not None:
            self._local.clear()
        self.flushes += 1  # flushes done (a reader that sees it sees L1 cleared)

    def _beat(self) -> None:
        """The heartbeat thread: subscribe again when needed, publish a heartbeat every
        ``heartbeat`` seconds. Either may block for the tier's timeouts; the watchdog
        does not wait for this thread."""
        while not self._stop.wait(self.heartbeat):
            if self._subscription is None and not self._subscribe():
                self._set_healthy(False)
                continue
            beat = msgpack.packb([HEARTBEAT, self.origin, float(self._clock())])
            try:
                self.tier.publish(self.channel, beat)
            except TierError:
                self._set_healthy(False)

    def _watch(self) -> None:
        """The watchdog thread: every ``heartbeat`` seconds, the bus is down when the
        subscription failed or our heartbeat has not come back for ``timeout`` seconds,
        and up again once a heartbeat sent after it went down came back. It never calls
        Redis, so a frozen server cannot delay it."""
        while not self._stop.wait(self.heartbeat):
            sub = self._subscription
            if sub is None:
                self._set_healthy(False)
                continue
            if sub.errors != self._sub_errors:
                self._sub_errors = sub.errors
                self._set_healthy(False)  # the connection dropped: messages may be lost
            if self._clock() - self._last_beat >= self.timeout:
                self._set_healthy(False)
            elif not self._healthy and self._beat_sent > self._down_at:
                self._set_healthy(True)  # a heartbeat went round since we went down

    def _set_healthy(self, healthy: bool) -> None:
        with self._lock:
            if healthy == self._healthy:
                return
            if healthy:
                # Coming back: drop whatever was filled while the state changed, before
                # anyone can see the bus healthy (a value filled after that stays).
                self._flush()
                self._healthy = True
            else:
                # Going down: no fill from here on (L1 may miss invalidations), then
                # drop what L1 holds.
                self._healthy = False
                self._down_at = self._clock()
                self._flush()

    # -- sending ----------------------------------------------------------------------

    def publish_keys(self, keys: Iterable[str]) -> None:
        """Tell every other process to drop ``keys`` from its L1 (one message); raises
        ``TierError`` when it could not be published."""
        batch = list(keys)
        if batch:
            try:
                self._publish([KEYS, self.origin, batch])
            except EntryTooLarge:  # more than one message holds: drop everything instead
                self.publish_clear()

    def message_keys(self, keys: Iterable[str]) -> bytes:
        """The message :meth:`publish_keys` would publish for ``keys``, for a caller that
        publishes it itself on this bus's channel (``prefix + channel`` of a tier on the
        same server and prefix, in a pipeline with other commands); it reports the
        outcome with :meth:`count_publish`."""
        return bytes(msgpack.packb([KEYS, self.origin, list(keys)], unicode_errors="surrogatepass"))

    def count_publish(self, ok: bool) -> None:
        """Count a message of :meth:`message_keys` published (``ok``) or lost."""
        if ok:
            self.published += 1
        else:
            self.publish_errors += 1

    def publish_clear(self) -> None:
        """Tell every other process to clear its L1."""
        self._publish([CLEAR, self.origin, None])

    def _publish(self, message: list[Any]) -> None:
        try:
            self.tier.publish(self.channel, msgpack.packb(message, unicode_errors="surrogatepass"))
        except TierError:
            self.publish_errors += 1
            raise
        self.published += 1

    def close(self) -> None:
        """Stop both threads and the subscription (waits about a second at most; a
        heartbeat blocked on a frozen server is left to end on its own, the thread is a
        daemon and publishes nothing more)."""
        with self._lock:
            self._stop.set()
            sub = self._subscription
            self._subscription = None
        deadline = time.monotonic() + 1.0
        for thread in (self._watchdog, self._beater):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if sub is not None:
            sub.close()
        self._healthy = False
