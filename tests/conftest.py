"""Every L1 test runs against both implementations through the ``impl`` fixture.

``impl`` is the module under test: ``novacache._core`` (compiled) or
``novacache._local_py`` (the pure-Python twin). When the compiled core does not import,
its tests are skipped locally but fail when the ``CI`` environment variable is set.
"""

from __future__ import annotations

from types import ModuleType

import pytest

from _helpers import IMPLEMENTATIONS, FakeTimer, load_impl


@pytest.fixture(params=list(IMPLEMENTATIONS), scope="session")
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """The implementation module under test (LocalCache, Memoized, memoize, ...)."""
    return load_impl(request.param)


@pytest.fixture
def timer() -> FakeTimer:
    """A fresh fake timer, advanced with ``timer.tick(seconds)``."""
    return FakeTimer()
