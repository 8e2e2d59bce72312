"""Every codec test runs against both framings through the ``codec_cls`` fixture.

``codec_cls`` is a ``Codec`` class whose framing is ``novacache._codec`` (compiled) or
``novacache.codec.frame`` (the pure-Python twin). When the compiled module does not
import, its tests are skipped locally but fail when the ``CI`` environment variable is set.
"""

from __future__ import annotations

from typing import Any

import pytest
from codec_helpers import FRAMINGS, load_codec_class


@pytest.fixture(params=FRAMINGS, scope="session")
def codec_cls(request: pytest.FixtureRequest) -> type[Any]:
    """A ``Codec`` class on the framing under test."""
    return load_codec_class(request.param)


@pytest.fixture(scope="session")
def both_classes() -> tuple[type[Any], type[Any]]:
    """(compiled, pure) Codec classes, for the tests that compare their frames."""
    return load_codec_class("compiled"), load_codec_class("pure")
