"""Password, a limited ACL user and TLS with a certificate made by the test; errors never
contain a password."""

from __future__ import annotations

import asyncio
import traceback
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from novacache.errors import TierError, TierUnavailable
from novacache.tiers.redis import AsyncRedisTier, RedisTier

from .redis_servers import (
    ADMIN_PASSWORD,
    APP_NAMESPACE,
    APP_PASSWORD,
    APP_USER,
    Secured,
)


def _ns() -> str:
    return f"{APP_NAMESPACE}{uuid.uuid4().hex[:12]}:"


def _everything_said(exc: BaseException) -> str:
    """The message, repr and full traceback (chained causes included) of an error."""
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


def _tls(s: Secured, **extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": s.tls_port,
        "ssl": True,
        "ssl_ca_certs": s.tls["ca_cert"],
        "ssl_certfile": s.tls["client_cert"],
        "ssl_keyfile": s.tls["client_key"],
        **extra,
    }


@pytest.fixture
def app_tier(redis_secured: Secured) -> Iterator[RedisTier]:
    t = RedisTier(port=redis_secured.port, username=APP_USER, password=APP_PASSWORD, prefix=_ns())
    yield t
    t.clear()
    t.close()


def test_default_user_password_in_url(redis_secured: Secured) -> None:
    url = f"redis://:{ADMIN_PASSWORD}@127.0.0.1:{redis_secured.port}/0"
    with RedisTier(url, prefix=_ns()) as t:
        t.set("k", b"v")
        assert t.get("k") == b"v"
        assert ADMIN_PASSWORD not in repr(t)
        t.clear()


def _wrong_password_tiers(s: Secured, secret: str) -> dict[str, dict[str, Any]]:
    return {
        "wrong password": {"username": APP_USER, "password": secret},
        "wrong default password": {"password": secret},
        "no password": {},
        "unknown user": {"username": "nobody-" + secret, "password": secret},
    }


@pytest.mark.parametrize(
    "case", ["wrong password", "wrong default password", "no password", "unknown user"]
)
def test_authentication_failure_is_a_tier_error_that_keeps_the_breaker_closed(
    redis_secured: Secured, case: str
) -> None:
    """Issue 18: a wrong (or missing) password is an authentication error, a
    ``TierError`` that is not ``TierUnavailable``: the server answered, so the breaker
    does not count it and never opens (it did after five calls). The password is
    never echoed."""
    secret = "wrong-" + APP_PASSWORD
    options = _wrong_password_tiers(redis_secured, secret)[case]
    with RedisTier(port=redis_secured.port, prefix=_ns(), **options) as t:
        for _ in range(t.breaker.threshold + 2):
            with pytest.raises(TierError, match="authentication failed") as info:
                t.get("k")
            assert not isinstance(info.value, TierUnavailable)
            said = _everything_said(info.value)
            assert secret not in said
            assert APP_PASSWORD not in said
            assert ADMIN_PASSWORD not in said
        with pytest.raises(TierError, match="authentication failed"):
            t.set("k", b"v")
        assert t.breaker.state == "closed"
        assert t.breaker.failures == 0
        assert t.stats["unavailable"] == t.stats["timeouts"] == 0


def test_async_authentication_failure_keeps_the_breaker_closed(redis_secured: Secured) -> None:
    secret = "wrong-" + APP_PASSWORD

    async def go() -> None:
        async with AsyncRedisTier(
            port=redis_secured.port, username=APP_USER, password=secret, prefix=_ns()
        ) as t:
            for _ in range(t.breaker.threshold + 2):
                with pytest.raises(TierError, match="authentication failed") as info:
                    await t.get("k")
                assert not isinstance(info.value, TierUnavailable)
                assert secret not in _everything_said(info.value)
            assert t.breaker.state == "closed"
            assert t.breaker.failures == 0

    asyncio.run(go())


def test_manager_reads_through_a_wrong_password(redis_secured: Secured, tmp_path: Any) -> None:
    """Through the manager the refusal is a counted read error and a reported write
    failure, never a crash; L3 keeps serving."""
    from novacache import LocalCache
    from novacache.manager import CacheManager
    from novacache.tiers import SQLiteTier

    remote = RedisTier(port=redis_secured.port, password="wrong", prefix=_ns())
    with CacheManager(
        local=LocalCache(10), remote=remote, store=SQLiteTier(tmp_path / "s.db"),
        on_write_error="report",
    ) as m:  # fmt: skip
        report = m.set("k", 1)
        assert set(report.failed) == {"remote"}
        assert "authentication failed" in str(report.failed["remote"])
        m.local.clear()  # type: ignore[union-attr]
        assert m.get("k") == 1
        assert m.stats.get("remote", "read_errors") == 1
        assert remote.breaker.state == "closed"


def test_acl_user_works_inside_its_namespace(app_tier: RedisTier) -> None:
    app_tier.set_many({"a": b"1", "b": b"2"}, ttl=60)
    assert app_tier.get_many(["a", "b", "c"]) == {"a": b"1", "b": b"2"}
    assert sorted(app_tier.scan()) == ["a", "b"]
    token = app_tier.acquire_lease("lock", ttl=5)  # EVALSHA of the release script
    assert token is not None
    assert app_tier.release_lease("lock", token)
    assert app_tier.publish("events", b"x") == 0
    assert app_tier.delete_many(["a", "b"]) == 2


def test_acl_refusal_is_a_clear_error_that_keeps_the_breaker_closed(
    redis_secured: Secured,
) -> None:
    with RedisTier(
        port=redis_secured.port, username=APP_USER, password=APP_PASSWORD, prefix="other:"
    ) as t:
        for _ in range(10):
            with pytest.raises(TierError, match="refused by ACL") as info:
                t.set("k", b"v")
            assert not isinstance(info.value, TierUnavailable)
            assert APP_PASSWORD not in _everything_said(info.value)
        assert t.breaker.state == "closed"


def test_tls_with_test_made_certificates(redis_secured: Secured) -> None:
    with RedisTier(
        **_tls(redis_secured, username=APP_USER, password=APP_PASSWORD), prefix=_ns()
    ) as t:
        t.set("k", b"over TLS")
        assert t.get("k") == b"over TLS"
        assert t.ping() >= 0
        t.clear()


def test_tls_url(redis_secured: Secured) -> None:
    tls = redis_secured.tls
    url = (
        f"rediss://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{redis_secured.tls_port}/0"
        f"?ssl_ca_certs={tls['ca_cert']}&ssl_certfile={tls['client_cert']}"
        f"&ssl_keyfile={tls['client_key']}"
    )
    with RedisTier(url, prefix=_ns()) as t:
        t.set("k", b"v")
        assert t.get("k") == b"v"
        t.clear()


def test_tls_refuses_an_unknown_server_certificate(redis_secured: Secured) -> None:
    options = _tls(redis_secured, ssl_ca_certs=None, retries=0)
    options["password"] = ADMIN_PASSWORD
    with RedisTier(**options, prefix=_ns()) as t, pytest.raises(TierUnavailable) as info:
        t.get("k")
    assert ADMIN_PASSWORD not in _everything_said(info.value)


def test_tls_requires_a_client_certificate(redis_secured: Secured) -> None:
    options = _tls(redis_secured, ssl_certfile=None, ssl_keyfile=None, retries=0)
    with (
        RedisTier(**options, password=ADMIN_PASSWORD, prefix=_ns()) as t,
        pytest.raises(TierUnavailable),
    ):
        t.get("k")


def test_async_tls_and_acl(redis_secured: Secured) -> None:
    async def go() -> None:
        options = _tls(redis_secured, username=APP_USER, password=APP_PASSWORD)
        async with AsyncRedisTier(**options, prefix=_ns()) as t:
            await t.set("k", b"async TLS")
            assert await t.get("k") == b"async TLS"
            await t.clear()
        async with AsyncRedisTier(
            port=redis_secured.port, username=APP_USER, password=APP_PASSWORD, prefix="other:"
        ) as t:
            with pytest.raises(TierError, match="refused by ACL"):
                await t.set("k", b"v")

    asyncio.run(go())
