"""What the two Redis tiers share, with no I/O: configuration, the namespace and key
encoding, error translation and the Lua scripts (what the tiers promise:
:mod:`novacache.tiers.redis`)."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import redis.exceptions as rexc

from .._counters import Counters
from ..breaker import CircuitBreaker
from ..errors import (
    ConfigurationError,
    EntryTooLarge,
    TierError,
    TierTimeout,
    TierUnavailable,
)
from ._keys import decode_key, encode_key
from ._kit import MAX_BULK_BYTES, encoded, prefixed, present, raw_key, ttl_ms
from .redis_config import RedisConfig

__all__ = ["MAX_BULK_BYTES", "AsyncHandler", "Handler", "RedisTierBase", "Rider", "hash_tag"]

#: What a subscription calls with each message: a function, or for the asyncio tier a
#: function or a coroutine function.
Handler = Callable[[bytes], None]
AsyncHandler = Callable[[bytes], Awaitable[None] | None]

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

# Stores ARGV[2] under KEYS[1] (for ARGV[3] ms; "" for no expiry) only if the key still
# holds the frame whose SHA-1 (hex) is ARGV[1] ("" when the writer found the key absent).
# The writer compared its version with that frame's: so a write-back never replaces a
# newer write, nor a delete's tombstone, that landed since it read. One key: cluster-safe.
_SET_IF_LUA = """
local cur = redis.call('GET', KEYS[1])
if cur then
    if ARGV[1] == '' or redis.sha1hex(cur) ~= ARGV[1] then return 0 end
elseif ARGV[1] ~= '' then
    return 0
end
if ARGV[3] == '' then
    redis.call('SET', KEYS[1], ARGV[2])
else
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
"""


class Rider(Protocol):
    """A command that rides in the Redis tier's tombstone round trip
    (``tombstone_groups(..., riders=...)``; the invalidation engine's index read): queued
    before the tombstones in the same pipeline; ``answer`` gets its reply, or the reply
    error (a ``redis.exceptions.ResponseError``) the server gave instead. A rider the
    call never sent (its failure raised first) gets no answer."""

    command: tuple[Any, ...]

    def answer(self, reply: Any) -> None: ...


# The tombstones of several keys in one call (a non-Cluster server: the keys may live
# anywhere). KEYS: the keys; ARGV[1]: the tombstone frame; ARGV[2]: its TTL in ms, or ""
# (none). Each key is replaced as ``SET key frame PX ms GET`` would; one flag per key: 1
# when it held a live entry that was no tombstone (b"NT" and 14 bytes: _is_tombstone).
# A key that refuses the SET (another type) does not stop the others: the first error is
# the reply, once every key was tried.
_TOMBSTONE_LUA = """
local frame, ms = ARGV[1], ARGV[2]
local out, failed = {}, nil
for i = 1, #KEYS do
    local old
    if ms == '' then
        old = redis.pcall('SET', KEYS[i], frame, 'GET')
    else
        old = redis.pcall('SET', KEYS[i], frame, 'PX', ms, 'GET')
    end
    if type(old) == 'table' then
        failed = failed or old
        out[i] = 0
    elseif old and not (#old == 14 and string.sub(old, 1, 2) == 'NT') then
        out[i] = 1
    else
        out[i] = 0
    end
end
if failed then return failed end
return out
"""
#: Keys per call of the tombstone script (bounds how long one call holds the server).
_TOMBSTONE_BATCH = 1000

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


def _is_tombstone(frame: bytes) -> bool:
    """A delete's tombstone (``novacache.manager.envelope.tombstone``: b"NT" + 12 bytes)."""
    return len(frame) == 14 and frame[:2] == b"NT"


def _token(token: object) -> bytes:
    """A lease token as the bytes compared by the release script (``TypeError`` unless
    a ``str``: the tokens :meth:`RedisTier.acquire_lease` hands out are hex)."""
    if not isinstance(token, str):
        raise TypeError(f"a lease token is a str, not {type(token).__name__}")
    return encode_key(token)


def _check_frame(frame: object, limit: int = MAX_BULK_BYTES) -> bytes:
    """``frame`` as ``bytes`` (a bytearray or memoryview is copied: redis-py before 6
    refuses them). ``TypeError`` for a frame that is not bytes-like; ``EntryTooLarge``
    (a ``ValueError``) for one over Redis' 512 MiB bulk limit, before any I/O."""
    if type(frame) is not bytes:
        if not isinstance(frame, (bytes, bytearray, memoryview)):
            raise TypeError(f"a frame must be bytes, not {type(frame).__name__}")
        size = frame.nbytes if isinstance(frame, memoryview) else len(frame)
        if size > limit:
            raise EntryTooLarge(size, limit)
        return bytes(frame)
    if len(frame) > limit:
        raise EntryTooLarge(len(frame), limit)
    return frame


class RedisTierBase:
    """What both tiers share: config, namespace, key encoding, error translation."""

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
        self._max_bulk = MAX_BULK_BYTES  # the longest key or frame sent (Redis' default)
        self._plen = len(self._prefix_b)
        self._tag_prefix_b = self._prefix_b + _TAG_INFIX
        self._lease_prefix_b = self._prefix_b + _LEASE_INFIX
        self.name = name or f"redis:{config.topology}"
        self.breaker = breaker or CircuitBreaker(name=self.name)
        secret_values = (config.password, config.sentinel_password)
        self._secrets = tuple(s for s in secret_values if s)
        self._closed = False
        #: Failures by kind, and Sentinel failovers seen (exact under threads).
        self.stats = Counters(("errors", "timeouts", "unavailable", "rejected", "failovers"))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} prefix={self.prefix!r} {self.config!r}>"

    # -- keys ---------------------------------------------------------------------------

    def _key(self, key: str) -> bytes:
        """``prefix + key`` as the bytes Redis stores (see :mod:`._keys`: UTF-8, a lone
        surrogate passed through; the fallback costs nothing until a key needs it)."""
        return raw_key(self._prefix_b, key, self._max_bulk)

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
        ms = ttl_ms(ttl)
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
        self.stats.add_name("rejected")
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
            self.stats.add_name("errors")
            self.breaker.record_success()
            return TierError(
                f"redis tier {self.name!r}: {op} refused: authentication failed ({detail})"
            )
        if isinstance(exc, _POOL_EXHAUSTED):
            # Our own pool is exhausted: the server is not at fault.
            self.stats.add_name("unavailable")
            return TierUnavailable(message)
        if isinstance(exc, _TIMEOUTS):
            self.stats.add_name("timeouts")
            self.breaker.record_failure()
            return TierTimeout(message)
        if isinstance(exc, _UNAVAILABLE):
            self.stats.add_name("unavailable")
            self.breaker.record_failure()
            return TierUnavailable(message)
        # The server answered: it is healthy even if the request was refused.
        self.stats.add_name("errors")
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
