"""L2: the Redis tier, over redis-py (hiredis parser) for standalone, Sentinel and Cluster.

:class:`RedisTier` (threads) and :class:`AsyncRedisTier` (``redis.asyncio``) keep the
tier contract of :mod:`novacache.tiers.base`: frames in, frames out, under a key prefix
(the namespace). Every call goes through a :class:`~novacache.breaker.CircuitBreaker`:
while it is open, calls raise :class:`~novacache.errors.TierUnavailable` at once without
touching the network. No redis-py exception escapes; they become ``TierUnavailable``
(connection refused or lost, failover in progress), ``TierTimeout`` (socket timeout) or
plain ``TierError`` (the server answered with an error: a key of another type written
by someone else, an ACL refusal, a wrong or missing password: "authentication failed").
Only the first two count as failures for the breaker: one failure per tier call that
failed, however many socket timeouts redis-py's ``retries`` paid inside it.

Beyond the contract: a lease lock (``SET NX PX`` and a release script that checks the
token), ``publish``/``subscribe`` hooks for the invalidation bus, tag index sets
(``tag_add``/``tag_members``/``tag_invalidate``), and :func:`hash_tag` so related keys
share a Cluster slot.

Keys: every ``str`` is a key; Redis stores ``prefix + key`` as UTF-8 with lone surrogates
passed through (:mod:`novacache.tiers._keys`), and ``scan`` decodes them back. Leases
and tag sets live beside the keys, under ``prefix`` and the byte 0xff (which no key's
encoding holds), so they never collide with a key.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import inspect
import math
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.cluster
import redis.exceptions as rexc
import redis.sentinel
from redis.backoff import EqualJitterBackoff
from redis.retry import Retry

from ..breaker import CircuitBreaker
from ..errors import (
    ConfigurationError,
    EntryTooLarge,
    TierError,
    TierTimeout,
    TierUnavailable,
)
from ._checks import MAX_TTL
from ._keys import decode_key, encode_key
from ._kit import encoded, prefixed, present
from ._sentinel import AsyncWatchedSentinel, Switch, WatchedSentinel
from .redis_config import RedisConfig

__all__ = ["MAX_BULK_BYTES", "AsyncRedisTier", "RedisConfig", "RedisTier", "hash_tag"]

#: Redis' default ``proto-max-bulk-len``: the largest key or value it accepts (512 MiB).
MAX_BULK_BYTES = 512 * 1024 * 1024

# Tag index sets and leases live in sub-namespaces that begin with the byte 0xff, which
# the encoding of a key never holds (UTF-8, see ._keys): no key can collide with them,
# and ``scan`` never returns them.
_TAG_INFIX = b"\xfftag:"
_LEASE_INFIX = b"\xfflease:"
_SCAN_COUNT = 1000
_DELETE_BATCH = 500
# A tag set outlives its members' TTL by this much: the index is written just before the
# entries, so the entries' expiry falls a little after the TTL counted from the index write.
_TAG_SLACK_MS = 1000
# Members per call of the tag script (Lua's unpack has a stack limit of about 8000).
_TAG_BATCH = 1000

# Adds ARGV[2..] to the tag set KEYS[1] and bounds its life: ARGV[1] is the members' TTL
# in ms, or "" for members without TTL. A set without TTL members keeps no expiry
# (PERSIST); a new set expires with its first members; an existing set's expiry only
# grows (PEXPIRE GT, Redis >= 7; GT never applies to a set without expiry, which is the
# intent: a set holding a member without TTL must not expire). One key: cluster-safe.
_TAG_ADD_LUA = """
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SADD', KEYS[1], unpack(ARGV, 2))
if ARGV[1] == '' then
    redis.call('PERSIST', KEYS[1])
elseif existed == 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
else
    redis.call('PEXPIRE', KEYS[1], ARGV[1], 'GT')
end
return redis.call('PTTL', KEYS[1])
"""

# Deletes the key only if it still holds our token: a lease that expired and was taken by
# someone else is never released by the old holder.
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# Failures of the server or the path to it: these count for the breaker.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    rexc.ConnectionError,
    rexc.ClusterError,  # ClusterDownError, MasterDownError
    rexc.TryAgainError,
    rexc.ReadOnlyError,  # a demoted master after a failover
    rexc.RedisClusterException,  # cannot reach any startup node, slot not covered
    rexc.MovedError,
    OSError,
)
_TIMEOUTS: tuple[type[BaseException], ...] = (rexc.TimeoutError, TimeoutError, asyncio.TimeoutError)
# Our own pool is out of connections (redis-py >= 6 raises this): not the server's fault.
_POOL_EXHAUSTED: tuple[type[BaseException], ...] = tuple(
    e for e in (getattr(rexc, "MaxConnectionsError", None),) if e is not None
)
# A wrong or missing password, or a user the server does not let in: the server answered,
# so these never count for the breaker (redis-py makes some of them ConnectionErrors).
_AUTH: tuple[type[BaseException], ...] = tuple(
    e
    for e in (
        rexc.AuthenticationError,
        rexc.AuthenticationWrongNumberOfArgsError,
        getattr(rexc, "AuthorizationError", None),
    )
    if e is not None
)
# Everything we translate; anything else is a bug of ours and propagates.
_CAUGHT: tuple[type[BaseException], ...] = (rexc.RedisError, *_UNAVAILABLE, *_TIMEOUTS)


def hash_tag(tag: str, key: str = "") -> str:
    """``"{tag}key"``: keys built with the same ``tag`` land in the same Cluster slot.

    Note that Redis hashes only the text between the first ``{`` and the next ``}``, so
    the tag itself must not contain braces and must not be empty.
    """
    if not tag or "{" in tag or "}" in tag:
        raise ValueError("a hash tag must be non-empty and free of braces")
    return "{" + tag + "}" + key


def _escape_glob(text: str) -> str:
    """Escape Redis glob metacharacters so ``text`` matches only itself."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _ttl_ms(ttl: float | None) -> int | None:
    """Seconds to the millisecond count for ``PX``; ``None``, ``inf`` and any TTL above
    :data:`~novacache.tiers._checks.MAX_TTL` (100 years) mean no expiry.

    Any real number is accepted (int, float, Fraction, Decimal); ``bool``, ``str`` and
    ``bytes`` are a ``TypeError``; ``<= 0`` and NaN a ``ValueError``. A positive TTL
    never rounds down to 0 ms ("no expiry" would be the opposite of what was asked).
    """
    if ttl is None:
        return None
    if type(ttl) is not float and type(ttl) is not int:
        if isinstance(ttl, (bool, str, bytes, bytearray, complex)):
            raise TypeError(f"ttl must be a number of seconds or None, not {type(ttl).__name__}")
        try:
            ttl = float(ttl)
        except OverflowError:  # a Fraction or Decimal beyond the floats
            ttl = math.inf if ttl > 0 else -math.inf
        except (TypeError, ValueError):
            raise TypeError(
                f"ttl must be a number of seconds or None, not {type(ttl).__name__}"
            ) from None
    if not ttl > 0:  # also NaN
        raise ValueError(f"ttl must be > 0 seconds, got {ttl!r}")
    if ttl > MAX_TTL:
        return None
    ms = round(ttl * 1000)
    return ms if ms > 0 else 1


def _present(names: list[str], values: list[bytes | None]) -> dict[str, bytes]:
    """``{name: value}`` for the non-nil MGET replies (compiled where built)."""
    return present(names, values)


def _is_auth(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps: a Cluster client reports a startup node that
    refused the password as a ``RedisClusterException``) is an authentication failure."""
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 8:
        if isinstance(cause, _AUTH):
            return True
        cause = cause.__cause__
        seen += 1
    return False


def _token(token: object) -> bytes:
    """A lease token as the bytes compared by the release script (``TypeError`` unless
    a ``str``: the tokens :meth:`RedisTier.acquire_lease` hands out are hex)."""
    if not isinstance(token, str):
        raise TypeError(f"a lease token is a str, not {type(token).__name__}")
    return encode_key(token)


def _check_frame(frame: object) -> bytes:
    """``frame`` as ``bytes`` (a bytearray or memoryview is copied: redis-py before 6
    refuses them). ``TypeError`` for a frame that is not bytes-like; ``EntryTooLarge``
    (a ``ValueError``) for one over Redis' 512 MiB bulk limit, before any I/O."""
    if type(frame) is not bytes:
        if not isinstance(frame, (bytes, bytearray, memoryview)):
            raise TypeError(f"a frame must be bytes, not {type(frame).__name__}")
        size = frame.nbytes if isinstance(frame, memoryview) else len(frame)
        if size > MAX_BULK_BYTES:
            raise EntryTooLarge(size, MAX_BULK_BYTES)
        return bytes(frame)
    if len(frame) > MAX_BULK_BYTES:
        raise EntryTooLarge(len(frame), MAX_BULK_BYTES)
    return frame


class _RedisTierBase:
    """What both twins share: config, namespace, key encoding, error translation."""

    config: RedisConfig
    breaker: CircuitBreaker
    name: str
    prefix: str

    def _setup(
        self,
        config: RedisConfig | str | None,
        prefix: str,
        name: str | None,
        breaker: CircuitBreaker | None,
        options: dict[str, Any],
    ) -> None:
        if isinstance(config, str):
            config = RedisConfig.from_url(config, **options)
        elif config is None:
            config = RedisConfig(**options)
        elif not isinstance(config, RedisConfig):
            raise TypeError(
                f"config must be a RedisConfig, a URL str or None, not {type(config).__name__}"
            )
        elif options:
            config = config.replace(**options)
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be str, not {type(prefix).__name__}")
        if "{" in prefix or "}" in prefix:
            raise ConfigurationError("the key prefix must not contain braces (hash tags)")
        self.config = config
        self._cluster = config.topology == "cluster"
        self.prefix = prefix
        self._prefix_b = encode_key(prefix)
        self._plen = len(self._prefix_b)
        self._tag_prefix_b = self._prefix_b + _TAG_INFIX
        self._lease_prefix_b = self._prefix_b + _LEASE_INFIX
        self.name = name or f"redis:{config.topology}"
        self.breaker = breaker or CircuitBreaker(name=self.name)
        secret_values = (config.password, config.sentinel_password)
        self._secrets = tuple(s for s in secret_values if s)
        self._closed = False
        self.stats = {
            "errors": 0,
            "timeouts": 0,
            "unavailable": 0,
            "rejected": 0,
            "failovers": 0,
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} prefix={self.prefix!r} {self.config!r}>"

    # -- keys ---------------------------------------------------------------------------

    def _key(self, key: str) -> bytes:
        """``prefix + key`` as the bytes Redis stores (see :mod:`._keys`: UTF-8, a lone
        surrogate passed through; the fallback costs nothing until a key needs it)."""
        if type(key) is not str and not isinstance(key, str):
            raise TypeError(f"a key must be str, not {type(key).__name__}")
        try:
            raw = self._prefix_b + key.encode()
        except UnicodeEncodeError:
            raw = self._prefix_b + key.encode("utf-8", "surrogatepass")
        if len(raw) > MAX_BULK_BYTES:
            raise EntryTooLarge(len(raw), MAX_BULK_BYTES)  # the key alone
        return raw

    def _lease_key(self, key: str) -> bytes:
        return self._lease_prefix_b + self._key(key)[self._plen :]

    def _read_keys(self, names: list[str]) -> list[str | bytes] | list[bytes]:
        """Full keys for a batch read, made in one step each (compiled where built,
        :mod:`._kit`). Standalone and Sentinel get ``str``: hiredis packs a ``str``
        argument with one copy of its UTF-8 (an ASCII ``str`` is its own UTF-8) but a
        ``bytes`` one through the buffer protocol, an empty string and a ``realloc``, ~3 us
        more for 100 keys than the ``bytes`` save here; a key with a lone surrogate (no
        strict UTF-8) comes as its ``bytes`` (see :mod:`._keys`). Cluster gets ``bytes``:
        redis-py hashes each key's bytes to find its slot and would encode a ``str`` in
        Python. Note that this skips
        the per-key checks of :meth:`_key` (reserved prefix, size): a read cannot damage
        anything, and Redis itself refuses an oversized key. It is the hot loop of
        ``get_many``."""
        if self._cluster:
            return encoded(self._prefix_b, names)
        return prefixed(self.prefix, names)

    def _tag_key(self, tag: str) -> bytes:
        if not isinstance(tag, str) or not tag:
            raise ValueError("a tag must be a non-empty str")
        return self._tag_prefix_b + encode_key(tag)

    def _tag_batches(
        self, tag: str, keys: Iterable[str], ttl: float | None
    ) -> tuple[bytes, list[list[bytes | str]]]:
        """The tag set's key and the argument lists of :data:`_TAG_ADD_LUA` calls (the
        TTL in ms, or ``""``, then at most :data:`_TAG_BATCH` members each)."""
        tkey = self._tag_key(tag)
        members = [encode_key(k) for k in dict.fromkeys(keys) if self._key(k)]
        ms = _ttl_ms(ttl)
        head: bytes | str = "" if ms is None else str(ms + _TAG_SLACK_MS)
        return tkey, [
            [head, *members[i : i + _TAG_BATCH]] for i in range(0, len(members), _TAG_BATCH)
        ]

    def _match(self, pattern: str) -> bytes:
        if not isinstance(pattern, str):
            raise TypeError("a scan pattern must be str")
        return (_escape_glob(self.prefix) + pattern).encode("utf-8", "surrogatepass")

    def _unprefix(self, raw: bytes) -> str | None:
        """The tier key of a raw Redis key, or ``None`` for tag sets and foreign bytes."""
        if raw.startswith(self._tag_prefix_b):
            return None
        return decode_key(raw[self._plen :])

    def _members(self, raws: Iterable[bytes]) -> builtins.set[str]:
        """The keys of a tag set's members (foreign bytes skipped)."""
        keys = {decode_key(raw) for raw in raws}
        keys.discard(None)
        return keys  # type: ignore[return-value]

    def _channel(self, channel: str) -> bytes:
        if not isinstance(channel, str):
            raise TypeError(f"a channel must be str, not {type(channel).__name__}")
        return self._prefix_b + encode_key(channel)

    # -- errors -------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _rejected(self, op: str) -> TierUnavailable:
        self.stats["rejected"] += 1
        if self._closed:
            return TierUnavailable(f"redis tier {self.name!r}: {op} on a closed tier")
        return TierUnavailable(
            f"redis tier {self.name!r}: circuit breaker open, {op} not attempted"
        )

    def _translate(self, op: str, exc: BaseException) -> TierError:
        """Map a redis-py/OS exception to our error and feed the breaker."""
        if isinstance(exc, TierError):  # ours already (a closed tier): not a failure
            return type(exc)(str(exc))
        detail = self._scrub(f"{type(exc).__name__}: {exc}")
        message = f"redis tier {self.name!r}: {op} failed ({detail})"
        if _is_auth(exc):
            # The server answered (it refused us): healthy, whatever redis-py calls it.
            self.stats["errors"] += 1
            self.breaker.record_success()
            return TierError(
                f"redis tier {self.name!r}: {op} refused: authentication failed ({detail})"
            )
        if isinstance(exc, _POOL_EXHAUSTED):
            # Our own pool is exhausted: the server is not at fault.
            self.stats["unavailable"] += 1
            return TierUnavailable(message)
        if isinstance(exc, _TIMEOUTS):
            self.stats["timeouts"] += 1
            self.breaker.record_failure()
            return TierTimeout(message)
        if isinstance(exc, _UNAVAILABLE):
            self.stats["unavailable"] += 1
            self.breaker.record_failure()
            return TierUnavailable(message)
        # The server answered: it is healthy even if the request was refused.
        self.stats["errors"] += 1
        self.breaker.record_success()
        if isinstance(exc, rexc.NoPermissionError):
            return TierError(f"redis tier {self.name!r}: {op} refused by ACL ({detail})")
        if "WRONGTYPE" in str(exc):
            return TierError(
                f"redis tier {self.name!r}: {op} hit a key holding a non-string value "
                "written by someone else (WRONGTYPE)"
            )
        return TierError(message)

    # -- client construction ------------------------------------------------------------

    def _connection_kwargs(self) -> dict[str, Any]:
        c = self.config
        kw: dict[str, Any] = {
            "username": c.username,
            "password": c.password,
            "socket_timeout": c.timeout,
            "socket_connect_timeout": c.connect_timeout,
            "health_check_interval": c.health_check_interval,
            "client_name": c.client_name,
            "decode_responses": False,
        }
        if c.ssl:
            kw.update(
                ssl=True,
                ssl_ca_certs=c.ssl_ca_certs,
                ssl_certfile=c.ssl_certfile,
                ssl_keyfile=c.ssl_keyfile,
                ssl_check_hostname=c.ssl_check_hostname,
            )
        return kw

    def _sentinel_kwargs(self) -> dict[str, Any]:
        c = self.config
        return {
            "username": c.sentinel_username,
            "password": c.sentinel_password,
            "socket_timeout": c.timeout,
            "socket_connect_timeout": c.connect_timeout,
        }


class RedisTier(_RedisTierBase):
    """A synchronous Redis tier; thread-safe (redis-py's connection pool).

    Build it from a :class:`RedisConfig`, a URL (``RedisTier("redis://127.0.0.1:6379/0")``)
    or keyword options (``RedisTier(host=..., port=...)``); options given together with a
    config or URL override it. The client connects lazily, so constructing a tier never
    fails because Redis is down; the first call reports that.
    """

    def __init__(
        self,
        config: RedisConfig | str | None = None,
        *,
        prefix: str = "",
        name: str | None = None,
        breaker: CircuitBreaker | None = None,
        **options: Any,
    ) -> None:
        self._setup(config, prefix, name, breaker, options)
        self._client: Any = None
        self._reader: Any = None  # replicas (Sentinel read_from_replicas)
        self._sentinel: WatchedSentinel | None = None
        self._release: Any = None
        self._tag_script: Any = None
        self._connect_lock = threading.Lock()
        self._subscriptions: list[Subscription] = []
        self._watch: FailoverWatch | None = None

    # -- plumbing -----------------------------------------------------------------------

    def _retry(self) -> Retry:
        c = self.config
        return Retry(EqualJitterBackoff(cap=c.backoff_cap, base=c.backoff_base), c.retries)

    def _connect(self) -> Any:
        with self._connect_lock:
            if self._closed:
                raise TierUnavailable(f"redis tier {self.name!r}: the tier is closed")
            if self._client is not None:
                return self._client
            c = self.config
            kw = self._connection_kwargs()
            client: Any
            if c.topology == "standalone":
                # Note that a blocking pool makes a thread wait (up to ``timeout``) for a
                # free connection instead of failing when all are in use.
                if c.unix_socket_path:
                    kw.update(connection_class=redis.UnixDomainSocketConnection)
                    kw.update(path=c.unix_socket_path)
                else:
                    kw.update(host=c.host, port=c.port)
                    if kw.pop("ssl", False):
                        kw.update(connection_class=redis.SSLConnection)
                pool = redis.BlockingConnectionPool(
                    db=c.db,
                    max_connections=c.max_connections,
                    timeout=c.timeout,
                    retry=self._retry(),
                    **kw,
                )
                client = redis.Redis(connection_pool=pool, retry=self._retry())
            elif c.topology == "sentinel":
                assert c.service_name is not None
                self._sentinel = WatchedSentinel(
                    list(c.sentinels),
                    sentinel_kwargs=self._sentinel_kwargs(),
                    db=c.db,
                    retry=self._retry(),
                    max_connections=c.max_connections,
                    **kw,
                )
                client = self._sentinel.master_for(c.service_name)
                if c.watch_failover:
                    self._watch = FailoverWatch(self, client)
                if c.read_from_replicas:
                    self._reader = self._sentinel.slave_for(c.service_name)
            else:
                strategy = None
                if c.read_from_replicas:
                    strategy = redis.cluster.LoadBalancingStrategy.ROUND_ROBIN_REPLICAS
                client = redis.cluster.RedisCluster(
                    startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in c.startup_nodes],
                    retry=self._retry(),
                    max_connections=c.max_connections,
                    load_balancing_strategy=strategy,
                    **kw,
                )
            self._release = client.register_script(_RELEASE_LUA)
            self._tag_script = client.register_script(_TAG_ADD_LUA)
            self._client = client
            return client

    def _reads(self) -> Any:
        client = self._client or self._connect()
        return self._reader or client

    # -- the contract -------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The frame stored under ``key``, or ``None``."""
        raw = self._key(key)
        if not self.breaker.allow():
            raise self._rejected("get")
        try:
            client = self._reader or self._client or self._reads()
            value: bytes | None = client.get(raw)
        except _CAUGHT as exc:
            raise self._translate("get", exc) from exc
        self.breaker.record_success()
        return value

    def set(self, key: str, frame: bytes, ttl: float | None = None) -> None:
        """Store ``frame`` under ``key``, replacing its frame and TTL."""
        raw = self._key(key)
        frame = _check_frame(frame)
        ms = _ttl_ms(ttl)
        if not self.breaker.allow():
            raise self._rejected("set")
        try:
            (self._client or self._connect()).set(raw, frame, px=ms)
        except _CAUGHT as exc:
            raise self._translate("set", exc) from exc
        self.breaker.record_success()

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The present keys among ``keys``: one MGET (Cluster: one MGET per slot, all
        slots of a node in one pipeline, the nodes' pipelines sent before any is read)."""
        names = keys if type(keys) is list else list(keys)
        if not names:
            return {}
        # The hot path of a batch read: the helpers are called directly (this is
        # _read_keys, _reads and _present inlined; each Python-level call costs here).
        cluster = self._cluster
        raws = encoded(self._prefix_b, names) if cluster else prefixed(self.prefix, names)
        if not self.breaker.allow():
            raise self._rejected("get_many")
        try:
            client = self._reader or self._client or self._reads()
            values = client.mget_nonatomic(raws) if cluster else client.mget(raws)
        except _CAUGHT as exc:
            raise self._translate("get_many", exc) from exc
        self.breaker.record_success()
        return present(names, values)

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """Store every item with the same TTL in one pipeline (one round trip per node)."""
        pairs = [(self._key(k), _check_frame(f)) for k, f in items.items()]
        ms = _ttl_ms(ttl)
        if not pairs:
            return
        if not self.breaker.allow():
            raise self._rejected("set_many")
        try:
            client = self._client or self._connect()
            pipe = client.pipeline(transaction=False)
            for raw, frame in pairs:
                pipe.set(raw, frame, px=ms)
            pipe.execute()
        except _CAUGHT as exc:
            raise self._translate("set_many", exc) from exc
        self.breaker.record_success()

    def delete(self, key: str) -> bool:
        """UNLINK ``key``; whether it existed."""
        raw = self._key(key)
        if not self.breaker.allow():
            raise self._rejected("delete")
        try:
            n = (self._client or self._connect()).unlink(raw)
        except _CAUGHT as exc:
            raise self._translate("delete", exc) from exc
        self.breaker.record_success()
        return bool(n)

    def delete_many(self, keys: Iterable[str]) -> int:
        """UNLINK every key (Cluster: one UNLINK per slot, pipelined); how many existed."""
        raws = list(dict.fromkeys(self._key(k) for k in keys))
        if not raws:
            return 0
        if not self.breaker.allow():
            raise self._rejected("delete_many")
        try:
            n = (self._client or self._connect()).unlink(*raws)
        except _CAUGHT as exc:
            raise self._translate("delete_many", exc) from exc
        self.breaker.record_success()
        return int(n)

    def ttl(self, key: str) -> float | None:
        """Remaining lifetime in seconds, ``math.inf`` without expiry, ``None`` if absent."""
        raw = self._key(key)
        if not self.breaker.allow():
            raise self._rejected("ttl")
        try:
            ms = self._reads().pttl(raw)
        except _CAUGHT as exc:
            raise self._translate("ttl", exc) from exc
        self.breaker.record_success()
        if ms == -2:
            return None
        if ms == -1:
            return math.inf
        return float(ms) / 1000.0

    def scan(self, pattern: str = "*") -> Iterator[str]:
        """Each live key of the namespace matching ``pattern`` once (SCAN; in a Cluster on
        every master). Keys are de-duplicated in memory, since SCAN may repeat a key."""
        match = self._match(pattern)
        if not self.breaker.allow():
            raise self._rejected("scan")
        return self._scan(match, "scan")

    def _scan(self, match: bytes, op: str) -> Iterator[str]:
        seen: set[bytes] = set()
        try:
            for raw in self._reads().scan_iter(match=match, count=_SCAN_COUNT):
                if raw in seen:
                    continue
                seen.add(raw)
                key = self._unprefix(raw)
                if key is not None:
                    yield key
        except _CAUGHT as exc:
            raise self._translate(op, exc) from exc
        self.breaker.record_success()

    def clear(self) -> None:
        """Remove every key of the namespace (tag index included), nothing outside it."""
        if not self.breaker.allow():
            raise self._rejected("clear")
        match = encode_key(_escape_glob(self.prefix)) + b"*"
        try:
            client = self._client or self._connect()
            batch: list[bytes] = []
            for raw in client.scan_iter(match=match, count=_SCAN_COUNT):
                batch.append(raw)
                if len(batch) >= _DELETE_BATCH:
                    client.unlink(*batch)
                    batch.clear()
            if batch:
                client.unlink(*batch)
        except _CAUGHT as exc:
            raise self._translate("clear", exc) from exc
        self.breaker.record_success()

    def ping(self) -> float:
        """Round-trip time of a PING in seconds (Cluster: every node answers)."""
        if not self.breaker.allow():
            raise self._rejected("ping")
        try:
            client = self._client or self._connect()
            start = time.perf_counter()
            client.ping()
            rtt = time.perf_counter() - start
        except _CAUGHT as exc:
            raise self._translate("ping", exc) from exc
        self.breaker.record_success()
        return rtt

    def close(self) -> None:
        """Stop subscriptions and close every connection; harmless to repeat."""
        with self._connect_lock:
            self._closed = True
            client, reader, sentinel = self._client, self._reader, self._sentinel
            self._client = self._reader = self._sentinel = None
            subscriptions, self._subscriptions = self._subscriptions, []
            watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()
        for sub in subscriptions:
            sub.close()
        for c in (reader, client):
            if c is not None:
                try:
                    c.close()
                    pool = getattr(c, "connection_pool", None)
                    if pool is not None:
                        pool.disconnect()
                except _CAUGHT:
                    pass
        if sentinel is not None:
            for s in sentinel.sentinels:
                try:
                    s.close()
                except _CAUGHT:
                    pass

    def __enter__(self) -> RedisTier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- lease lock ---------------------------------------------------------------------

    def acquire_lease(self, key: str, ttl: float) -> str | None:
        """Take the lease ``key`` for ``ttl`` seconds (SET NX PX): a token to release it
        with, or ``None`` when someone else holds it. Leases live in a sub-namespace of
        their own: the lease ``key`` never touches the entry cached under ``key``."""
        raw = self._lease_key(key)
        ms = _ttl_ms(ttl)
        if ms is None:
            raise ValueError("a lease needs a finite ttl")
        token = secrets.token_hex(16)
        if not self.breaker.allow():
            raise self._rejected("acquire_lease")
        try:
            ok = (self._client or self._connect()).set(raw, token, nx=True, px=ms)
        except _CAUGHT as exc:
            raise self._translate("acquire_lease", exc) from exc
        self.breaker.record_success()
        return token if ok else None

    def release_lease(self, key: str, token: str) -> bool:
        """Release the lease if ``token`` still holds it (checked by a server-side script);
        whether it was released. An expired lease taken by another holder is left alone."""
        raw = self._lease_key(key)
        tok = _token(token)
        if not self.breaker.allow():
            raise self._rejected("release_lease")
        try:
            self._client or self._connect()
            n = self._release(keys=[raw], args=[tok])
        except _CAUGHT as exc:
            raise self._translate("release_lease", exc) from exc
        self.breaker.record_success()
        return bool(n)

    # -- tag index ----------------------------------------------------------------------

    def tag_add(self, tag: str, keys: Iterable[str], ttl: float | None = None) -> None:
        """Record that ``keys`` carry ``tag`` (a set in the tier's tag sub-namespace).

        The set's expiry is bounded by its members' TTLs, atomically (a server-side
        script): with ``ttl``, the set lives at least ``ttl`` (plus a second of slack)
        from now, never less than it already had; an expiry is never shortened. Without
        ``ttl`` (keys that do not expire), the set keeps no expiry from then on.
        """
        tkey, batches = self._tag_batches(tag, keys, ttl)
        if not batches:
            return
        if not self.breaker.allow():
            raise self._rejected("tag_add")
        try:
            self._client or self._connect()
            for args in batches:
                self._tag_script(keys=[tkey], args=args)
        except _CAUGHT as exc:
            raise self._translate("tag_add", exc) from exc
        self.breaker.record_success()

    def tag_members(self, tag: str) -> builtins.set[str]:
        """The keys recorded under ``tag`` (some may have expired since)."""
        tkey = self._tag_key(tag)
        if not self.breaker.allow():
            raise self._rejected("tag_members")
        try:
            members = (self._client or self._connect()).smembers(tkey)
        except _CAUGHT as exc:
            raise self._translate("tag_members", exc) from exc
        self.breaker.record_success()
        return self._members(members)

    def tag_invalidate(self, tag: str) -> int:
        """Delete every key recorded under ``tag`` and the index set; how many keys existed."""
        keys = self.tag_members(tag)
        n = self.delete_many(keys)
        if not self.breaker.allow():
            raise self._rejected("tag_invalidate")
        try:
            (self._client or self._connect()).unlink(self._tag_key(tag))
        except _CAUGHT as exc:
            raise self._translate("tag_invalidate", exc) from exc
        self.breaker.record_success()
        return n

    # -- publish / subscribe ------------------------------------------------------------

    def publish(self, channel: str, message: bytes) -> int:
        """Publish ``message`` on ``prefix + channel``; how many subscribers received it
        (in a Cluster: those connected to the node that took the message)."""
        message = _check_frame(message)
        name = self._channel(channel)
        if not self.breaker.allow():
            raise self._rejected("publish")
        try:
            n = (self._client or self._connect()).publish(name, message)
        except _CAUGHT as exc:
            raise self._translate("publish", exc) from exc
        self.breaker.record_success()
        return int(n)

    def subscribe(self, channel: str, handler: Callable[[bytes], None]) -> Subscription:
        """Call ``handler(message)`` in a background thread for every message published on
        ``prefix + channel``, until the returned subscription (or the tier) is closed."""
        name = self._channel(channel)
        if not self.breaker.allow():
            raise self._rejected("subscribe")
        try:
            pubsub = (self._client or self._connect()).pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(name)
        except _CAUGHT as exc:
            raise self._translate("subscribe", exc) from exc
        self.breaker.record_success()
        sub = Subscription(pubsub, handler)
        with self._connect_lock:
            self._subscriptions.append(sub)
        return sub


class Subscription:
    """A channel subscription served by a daemon thread; ``close()`` stops it."""

    def __init__(self, pubsub: Any, handler: Callable[[bytes], None]) -> None:
        self._pubsub = pubsub
        self._handler = handler
        self._stop = threading.Event()
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name="novacache-redis-sub", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._pubsub.get_message(timeout=0.1)
            except _CAUGHT:
                self.errors += 1
                self._stop.wait(0.1)
                continue
            if msg and msg.get("type") == "message":
                try:
                    self._handler(msg["data"])
                except Exception:
                    self.errors += 1

    def close(self) -> None:
        """Stop the thread (waits at most about a second) and drop the connection."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        try:
            self._pubsub.close()
        except _CAUGHT:
            pass


class FailoverWatch:
    """Listens for ``+switch-master`` on the sentinels (one at a time, rotating on
    errors) and, when our master moves, drops every pooled connection so the next
    command asks Sentinel for the new master.

    Note why this exists: after a manual ``SENTINEL FAILOVER`` the old master was
    measured to keep accepting writes for ~11 s, and those writes were lost. For a cache
    a lost delete is stale data, so the tier moves as soon as Sentinel announces the
    switch instead of waiting for the old master to refuse a write.
    """

    def __init__(self, tier: RedisTier, master: Any) -> None:
        self._tier = tier
        self._master = master
        self._stop = threading.Event()
        self.switches = 0
        self.errors = 0
        self.subscribed = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="novacache-sentinel-watch", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        config = self._tier.config
        sentinels = config.sentinels
        kwargs = self._tier._sentinel_kwargs()
        turn = 0
        while not self._stop.is_set():
            host, port = sentinels[turn % len(sentinels)]
            turn += 1
            client = redis.Redis(host=host, port=port, **kwargs)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe("+switch-master")
                self.subscribed.set()
                while not self._stop.is_set():
                    msg = pubsub.get_message(timeout=0.2)
                    if msg and msg.get("type") == "message":
                        self._switched(msg["data"])
            except _CAUGHT:
                self.errors += 1
                self.subscribed.clear()
                self._stop.wait(0.2)
            finally:
                try:
                    pubsub.close()
                    client.close()
                except _CAUGHT:
                    pass

    def _switched(self, data: bytes) -> None:
        switch = Switch.parse(data)
        if switch is None or switch.service != self._tier.config.service_name:
            return
        # Remember the switch before reconnecting: a sentinel that has not heard of it
        # yet would otherwise send the reconnect back to the old master.
        if self._tier._sentinel is not None:
            self._tier._sentinel.switches.note(switch)
        # Drop the connections first, count second: whoever waits for the counter
        # (a test, a health check) must find the pool already pointing at the new master.
        try:
            self._master.connection_pool.disconnect(inuse_connections=True)
        except _CAUGHT:
            pass
        self.switches += 1
        self._tier.stats["failovers"] = self.switches

    def close(self) -> None:
        """Stop listening (waits at most about a second)."""
        self._stop.set()
        self._thread.join(timeout=1.0)


class AsyncRedisTier(_RedisTierBase):
    """The asyncio twin of :class:`RedisTier` over ``redis.asyncio``: the same options,
    the same errors, the same breaker semantics. Use it from one event loop."""

    def __init__(
        self,
        config: RedisConfig | str | None = None,
        *,
        prefix: str = "",
        name: str | None = None,
        breaker: CircuitBreaker | None = None,
        **options: Any,
    ) -> None:
        self._setup(config, prefix, name, breaker, options)
        self._client: Any = None
        self._reader: Any = None
        self._sentinel: AsyncWatchedSentinel | None = None
        self._release: Any = None
        self._tag_script: Any = None
        # Note that redis.asyncio's pools raise instead of waiting when every connection
        # is busy; this gate makes excess coroutines wait for a free connection instead.
        self._gate = asyncio.Semaphore(self.config.max_connections)
        self._subscriptions: list[AsyncSubscription] = []
        self._watch: AsyncFailoverWatch | None = None

    def _retry(self) -> redis.asyncio.retry.Retry:
        c = self.config
        return redis.asyncio.retry.Retry(
            EqualJitterBackoff(cap=c.backoff_cap, base=c.backoff_base), c.retries
        )

    def _connect(self) -> Any:
        # Note that building the asyncio clients does no I/O, so no lock is needed.
        if self._closed:
            raise TierUnavailable(f"redis tier {self.name!r}: the tier is closed")
        if self._client is not None:
            return self._client
        c = self.config
        kw = self._connection_kwargs()
        client: Any
        if c.topology == "standalone":
            client = redis.asyncio.Redis(
                host=c.host,
                port=c.port,
                db=c.db,
                unix_socket_path=c.unix_socket_path,
                max_connections=c.max_connections,
                retry=self._retry(),
                **kw,
            )
        elif c.topology == "sentinel":
            assert c.service_name is not None
            self._sentinel = AsyncWatchedSentinel(
                list(c.sentinels),
                sentinel_kwargs=self._sentinel_kwargs(),
                db=c.db,
                retry=self._retry(),
                max_connections=c.max_connections,
                **kw,
            )
            client = self._sentinel.master_for(c.service_name)
            if c.watch_failover:
                self._watch = AsyncFailoverWatch(self, client)
            if c.read_from_replicas:
                self._reader = self._sentinel.slave_for(c.service_name)
        else:
            strategy = None
            if c.read_from_replicas:
                strategy = redis.cluster.LoadBalancingStrategy.ROUND_ROBIN_REPLICAS
            client = redis.asyncio.cluster.RedisCluster(
                startup_nodes=[redis.asyncio.cluster.ClusterNode(h, p) for h, p in c.startup_nodes],
                retry=self._retry(),
                max_connections=c.max_connections,
                load_balancing_strategy=strategy,
                **kw,
            )
        self._release = client.register_script(_RELEASE_LUA)
        self._tag_script = client.register_script(_TAG_ADD_LUA)
        self._client = client
        return client

    def _reads(self) -> Any:
        client = self._client or self._connect()
        return self._reader or client

    async def get(self, key: str) -> bytes | None:
        """The frame stored under ``key``, or ``None``."""
        raw = self._key(key)
        if not self.breaker.allow():
            raise self._rejected("get")
        try:
            async with self._gate:
                value: bytes | None = await (self._reader or self._client or self._reads()).get(raw)
        except _CAUGHT as exc:
            raise self._translate("get", exc) from exc
        self.breaker.record_success()
        return value

    async def set(self, key: str, frame: bytes, ttl: float | None = None) -> None:
        """Store ``frame`` under ``key``, replacing its frame and TTL."""
        raw = self._key(key)
        frame = _check_frame(frame)
        ms = _ttl_ms(ttl)
        if not self.breaker.allow():
            raise self._rejected("set")
        try:
            async with self._gate:
                await (self._client or self._connect()).set(raw, frame, px=ms)
        except _CAUGHT as exc:
            raise self._translate("set", exc) from exc
        self.breaker.record_success()

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The present keys among ``keys`` (MGET; Cluster: grouped by slot, pipelined)."""
        names = keys if type(keys) is list else list(keys)
        if not names:
            return {}
        raws = self._read_keys(names)
        if not self.breaker.allow():
            raise self._rejected("get_many")
        try:
            async with self._gate:
                client = self._reads()
                if self.config.topology == "cluster":
                    values = await client.mget_nonatomic(raws)
                else:
                    values = await client.mget(raws)
        except _CAUGHT as exc:
            raise self._translate("get_many", exc) from exc
        self.breaker.record_success()
        return _present(names, values)

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """Store every item with the same TTL in one pipeline."""
        pairs = [(self._key(k), _check_frame(f)) for k, f in items.items()]
        ms = _ttl_ms(ttl)
        if not pairs:
            return
        if not self.breaker.allow():
            raise self._rejected("set_many")
        try:
            async with self._gate:
                client = self._client or self._connect()
                pipe = client.pipeline(transaction=False)
                for raw, frame in pairs:
                    pipe.set(raw, frame, px=ms)
                await pipe.execute()
        except _CAUGHT as exc:
            raise self._translate("set_many", exc) from exc
        self.breaker.record_success()

    async def delete(self, key: str) -> bool:
        """UNLINK ``key``; whether it existed."""
        raw = self._key(key)
        if not self.breaker.allow():
            raise self._rejected("delete")
        try:
            async with self._gate:
                n = await (self._client or self._connect()).unlink(raw)
        except _CAUGHT as exc:
            raise self._translate("delete", exc) from exc
        self.breaker.record_success()
        return bool(n)

    async def delete_many(self, keys: Iterable[str]) -> int:
        """UNLINK every key; how many existed."""
        raws = list(dict.fromkeys(self._key(k) for k in keys))
        if not raws:
            return 0
        if not self.breaker.allow():
            raise self._rejected("delete_many")
        try:
            async with self._gate:
                n = await (self._client or self._connect()).unlink(*raws)
        except _CAUGHT as exc:
            raise self._translate("delete_many", exc) from exc
        self.breaker.record_success()
        return int(n)

    async def ttl(self, key: str) -> float | None:
        """Remaining lifetime in seconds, ``math.inf`` without expiry, ``None`` if absent."""
        raw = self._key(key)
        if not self.breaker.allow():
            raise self._rejected("ttl")
        try:
            async with self._gate:
                ms = await self._reads().pttl(raw)
        except _CAUGHT as exc:
            raise self._translate("ttl", exc) from exc
        self.breaker.record_success()
        if ms == -2:
            return None
        if ms == -1:
            return math.inf
        return float(ms) / 1000.0

    def scan(self, pattern: str = "*") -> AsyncIterator[str]:
        """Each live key of the namespace matching ``pattern`` once (SCAN on every master)."""
        match = self._match(pattern)
        if not self.breaker.allow():
            raise self._rejected("scan")
        return self._scan(match)

    async def _scan(self, match: bytes) -> AsyncIterator[str]:
        seen: set[bytes] = set()
        try:
            async with self._gate:
                async for raw in self._reads().scan_iter(match=match, count=_SCAN_COUNT):
                    if raw in seen:
                        continue
                    seen.add(raw)
                    key = self._unprefix(raw)
                    if key is not None:
                        yield key
        except _CAUGHT as exc:
            raise self._translate("scan", exc) from exc
        self.breaker.record_success()

    async def clear(self) -> None:
        """Remove every key of the namespace (tag index included), nothing outside it."""
        if not self.breaker.allow():
            raise self._rejected("clear")
        match = encode_key(_escape_glob(self.prefix)) + b"*"
        try:
            async with self._gate:
                client = self._client or self._connect()
                batch: list[bytes] = []
                async for raw in client.scan_iter(match=match, count=_SCAN_COUNT):
                    batch.append(raw)
                    if len(batch) >= _DELETE_BATCH:
                        await client.unlink(*batch)
                        batch.clear()
                if batch:
                    await client.unlink(*batch)
        except _CAUGHT as exc:
            raise self._translate("clear", exc) from exc
        self.breaker.record_success()

    async def ping(self) -> float:
        """Round-trip time of a PING in seconds."""
        if not self.breaker.allow():
            raise self._rejected("ping")
        try:
            async with self._gate:
                client = self._client or self._connect()
                start = time.perf_counter()
                await client.ping()
                rtt = time.perf_counter() - start
        except _CAUGHT as exc:
            raise self._translate("ping", exc) from exc
        self.breaker.record_success()
        return rtt

    async def close(self) -> None:
        """Stop subscriptions and close every connection; harmless to repeat."""
        self._closed = True
        subscriptions, self._subscriptions = self._subscriptions, []
        for sub in subscriptions:
            await sub.close()
        watch, self._watch = self._watch, None
        if watch is not None:
            await watch.close()
        client, reader, sentinel = self._client, self._reader, self._sentinel
        self._client = self._reader = self._sentinel = None
        for c in (reader, client):
            if c is not None:
                try:
                    await c.aclose()
                except _CAUGHT:
                    pass
        if sentinel is not None:
            for s in sentinel.sentinels:
                try:
                    await s.aclose()
                except _CAUGHT:
                    pass

    async def __aenter__(self) -> AsyncRedisTier:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def acquire_lease(self, key: str, ttl: float) -> str | None:
        """Async twin of :meth:`RedisTier.acquire_lease`."""
        raw = self._lease_key(key)
        ms = _ttl_ms(ttl)
        if ms is None:
            raise ValueError("a lease needs a finite ttl")
        token = secrets.token_hex(16)
        if not self.breaker.allow():
            raise self._rejected("acquire_lease")
        try:
            async with self._gate:
                ok = await (self._client or self._connect()).set(raw, token, nx=True, px=ms)
        except _CAUGHT as exc:
            raise self._translate("acquire_lease", exc) from exc
        self.breaker.record_success()
        return token if ok else None

    async def release_lease(self, key: str, token: str) -> bool:
        """Async twin of :meth:`RedisTier.release_lease`."""
        raw = self._lease_key(key)
        tok = _token(token)
        if not self.breaker.allow():
            raise self._rejected("release_lease")
        try:
            async with self._gate:
                self._client or self._connect()
                n = await self._release(keys=[raw], args=[tok])
        except _CAUGHT as exc:
            raise self._translate("release_lease", exc) from exc
        self.breaker.record_success()
        return bool(n)

    # -- tag index ----------------------------------------------------------------------

    async def tag_add(self, tag: str, keys: Iterable[str], ttl: float | None = None) -> None:
        """Async twin of :meth:`RedisTier.tag_add` (the same sets and the same script:
        sync and async tiers on one namespace share one tag index)."""
        tkey, batches = self._tag_batches(tag, keys, ttl)
        if not batches:
            return
        if not self.breaker.allow():
            raise self._rejected("tag_add")
        try:
            async with self._gate:
                self._client or self._connect()
                for args in batches:
                    await self._tag_script(keys=[tkey], args=args)
        except _CAUGHT as exc:
            raise self._translate("tag_add", exc) from exc
        self.breaker.record_success()

    async def tag_members(self, tag: str) -> builtins.set[str]:
        """Async twin of :meth:`RedisTier.tag_members`."""
        tkey = self._tag_key(tag)
        if not self.breaker.allow():
            raise self._rejected("tag_members")
        try:
            async with self._gate:
                members = await (self._client or self._connect()).smembers(tkey)
        except _CAUGHT as exc:
            raise self._translate("tag_members", exc) from exc
        self.breaker.record_success()
        return self._members(members)

    async def tag_invalidate(self, tag: str) -> int:
        """Async twin of :meth:`RedisTier.tag_invalidate`."""
        keys = await self.tag_members(tag)
        n = await self.delete_many(keys)
        if not self.breaker.allow():
            raise self._rejected("tag_invalidate")
        try:
            async with self._gate:
                await (self._client or self._connect()).unlink(self._tag_key(tag))
        except _CAUGHT as exc:
            raise self._translate("tag_invalidate", exc) from exc
        self.breaker.record_success()
        return n

    async def publish(self, channel: str, message: bytes) -> int:
        """Async twin of :meth:`RedisTier.publish`."""
        message = _check_frame(message)
        name = self._channel(channel)
        if not self.breaker.allow():
            raise self._rejected("publish")
        try:
            async with self._gate:
                client = self._client or self._connect()
                if hasattr(client, "publish"):
                    n = await client.publish(name, message)
                else:
                    # redis-py < 8: no publish on the asyncio cluster client. Any node
                    # broadcasts a classic PUBLISH to the whole cluster.
                    n = await client.execute_command(
                        "PUBLISH", name, message, target_nodes=client.get_default_node()
                    )
        except _CAUGHT as exc:
            raise self._translate("publish", exc) from exc
        self.breaker.record_success()
        return int(n)

    async def subscribe(
        self, channel: str, handler: Callable[[bytes], Awaitable[None] | None]
    ) -> AsyncSubscription:
        """Call ``handler(message)`` (a function or a coroutine function) from a task of
        the running loop for every message on ``prefix + channel``, until the returned
        subscription (or the tier) is closed."""
        name = self._channel(channel)
        if not self.breaker.allow():
            raise self._rejected("subscribe")
        try:
            client = self._client or self._connect()
            owner = None
            if self.config.topology == "cluster":
                # Note that the asyncio cluster client learns its slots lazily; its
                # pubsub needs them before the first command.
                await client.initialize()
            if hasattr(client, "pubsub"):
                pubsub = client.pubsub(ignore_subscribe_messages=True)
            else:
                # redis-py < 8 has no pubsub on the asyncio cluster client. Classic
                # pub/sub is broadcast to every node of a cluster, so a client of one
                # node (with the cluster's connection settings) hears every message.
                node = client.get_default_node()
                owner = redis.asyncio.Redis(
                    connection_pool=redis.asyncio.ConnectionPool(
                        connection_class=node.connection_class, **node.connection_kwargs
                    )
                )
                pubsub = owner.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(name)
        except _CAUGHT as exc:
            raise self._translate("subscribe", exc) from exc
        self.breaker.record_success()
        sub = AsyncSubscription(pubsub, handler, owner)
        self._subscriptions.append(sub)
        return sub


class AsyncSubscription:
    """A channel subscription served by an asyncio task; ``await close()`` stops it."""

    def __init__(
        self,
        pubsub: Any,
        handler: Callable[[bytes], Awaitable[None] | None],
        owner: Any = None,
    ) -> None:
        self._pubsub = pubsub
        self._owner = owner  # a client made for this subscription alone, closed with it
        self._handler = handler
        self.errors = 0
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            except _CAUGHT:
                self.errors += 1
                await asyncio.sleep(0.1)
                continue
            if msg and msg.get("type") == "message":
                try:
                    result = self._handler(msg["data"])
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    self.errors += 1

    async def close(self) -> None:
        """Stop the task and drop the connection; harmless to repeat."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        try:
            await self._pubsub.aclose()
            if self._owner is not None:
                await self._owner.aclose()
        except _CAUGHT:
            pass


class AsyncFailoverWatch:
    """The asyncio twin of :class:`FailoverWatch`: a task of the loop that first used
    the tier listens for ``+switch-master`` and drops the master pool's connections."""

    def __init__(self, tier: AsyncRedisTier, master: Any) -> None:
        self._tier = tier
        self._master = master
        self.switches = 0
        self.errors = 0
        self.subscribed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        sentinels = self._tier.config.sentinels
        kwargs = self._tier._sentinel_kwargs()
        turn = 0
        while True:
            host, port = sentinels[turn % len(sentinels)]
            turn += 1
            client = redis.asyncio.Redis(host=host, port=port, **kwargs)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe("+switch-master")
                self.subscribed.set()
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                    if msg and msg.get("type") == "message":
                        await self._switched(msg["data"])
            except _CAUGHT:
                self.errors += 1
                self.subscribed.clear()
                await asyncio.sleep(0.2)
            finally:
                with contextlib.suppress(*_CAUGHT):
                    await pubsub.aclose()
                    await client.aclose()

    async def _switched(self, data: bytes) -> None:
        switch = Switch.parse(data)
        if switch is None or switch.service != self._tier.config.service_name:
            return
        if self._tier._sentinel is not None:
            self._tier._sentinel.switches.note(switch)
        # Disconnect before counting: the await yields, and a task that saw the counter
        # move could otherwise write through a connection to the old master.
        with contextlib.suppress(*_CAUGHT):
            await self._master.connection_pool.disconnect(inuse_connections=True)
        self.switches += 1
        self._tier.stats["failovers"] = self.switches

    async def close(self) -> None:
        """Stop the task; harmless to repeat."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
