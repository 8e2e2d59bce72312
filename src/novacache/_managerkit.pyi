"""Type stub of the manager's compiled hit paths; the pure twin is ``novacache.manager._kit``
(and, for ``open_envelope``, ``novacache.manager.envelope``)."""

from collections.abc import Callable
from typing import Any, final

from typing_extensions import disjoint_base

def bind(envelope_type: type) -> None: ...

@disjoint_base
class ManagerSlots:
    _l1: Any

def get(self: Any, key: str, default: Any = None) -> Any: ...
def get_or_load(
    self: Any,
    key: str,
    loader: Callable[[], Any],
    ttl: float | None = None,
    *,
    tags: Any = (),
    negative_ttl: float | None = None,
    stale_ttl: float | None = None,
    beta: float | None = None,
    lease: float | None = None,
) -> Any: ...

@final
class CachedCall:
    def __init__(
        self,
        func: Callable[..., Any],
        local: Any,
        miss: Callable[[str, tuple[Any, ...], dict[str, Any] | None], Any],
        key: Callable[..., str],
        default_key: bool,
        is_async: bool = False,
    ) -> None: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def __get__(self, obj: Any, objtype: Any = None, /) -> Any: ...

@final
class Ready:
    def __init__(self, value: Any) -> None: ...
    def __await__(self) -> Any: ...
    def __iter__(self) -> Any: ...
    def __next__(self) -> Any: ...
    def send(self, arg: Any) -> Any: ...
    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any: ...
    def close(self) -> None: ...

def open_envelope(decoded: Any, clock: Callable[[], float] = ...) -> Any: ...
def aget(self: Any, key: str, default: Any = None) -> Any: ...
def aget_or_load(
    self: Any,
    key: str,
    loader: Callable[[], Any],
    ttl: float | None = None,
    *,
    tags: Any = (),
    negative_ttl: float | None = None,
    stale_ttl: float | None = None,
    beta: float | None = None,
    lease: float | None = None,
) -> Any: ...
def read(self: Any, key: str, down: dict[str, Any], seen: dict[str, Any] | None = None) -> Any: ...
def get_below(self: Any, key: str, default: Any = None) -> Any: ...
def fill_l1(
    self: Any, local: Any, bus: Any, plan: Any, key: str, frame: bytes, env: Any, gen: int
) -> None: ...
def hlc_tick(now: float) -> int: ...
def hlc_observe(stamp: int) -> None: ...
def hlc_last() -> int: ...
