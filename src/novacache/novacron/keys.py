"""The keys of the NovaCron caches, under a versioned namespace (``novacron:v1:...``).

One :class:`KeyGenerator` names every key, index tag and rule template, so a change of
layout is a change of ``version`` (old keys are simply never read again). Identifiers
(VM, node, migration ids) are checked: one that is empty, longer than 200 characters or
holds ``:``, a glob character (``*?[]``), a brace, ``\\``, a blank or a control character
would name other keys than the one meant, and raises
:class:`~novacache.errors.InvalidArgument`.
"""

from __future__ import annotations

import re

from ..errors import InvalidArgument
from .models import TimeRange, VMSpecification

__all__ = ["KeyGenerator", "check_id"]

_ID = re.compile(r"[^\s:*?\[\]{}\\\x00-\x1f\x7f]{1,200}\Z")
_NAMESPACE = re.compile(r"[a-z][a-z0-9_-]{0,31}\Z")


def check_id(kind: str, value: object) -> str:
    """``value`` when it is a usable identifier of ``kind`` (``"vm_id"``, ...)."""
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidArgument(
            f"{kind} is a str of 1-200 characters without ':', '*', '?', '[', ']', braces, "
            f"'\\\\', blanks or control characters, not {value!r:.60}"
        )
    return value


class KeyGenerator:
    """Names the keys of the domain caches: ``<namespace>:v<version>:<kind>:...``."""

    __slots__ = ("prefix",)

    def __init__(self, namespace: str = "novacron", version: int = 1) -> None:
        if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
            raise InvalidArgument(f"namespace is a short lowercase name, not {namespace!r}")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidArgument(f"version is an int >= 1, not {version!r}")
        self.prefix = f"{namespace}:v{version}:"

    # -- VM metadata (2.1) ----------------------------------------------------------

    def vm_state(self, vm_id: str) -> str:
        return f"{self.prefix}vm:{check_id('vm_id', vm_id)}:state"

    def vm_metrics(self, vm_id: str, time_range: TimeRange) -> str:
        if not isinstance(time_range, TimeRange):
            raise InvalidArgument(f"time_range is a TimeRange, not {type(time_range).__name__}")
        return f"{self.prefix}vm:{check_id('vm_id', vm_id)}:metrics:{time_range.text}"

    def vm_config(self, vm_id: str) -> str:
        return f"{self.prefix}vm:{check_id('vm_id', vm_id)}:config"

    # -- resource allocation (2.2) --------------------------------------------------

    def node_capacity(self, node_id: str) -> str:
        return f"{self.prefix}node:{check_id('node_id', node_id)}:capacity"

    def allocation_score(self, spec: VMSpecification, node_id: str) -> str:
        return f"{self.prefix}score:{_spec(spec).fingerprint}:{check_id('node_id', node_id)}"

    def optimal_nodes(self, spec: VMSpecification, count: int) -> str:
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10_000:
            raise InvalidArgument(f"count is an int in 1..10000, not {count!r}")
        return f"{self.prefix}optimal:{_spec(spec).fingerprint}:{count}"

    # -- migrations (3.1) -----------------------------------------------------------

    def migration_state(self, migration_id: str) -> str:
        return f"{self.prefix}migration:{check_id('migration_id', migration_id)}:state"

    def migration_progress(self, migration_id: str) -> str:
        return f"{self.prefix}migration:{check_id('migration_id', migration_id)}:progress"

    def migration_checkpoint(self, migration_id: str, sequence_number: int) -> str:
        """Zero-padded, so the keys of one migration sort by sequence number."""
        if (
            isinstance(sequence_number, bool)
            or not isinstance(sequence_number, int)
            or not 0 <= sequence_number < 10**20
        ):
            raise InvalidArgument(f"a sequence number is an int >= 0, not {sequence_number!r}")
        mid = check_id("migration_id", migration_id)
        return f"{self.prefix}migration:{mid}:checkpoint:{sequence_number:020d}"

    def checkpoint_index(self, migration_id: str) -> str:
        """The tag under which a migration's checkpoints are indexed (its index)."""
        return f"{self.prefix}migration:{check_id('migration_id', migration_id)}:checkpoints"

    def migration_update(self, migration_id: str, update_id: str) -> str:
        """An update in the store's log of a migration (``update_id`` sorts in order)."""
        return f"{self.prefix}migration:{check_id('migration_id', migration_id)}:update:{update_id}"

    def update_log(self, migration_id: str) -> str:
        """The Redis stream, or the store's index tag, of a migration's updates."""
        return f"{self.prefix}migration:{check_id('migration_id', migration_id)}:updates"

    def sequence_of(self, checkpoint_key: str) -> int | None:
        """The sequence number in a checkpoint key, or ``None`` for another key."""
        head, sep, tail = checkpoint_key.rpartition(":checkpoint:")
        if not sep or not head.startswith(self.prefix) or not tail.isdigit():
            return None
        return int(tail)

    # -- templates of the invalidation rules ----------------------------------------

    def template(self, kind: str) -> str:
        """The rule template of a key kind, with ``{vm_id}``/``{node_id}``/
        ``{migration_id}`` placeholders (the namespace holds no brace)."""
        templates = {
            "vm_state": "vm:{vm_id}:state",
            "vm_config": "vm:{vm_id}:config",
            "vm_metrics": "vm:{vm_id}:metrics:*",
            "node_capacity": "node:{node_id}:capacity",
            "node_scores": "score:*:{node_id}",
            "migration_state": "migration:{migration_id}:state",
            "migration_progress": "migration:{migration_id}:progress",
            "checkpoint_index": "migration:{migration_id}:checkpoints",
        }
        return self.prefix + templates[kind]


def _spec(spec: object) -> VMSpecification:
    if not isinstance(spec, VMSpecification):
        raise InvalidArgument(f"spec is a VMSpecification, not {type(spec).__name__}")
    return spec
