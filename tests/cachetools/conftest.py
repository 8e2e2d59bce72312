"""Contract tests for ``novacache.cachetools``, bound to cachetools itself as reference.

The ``ct`` fixture is the package under test: ``cachetools`` (the reference, 8.0.2) or
``novacache.cachetools``; ``ct.keys`` and ``ct.func`` are its submodules. A contract
test states what both do; one that fails only for novacache is a divergence.
"""

from __future__ import annotations

from types import ModuleType

import pytest
from ct_helpers import PACKAGES, load_package


@pytest.fixture(params=list(PACKAGES), scope="session")
def ct(request: pytest.FixtureRequest) -> ModuleType:
    """cachetools or novacache.cachetools."""
    return load_package(PACKAGES[request.param])
