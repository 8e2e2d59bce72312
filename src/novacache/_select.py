"""The one switch every implementation selector reads (``_local``, ``codec._framing``).

``NOVACACHE_NO_EXTENSIONS`` set to a non-empty value other than ``0``/``false``/``no``,
or an interpreter other than CPython, selects the pure-Python twins. It is read once, at
import.
"""

from __future__ import annotations

import os
import sys

__all__ = ["NO_EXTENSIONS"]

NO_EXTENSIONS: bool = (
    os.environ.get("NOVACACHE_NO_EXTENSIONS", "").strip().lower() not in ("", "0", "false", "no")
    or sys.implementation.name != "cpython"
)
