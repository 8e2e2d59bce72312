"""The NovaCron models: frozen dataclasses the codec round-trips without pickle.

Every model is registered with the codec that :func:`codec` builds (msgpack, each
dataclass restored field by field under its qualified name; nothing is imported or
constructed by name from a frame). A manager that serves the domain caches must encode
with such a codec: the caches check it when they are built.

Times are seconds since the epoch (``float``); sizes are bytes, MiB or GiB as named.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import xxhash

from ..codec import Codec
from ..errors import InvalidArgument

__all__ = [
    "MIGRATION_EVENTS",
    "MODELS",
    "AllocationScore",
    "MigrationCheckpoint",
    "MigrationEvent",
    "MigrationProgress",
    "MigrationState",
    "MigrationUpdate",
    "NodeCapacity",
    "NodeRecommendation",
    "TimeRange",
    "VMConfiguration",
    "VMMetrics",
    "VMSpecification",
    "VMState",
    "VMStateChange",
    "codec",
]


@dataclass(frozen=True, slots=True)
class VMState:
    """The state of one VM as its manager reports it (``generation`` grows with each
    change, so two states of the same VM can be ordered)."""

    vm_id: str
    status: str
    node_id: str
    generation: int = 0
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A window of metrics: ``start`` to ``end`` (seconds since the epoch) by ``step``."""

    start: float
    end: float
    step: float = 60.0

    def __post_init__(self) -> None:
        for name in ("start", "end", "step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidArgument(f"TimeRange.{name} is a number, not {value!r}")
            if not math.isfinite(value):
                raise InvalidArgument(f"TimeRange.{name} is finite, not {value!r}")
        if self.end < self.start or self.step <= 0:
            raise InvalidArgument("a TimeRange ends at or after its start, with a step > 0")

    @property
    def text(self) -> str:
        """The range in a key: ``<start>-<end>-<step>`` (milliseconds)."""
        return f"{round(self.start * 1000)}-{round(self.end * 1000)}-{round(self.step * 1000)}"


@dataclass(frozen=True, slots=True)
class VMMetrics:
    """The monitor's aggregates of one VM over a :class:`TimeRange`."""

    vm_id: str
    time_range: TimeRange
    cpu_percent: float
    memory_percent: float
    disk_iops: float = 0.0
    network_mbps: float = 0.0
    samples: int = 0
    collected_at: float = 0.0


@dataclass(frozen=True, slots=True)
class VMConfiguration:
    """How one VM is configured (changes rarely: the longest TTL)."""

    vm_id: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    image: str = ""
    networks: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class VMStateChange:
    """A VM changed state: ``new`` (``None`` when unknown) replaces ``old``."""

    vm_id: str
    old: VMState | None = None
    new: VMState | None = None
    timestamp: float = 0.0


@dataclass(frozen=True, slots=True)
class NodeCapacity:
    """What one node has free, measured at ``last_updated``."""

    node_id: str
    total_cpus: int
    free_cpus: float
    total_memory_mb: int
    free_memory_mb: int
    free_disk_gb: int = 0
    free_gpus: int = 0
    last_updated: float = 0.0


@dataclass(frozen=True, slots=True)
class VMSpecification:
    """What a VM to place asks for."""

    vcpus: int
    memory_mb: int
    disk_gb: int = 0
    gpus: int = 0
    affinity: str = ""

    def fits(self, capacity: NodeCapacity) -> bool:
        """Whether ``capacity`` still has room for this VM."""
        return (
            capacity.free_cpus >= self.vcpus
            and capacity.free_memory_mb >= self.memory_mb
            and capacity.free_disk_gb >= self.disk_gb
            and capacity.free_gpus >= self.gpus
        )

    @property
    def fingerprint(self) -> str:
        """A short stable name of the specification for keys (xxh3-64 of its fields:
        the same on every process and version of Python)."""
        text = f"{self.vcpus}|{self.memory_mb}|{self.disk_gb}|{self.gpus}|{self.affinity}"
        return xxhash.xxh3_64_hexdigest(text.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True, slots=True)
class AllocationScore:
    """How well a node suits a specification (higher is better)."""

    node_id: str
    spec_fingerprint: str
    score: float
    computed_at: float = 0.0
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NodeRecommendation:
    """One node of an answer to "where should this VM go", best first by ``rank``."""

    node_id: str
    score: float
    rank: int


@dataclass(frozen=True, slots=True)
class MigrationState:
    """The state of one live migration (``status``: pending, running, completed,
    failed)."""

    migration_id: str
    vm_id: str
    source_node: str
    target_node: str
    status: str
    started_at: float = 0.0
    updated_at: float = 0.0
    error: str = ""


@dataclass(frozen=True, slots=True)
class MigrationProgress:
    """How far one migration is."""

    migration_id: str
    percent_complete: float
    bytes_transferred: int
    total_bytes: int
    transfer_rate: float = 0.0
    eta_seconds: float = 0.0
    last_updated: float = 0.0


@dataclass(frozen=True, slots=True)
class MigrationCheckpoint:
    """A point a migration can resume from, numbered by ``sequence_number``."""

    migration_id: str
    sequence_number: int
    bytes_transferred: int
    dirty_pages: int = 0
    created_at: float = 0.0
    data: bytes = b""


#: The kinds of :class:`MigrationEvent`, in the order a migration goes through them.
MIGRATION_EVENTS: Final = ("started", "progress", "checkpointed", "completed", "failed")


@dataclass(frozen=True, slots=True)
class MigrationEvent:
    """What the migration engine reports: ``type`` is one of :data:`MIGRATION_EVENTS`;
    ``state`` (started, completed, failed), ``progress`` (progress) or ``checkpoint``
    (checkpointed) carries the news."""

    type: str
    migration_id: str
    state: MigrationState | None = None
    progress: MigrationProgress | None = None
    checkpoint: MigrationCheckpoint | None = None
    error: str = ""
    timestamp: float = 0.0


@dataclass(frozen=True, slots=True)
class MigrationUpdate:
    """One entry of :meth:`~novacache.novacron.MigrationStateCache.stream_updates`:
    ``type`` is the event's, ``update_id`` its position in the migration's update log
    (a stream entry id on Redis, an ordered id on the store)."""

    type: str
    migration_id: str
    update_id: str = ""
    state: MigrationState | None = None
    progress: MigrationProgress | None = None
    checkpoint: MigrationCheckpoint | None = None
    error: str = ""
    timestamp: float = 0.0

    @property
    def final(self) -> bool:
        """Whether this update ends the migration (completed or failed)."""
        return self.type in ("completed", "failed")


#: Every model, in the order they are registered with :func:`codec`.
MODELS: Final[tuple[type, ...]] = (
    VMState,
    TimeRange,
    VMMetrics,
    VMConfiguration,
    VMStateChange,
    NodeCapacity,
    VMSpecification,
    AllocationScore,
    NodeRecommendation,
    MigrationState,
    MigrationProgress,
    MigrationCheckpoint,
    MigrationEvent,
    MigrationUpdate,
)


def codec(**options: Any) -> Codec:
    """A :class:`~novacache.Codec` that round-trips every model (``options`` go to
    ``Codec``: compression, a key ring, ...; ``dataclasses`` adds more)."""
    extra = tuple(options.pop("dataclasses", ()))
    return Codec(dataclasses=(*MODELS, *extra), **options)
