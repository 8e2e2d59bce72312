"""What every warm-up shares: its result and the check of a request (the contract is
in :mod:`novacache.novacron.warmup`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import InvalidArgument
from .keys import check_id

__all__ = ["SCOPES", "Scope", "WarmupResult", "check_request"]

Scope = Literal["node", "cluster", "all"]
SCOPES: tuple[str, ...] = ("node", "cluster", "all")


@dataclass(frozen=True, slots=True)
class WarmupResult:
    """What a warm-up did: entries ``loaded`` from the source into the cache, ``skipped``
    (already cached), ``failed`` (the source failed for them), in ``seconds``."""

    loaded: int
    skipped: int
    failed: int
    seconds: float


def check_request(
    scope: object,
    targets: object,
    parameters: Mapping[str, Any] | None,
    allowed: Mapping[str, type | tuple[type, ...]],
) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """The scope, the node ids (empty unless the scope is ``"node"``) and the
    parameters of a warm-up request, checked (:class:`InvalidArgument` otherwise)."""
    if scope not in SCOPES:
        raise InvalidArgument(f"scope is one of {', '.join(SCOPES)}, not {scope!r:.40}")
    if isinstance(targets, (str, bytes)) or not isinstance(targets, Sequence):
        raise InvalidArgument("targets is a sequence of node ids (a list), not one str")
    nodes: tuple[str, ...] = ()
    if scope == "node":
        nodes = tuple(dict.fromkeys(check_id("node_id", t) for t in targets))
        if not nodes:
            raise InvalidArgument('scope "node" needs at least one node id in targets')
    params = dict(parameters or {})
    for name, value in params.items():
        kind = allowed.get(name)
        if kind is None:
            raise InvalidArgument(
                f"unknown warm-up parameter {name!r:.40} (known: {', '.join(sorted(allowed))})"
            )
        if (isinstance(value, bool) and kind is int) or not isinstance(value, kind):
            raise InvalidArgument(f"warm-up parameter {name!r} has the wrong type")
    size = params.get("batch_size")
    if size is not None and not 1 <= size <= 100_000:
        raise InvalidArgument("batch_size is in 1..100000")
    return str(scope), nodes, params
