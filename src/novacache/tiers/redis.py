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

from ._async.redis import AsyncFailoverWatch, AsyncRedisTier, AsyncSubscription
from ._redis_base import MAX_BULK_BYTES, hash_tag
from ._sync.redis import FailoverWatch, RedisTier, Subscription
from .redis_config import RedisConfig

__all__ = [
    "MAX_BULK_BYTES",
    "AsyncFailoverWatch",
    "AsyncRedisTier",
    "AsyncSubscription",
    "FailoverWatch",
    "RedisConfig",
    "RedisTier",
    "Subscription",
    "hash_tag",
]
