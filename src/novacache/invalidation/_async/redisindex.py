"""The invalidation index of a Redis tier: one sorted set per pattern instance or
dependency, members scored by the expiry of their key.

One source for :class:`AsyncRedisIndex` (over ``AsyncRedisTier``) and, generated from it,
``RedisIndex`` (over ``RedisTier``): both use the same sets, so sync and async managers on
one namespace share one index.

A set lives in the tier's namespace under the byte ``0xff`` (which no encoded key holds:
see :mod:`novacache.tiers._keys`), so no cache key collides with it and ``scan`` never
returns it; ``clear`` of the tier removes it. Each set is one key and every script
touches only that key: cluster-safe.

Bounded growth: a member's score is its key's expiry (server time, in ms; ``+inf`` for a
key without expiry), every write trims the members that expired, and the set itself
expires with its longest-lived member. An invalidation that reads a set shortens the
members it read to ``grace`` seconds (they were dropped; a write racing the invalidation
keeps its member that long, and a new write of the key lengthens it again).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import Any

from redis.exceptions import NoScriptError

from ...tiers._keys import decode_key, encode_key
from ...tiers._kit import ttl_ms
from ...tiers._redis_base import _CAUGHT

__all__ = ["AsyncRedisIndex", "TakeRider"]

_INFIX = b"\xffinv:"
_BATCH = 1000  # members per script call (Lua's unpack has a stack limit)
_SLACK_MS = 1000  # the index is written just before the entry: outlive it a little

# KEYS[1]: the set; ARGV[1]: the members' TTL in ms or "" (no expiry); ARGV[2..]: members.
# A member's score only grows (GT). Expired members are trimmed; the set expires with its
# longest-lived member (PERSIST when one has no expiry).
_ADD_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = '+inf'
if ARGV[1] ~= '' then score = now + tonumber(ARGV[1]) end
local args = {}
for i = 2, #ARGV do
    args[#args + 1] = score
    args[#args + 1] = ARGV[i]
end
redis.call('ZADD', KEYS[1], 'GT', unpack(args))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] == nil then return 0 end
if top[2] == 'inf' then
    redis.call('PERSIST', KEYS[1])
else
    redis.call('PEXPIREAT', KEYS[1], top[2])
end
return 1
"""

# KEYS[1]: the set; ARGV[1]: grace in ms. Returns the live members, and shortens every
# member that lives longer than the grace period to it.
_TAKE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local found = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
if #found == 0 then return found end
local cut = now + tonumber(ARGV[1])
local long = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. cut, '+inf')
local args = {}
for i = 1, #long do
    args[#args + 1] = cut
    args[#args + 1] = long[i]
    if #args >= 2000 then
        redis.call('ZADD', KEYS[1], 'XX', unpack(args))
        args = {}
    end
end
if #args > 0 then redis.call('ZADD', KEYS[1], 'XX', unpack(args)) end
if #long > 0 then
    local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
    redis.call('PEXPIREAT', KEYS[1], top[2])
end
return found
"""

# The same for several sets in one call (a server that is not a Cluster: the sets may
# live anywhere): KEYS: the sets; ARGV[1]: grace in ms. One list of live members per set.
# When none of the sets exists (keys without dependents: the common case), one EXISTS.
_TAKE_MANY_LUA = """
local out = {}
if redis.call('EXISTS', unpack(KEYS)) == 0 then
    for k = 1, #KEYS do out[k] = {} end
    return out
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cut = now + tonumber(ARGV[1])
for k = 1, #KEYS do
    local key = KEYS[k]
    local found = redis.call('ZRANGEBYSCORE', key, '(' .. now, '+inf')
    out[k] = found
    if #found > 0 then
        local long = redis.call('ZRANGEBYSCORE', key, '(' .. cut, '+inf')
        local args = {}
        for i = 1, #long do
            args[#args + 1] = cut
            args[#args + 1] = long[i]
            if #args >= 2000 then
                redis.call('ZADD', key, 'XX', unpack(args))
                args = {}
            end
        end
        if #args > 0 then redis.call('ZADD', key, 'XX', unpack(args)) end
        if #long > 0 then
            local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
            redis.call('PEXPIREAT', key, top[2])
        end
    end
end
return out
"""


class AsyncRedisIndex:
    """The invalidation index sets of a :class:`~novacache.tiers.AsyncRedisTier` (see the
    module docstring). Failures raise ``TierError`` (the tier's translation and circuit
    breaker apply)."""

    slot = "remote"
    blocking = False

    def __init__(self, tier: Any) -> None:
        self.tier = tier
        self._scripts: tuple[Any, Any, Any, Any] | None = None  # (client, add, take, take many)

    def _name(self, name: str) -> bytes:
        prefix: bytes = self.tier._prefix_b
        return prefix + _INFIX + encode_key(name)

    def _client(self) -> tuple[Any, Any, Any, Any]:
        tier = self.tier
        client = tier._client or tier._connect()
        scripts = self._scripts
        if scripts is None or scripts[0] is not client:
            scripts = (
                client,
                client.register_script(_ADD_LUA),
                client.register_script(_TAKE_LUA),
                client.register_script(_TAKE_MANY_LUA),
            )
            self._scripts = scripts
        return scripts

    async def _calls(
        self, op: str, script_of: int, calls: list[tuple[list[bytes], list[Any]]]
    ) -> list[Any]:
        """Run one script call per ``(sets, args)``: in one pipeline (one round trip), or
        one after another in a Cluster (the sets live in different slots)."""
        tier = self.tier
        if not calls:
            return []
        if not tier.breaker.allow():
            raise tier._rejected(op)
        try:
            scripts = self._client()
            client, script = scripts[0], scripts[script_of]
            async with tier._gate:  # unasync: unwrap
                if tier._cluster:
                    out = [await script(keys=k, args=a) for k, a in calls]
                else:
                    # Note that EVALSHA is queued directly: a script object in a
                    # pipeline costs a SCRIPT EXISTS round trip on every execute. A
                    # server that lost the script (a restart) gets it once more.
                    try:
                        out = await self._pipeline(client, script.sha, calls)
                    except NoScriptError:
                        await client.script_load(script.script)
                        out = await self._pipeline(client, script.sha, calls)
        except _CAUGHT as exc:
            raise tier._translate(op, exc) from exc
        tier.breaker.record_success()
        return list(out)

    @staticmethod
    async def _pipeline(client: Any, sha: str, calls: list[tuple[list[bytes], list[Any]]]) -> Any:
        pipe = client.pipeline(transaction=False)
        for k, a in calls:
            pipe.evalsha(sha, len(k), *k, *a)
        return await pipe.execute()

    async def add(self, pairs: Iterable[tuple[str, str]], ttl: float | None) -> None:
        """Record each ``(name, key)`` pair; the entries live as long as ``ttl`` (the
        keys' TTL in the tiers; ``None``: no expiry), never shorter than before."""
        grouped: dict[str, list[bytes]] = {}
        for name, key in pairs:
            grouped.setdefault(name, []).append(encode_key(key))
        ms = ttl_ms(ttl)
        head: str = "" if ms is None else str(ms + _SLACK_MS)
        calls = [
            ([self._name(name)], [head, *members[i : i + _BATCH]])
            for name, members in grouped.items()
            for i in range(0, len(members), _BATCH)
        ]
        await self._calls("index_add", 1, calls)

    async def take(self, names: Iterable[str], grace: float) -> dict[str, builtins.set[str]]:
        """The live keys recorded under each of ``names`` (one round trip; names with
        none are left out); the entries read are shortened to ``grace`` seconds."""
        ms = max(1, int(grace * 1000))
        wanted = list(dict.fromkeys(names))
        sets = [self._name(name) for name in wanted]
        if self.tier._cluster:  # one call per set: each lives in its own slot
            replies = await self._calls("index_take", 2, [([s], [ms]) for s in sets])
        else:  # one call per _BATCH sets
            chunks = [sets[i : i + _BATCH] for i in range(0, len(sets), _BATCH)]
            replies = [
                members
                for reply in await self._calls("index_take", 3, [(c, [ms]) for c in chunks])
                for members in reply
            ]
        return _found(wanted, replies)

    def rider(self, names: Iterable[str], grace: float) -> TakeRider | None:
        """:meth:`take` of ``names`` as a command that rides in the tier's tombstone
        round trip (``tombstone_groups(..., riders=[...])``): read with :meth:`taken`
        once that call returned. ``None`` where it cannot ride (a Cluster; more than
        1000 names): :meth:`take` them."""
        wanted = list(dict.fromkeys(names))
        if self.tier._cluster or not wanted or len(wanted) > _BATCH:
            return None
        try:
            sha = self._client()[3].sha
        except _CAUGHT as exc:  # (connecting is lazy: a bad URL fails here)
            raise self.tier._translate("index_take", exc) from exc
        ms = max(1, int(grace * 1000))
        command = ("EVALSHA", sha, len(wanted), *(self._name(n) for n in wanted), ms)
        return TakeRider(wanted, grace, command)

    async def taken(self, rider: TakeRider) -> dict[str, builtins.set[str]]:
        """What the ``rider``'s take found (as :meth:`take` returns it); its command ran
        (it was answered). A server that did not know the script (a restart) is given
        it and the take runs again, on its own; any other reply error raises
        ``TierError``."""
        reply = rider.reply
        if isinstance(reply, NoScriptError):
            return await self.take(rider.names, rider.grace)
        if isinstance(reply, Exception):
            raise self.tier._translate("index_take", reply)
        return _found(rider.names, reply)

    async def close(self) -> None:
        """Nothing to close: the index uses the tier's connections."""


class TakeRider:
    """An index read riding in the Redis tier's tombstone round trip (a
    :class:`~novacache.tiers._redis_base.Rider`; see :meth:`AsyncRedisIndex.rider`)."""

    __slots__ = ("answered", "command", "grace", "names", "reply")

    def __init__(self, names: list[str], grace: float, command: tuple[Any, ...]) -> None:
        self.names = names
        self.grace = grace
        self.command = command
        self.answered = False
        self.reply: Any = None

    def answer(self, reply: Any) -> None:
        self.reply = reply
        self.answered = True


def _found(names: list[str], replies: list[Any]) -> dict[str, builtins.set[str]]:
    """``{name: keys}`` of the take replies of ``names`` (names with none left out)."""
    found: dict[str, builtins.set[str]] = {}
    for name, members in zip(names, replies, strict=True):
        keys = {decode_key(raw) for raw in members}
        keys.discard(None)
        if keys:
            found[name] = keys  # type: ignore[assignment]
    return found
