"""schemathesis against the OpenAPI document the app serves, on a real uvicorn over real
Redis + SQLite: every operation, valid and invalid inputs, with and without the token,
with the read endpoints open and protected. No 5xx, every status documented, every body
valid against its schema, invalid input rejected, auth never ignored."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from novacache import LocalCache
from novacache.coherence import InvalidationBus
from novacache.manager import AsyncCacheManager
from novacache.ops.admin import _metrics
from novacache.ops.health import HealthMonitor
from novacache.ops.http import create_app
from novacache.tiers import AsyncRedisTier, AsyncSQLiteTier, RedisTier
from tiers.redis_servers import Standalone

from ._providers import KeyWarmer
from ._served import serve

TOKEN = "schemathesis-" + secrets.token_hex(16)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    ignored_auth,
]
EXAMPLES = 60


def _server(tmp_path: Path, url: str, protect_reads: bool) -> Iterator[str]:
    prefix = f"st-{secrets.token_hex(4)}:"

    async def build() -> tuple[Any, Any]:
        store = await AsyncSQLiteTier.open(tmp_path / "store.db")
        manager = AsyncCacheManager(
            local=LocalCache(1000),
            remote=AsyncRedisTier(url, prefix=prefix),
            store=store,
            bus=InvalidationBus(RedisTier(url, prefix=prefix)),
        )
        warmers = {
            kind: KeyWarmer(manager, kind)
            for kind in ("vm_metadata", "resource_allocation", "migration_state")
        }
        # The health monitor and the metrics exposition `novacache serve` wires.
        monitor = HealthMonitor(manager, interval=0.5)
        await monitor.astart()
        metrics, latency, collector = _metrics(manager, monitor)
        app = create_app(
            manager,
            token=TOKEN,
            protect_reads=protect_reads,
            health=monitor,
            warmers=warmers,
            metrics=metrics,
            latency=latency,
            max_keys=50,
            max_body_bytes=64 * 1024,
        )

        async def close() -> None:
            await monitor.astop()
            collector.close()
            await manager.close()

        return app, close

    with serve(build) as served:
        yield served.url


def _schema(url: str) -> Any:
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES
    )
    return schema


@pytest.fixture(scope="module")
def open_reads(
    tmp_path_factory: pytest.TempPathFactory, redis_standalone: Standalone
) -> Iterator[Any]:
    for url in _server(tmp_path_factory.mktemp("open"), redis_standalone.url, False):
        yield _schema(url)


@pytest.fixture(scope="module")
def protected_reads(
    tmp_path_factory: pytest.TempPathFactory, redis_standalone: Standalone
) -> Iterator[Any]:
    for url in _server(tmp_path_factory.mktemp("protected"), redis_standalone.url, True):
        yield _schema(url)


AUTH = {"Authorization": f"Bearer {TOKEN}"}
OPERATIONS = [
    ("GET", "/api/cache/stats"),
    ("POST", "/api/cache/invalidate"),
    ("GET", "/api/cache/health"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/api/cache/warmup"),
    ("GET", "/api/cache/warmup/{id}"),
    ("GET", "/metrics"),
]


_NO_INPUT = {
    "/api/cache/stats",
    "/api/cache/health",
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/cache/warmup/{id}",  # any string is a valid id (unknown: 404)
}


def _fuzz(schema: Any, method: str, path: str, headers: dict[str, str], protected: bool) -> int:
    """Run ``EXAMPLES`` valid and ``EXAMPLES`` invalid cases of one operation; how many
    requests were sent. (schemathesis' pytest plugin is driven by hand: its
    ``parametrize`` does not run under pytest 9.)"""
    [operation] = [
        r.ok() for r in schema.get_all_operations()
        if r.ok().method.upper() == method and r.ok().path == path
    ]  # fmt: skip
    sent = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            deadline=None,
            max_examples=EXAMPLES,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            sent.append(response.status_code)
            if protected and not headers:
                assert response.status_code == 401

        if mode is GenerationMode.NEGATIVE and path in _NO_INPUT:
            continue  # nothing to make invalid: hypothesis would find no case
        run()
    return len(sent)


def test_every_operation_is_in_the_document(open_reads: Any) -> None:
    found = {(r.ok().method.upper(), r.ok().path) for r in open_reads.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
@pytest.mark.parametrize("token", [True, False], ids=["token", "no-token"])
def test_open_reads(open_reads: Any, method: str, path: str, token: bool) -> None:
    protected = method == "POST"
    assert _fuzz(open_reads, method, path, AUTH if token else {}, protected) > 0


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
@pytest.mark.parametrize("token", [True, False], ids=["token", "no-token"])
def test_protected_reads(protected_reads: Any, method: str, path: str, token: bool) -> None:
    protected = path not in ("/healthz", "/readyz")
    assert _fuzz(protected_reads, method, path, AUTH if token else {}, protected) > 0
