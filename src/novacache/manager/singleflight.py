"""Single-flight: one call of a loader per key at a time, its outcome shared.

:class:`SingleFlight` (threads) and :class:`AsyncSingleFlight` (the tasks of one event
loop); one source, ``_async/singleflight.py``, see there.
"""

from __future__ import annotations

from ._async.singleflight import AsyncSingleFlight
from ._sync.singleflight import SingleFlight

__all__ = ["AsyncSingleFlight", "SingleFlight"]
