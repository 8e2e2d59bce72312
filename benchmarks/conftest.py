"""pytest-benchmark suites of the in-process cache beside its peers.

Every test is parametrised over the implementations of ``novacache.benchmark.peers``
(the same adapters ``novacache bench`` uses) and over the two key orders, and sets
``benchmark.group`` so that peers sit side by side in pytest-benchmark's table. One
benchmarked call runs the same compiled loop as ``novacache bench`` over the whole key
list (``extra_info["ops"]`` keys), so divide the times by that for ns/op.

    pytest benchmarks                         # measure (see --l1-size)
    pytest benchmarks --benchmark-disable -q  # smoke test: every loop runs once
    pytest benchmarks --l1-big                # also the 1M / 5M entry hit rows

An implementation that is not installed (or the compiled core when it was not built) is
skipped with the reason, never an error.
"""

from __future__ import annotations

import pytest

from l1_support import ORDERS, KeySets


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--l1-big",
        action="store_true",
        help="also run the tests marked big (caches of 1M and 5M entries: minutes, GBs)",
    )
    parser.addoption(
        "--l1-size",
        type=int,
        default=10_000,
        help="entries in every cache and keys per benchmarked loop (default 10000)",
    )


@pytest.fixture(scope="session")
def keysets(request: pytest.FixtureRequest) -> KeySets:
    """The session's key lists (``--l1-size`` keys)."""
    return KeySets(int(request.config.getoption("--l1-size")))


@pytest.fixture(params=ORDERS)
def order(request: pytest.FixtureRequest) -> str:
    """The key order of one test: "insertion" or "random"."""
    return str(request.param)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "big: caches of millions of entries (--l1-big)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--l1-big"):
        return
    skip = pytest.mark.skip(reason="big: run with --l1-big")
    for item in items:
        if "big" in item.keywords:
            item.add_marker(skip)
