"""The exceptions novacache raises.

Every error novacache raises on purpose derives from :class:`NovaCacheError`, so one
``except NovaCacheError`` catches them all. Where an error has a natural builtin
counterpart it derives from that too (``EntryTooLarge`` is a ``ValueError``), so code
written for cachetools or ``dict`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "EntryTooLarge",
    "NovaCacheError",
]


class NovaCacheError(Exception):
    """Base class of every error novacache raises on purpose."""


class ConfigurationError(NovaCacheError, ValueError):
    """A cache, tier or codec was built with options that cannot work together."""


def _int_text(n: int) -> str:
    """``str(n)``, or its size in bits when the digits would be too many to print (``str``
    of an int beyond ``sys.get_int_max_str_digits()`` digits raises ``ValueError``)."""
    if abs(n).bit_length() <= 2000:  # at most 603 digits: below every allowed limit
        return str(n)
    return f"an int of {abs(n).bit_length()} bits"


class EntryTooLarge(NovaCacheError, ValueError):
    """One entry weighs more than the whole budget of the cache it was offered to.

    The cache is left exactly as it was: the entry is refused, nothing is evicted for it,
    and an older value under the same key stays in place.
    """

    def __init__(self, weight: int, maxbytes: int) -> None:
        super().__init__(f"entry weighs {_int_text(weight)}, more than maxbytes={maxbytes}")
        self.weight = weight
        self.maxbytes = maxbytes

    def __reduce__(self) -> tuple[type[EntryTooLarge], tuple[int, int]]:
        return (type(self), (self.weight, self.maxbytes))


# -- the codec ---------------------------------------------------------------------------
#
# Note that ``Codec.decode`` promises to raise nothing but a ``CodecError`` for any bytes it
# is given: callers (the tiers, the manager) treat every ``CodecError`` on a read as a miss
# and may delete the entry. No message below ever contains key material or payload bytes.

__all__ += [
    "ChecksumMismatch",
    "CodecError",
    "CorruptFrame",
    "DecryptionFailed",
    "FrameTooLarge",
    "SerializerRefused",
    "SignatureMismatch",
    "UnknownFormat",
    "ValueTooLarge",
]


class CodecError(NovaCacheError, ValueError):
    """A value could not be encoded into a frame, or a frame could not be decoded."""


class CorruptFrame(CodecError):
    """The bytes are not a well-formed frame: bad magic, truncated, inconsistent lengths,
    or a payload its serializer or decompressor cannot read."""


class ChecksumMismatch(CorruptFrame):
    """The xxh3-64 checksum of an unencrypted frame does not match its header and payload."""


class DecryptionFailed(CodecError):
    """An encrypted frame could not be opened: unknown key id, no key ring, a wrong key, an
    edited header, a value copied to another cache key, or an unencrypted frame offered
    to a codec that requires encryption."""


class UnknownFormat(CodecError):
    """The frame was written by a format version, flag or serializer this codec does not know
    (typically a newer novacache). It is refused, never guessed at."""


class ValueTooLarge(CodecError):
    """The serialized value is larger than the codec's ``max_size``; nothing was encoded."""

    def __init__(self, size: int, max_size: int) -> None:
        super().__init__(f"serialized value is {size} bytes, more than max_size={max_size}")
        self.size = size
        self.max_size = max_size

    def __reduce__(self) -> tuple[type[ValueTooLarge], tuple[int, int]]:
        return (type(self), (self.size, self.max_size))


class FrameTooLarge(CodecError):
    """A frame declares a payload larger than the codec's ``max_size``; it is refused before
    anything is allocated for it."""


class SerializerRefused(CodecError):
    """A serializer refused its input: a value of a type it cannot encode, a pickle frame
    read by a codec that did not opt in to pickle, or an unregistered dataclass."""


class SignatureMismatch(SerializerRefused):
    """A pickle frame carries no valid HMAC for this codec's pickle key: it is never
    unpickled."""


__all__ += [
    "StoreCorrupted",
    "StoreFull",
    "TierError",
    "TierTimeout",
    "TierUnavailable",
]


class TierError(NovaCacheError):
    """A remote or persistent tier (Redis, SQLite, PostgreSQL) failed an operation.

    The message names the tier and the operation, never a password, key material or a
    stored value.
    """


class TierUnavailable(TierError, ConnectionError):
    """The tier cannot be reached: connection refused or lost, or its circuit breaker
    is open (then raised at once, without touching the network)."""


class TierTimeout(TierError, TimeoutError):
    """A call to the tier did not complete within its timeout."""


class StoreCorrupted(TierError):
    """A store file or table is not a novacache store, or is damaged; names the path."""


class StoreFull(TierError):
    """The store could not write because its disk or quota is full; nothing already
    stored was lost."""


# -- the manager -------------------------------------------------------------------------

__all__ += ["PartialWrite", "ReentrantLoad"]


class PartialWrite(TierError):
    """A write (``set``, ``set_many``, ``delete``, ...) of the cache manager failed on one
    or more tiers; the other tiers it was meant for were written.

    ``failed`` maps the name of each tier that failed to the :class:`TierError` it raised;
    ``written`` names the tiers that took the write. A tier that failed may still hold the
    previous value of the keys. Raised only under the manager's ``on_write_error="raise"``
    policy (the default); under ``"report"`` the same information is returned instead.
    """

    def __init__(self, op: str, failed: dict[str, TierError], written: tuple[str, ...]) -> None:
        names = ", ".join(sorted(failed))
        super().__init__(f"{op}: failed on {names}; written to {', '.join(written) or 'none'}")
        self.op = op
        self.failed = dict(failed)
        self.written = tuple(written)

    def __reduce__(
        self,
    ) -> tuple[type[PartialWrite], tuple[str, dict[str, TierError], tuple[str, ...]]]:
        return (type(self), (self.op, self.failed, self.written))


class ReentrantLoad(NovaCacheError, RuntimeError):
    """``get_or_load(key, ...)`` was called from inside the loader already running for the
    same ``key`` in the same thread or task: waiting for itself would deadlock, so it is
    refused at once."""


# -- invalidation ------------------------------------------------------------------------

__all__ += ["EventFieldError", "MissingField"]


class EventFieldError(NovaCacheError, ValueError):
    """An invalidation event cannot fill a rule's placeholder: the field's value is
    ``None``, empty, or holds the character that ends the placeholder in a pattern (it
    would name other keys than the ones meant). Nothing was invalidated for the event.
    """

    def __init__(self, event: str, field: str, template: str, why: str) -> None:
        super().__init__(f"event {event!r}: field {field!r} of {template!r}: {why}")
        self.event = event
        self.field = field
        self.template = template
        self.why = why

    def __reduce__(self) -> tuple[type[EventFieldError], tuple[str, str, str, str]]:
        return (type(self), (self.event, self.field, self.template, self.why))


class MissingField(EventFieldError):
    """An invalidation event lacks a field that one of its rules names as a placeholder
    (``emit("vm.migrated", vm=1)`` for a rule on ``"vm:{vm_id}:state"``). Raised before
    anything is invalidated: a missing placeholder never widens into a pattern that
    matches everything."""

    def __init__(self, event: str, field: str, template: str, why: str = "missing") -> None:
        super().__init__(event, field, template, why)


# -- the NovaCron domain caches (novacache.novacron) ------------------------------------

__all__ += ["InvalidArgument", "SourceError"]


class InvalidArgument(NovaCacheError, ValueError):
    """A call of a domain cache got an argument it cannot use: an identifier that is
    empty or holds a character that would change the key it names (``:``, a glob
    character, a brace, blank or control characters), a time range that is not finite
    or ends before it starts, an unknown warm-up scope or parameter. Nothing was read,
    written or loaded."""


class SourceError(NovaCacheError):
    """A source of truth a domain cache reads through (the VM manager, the monitor, the
    scheduler, the migration engine) failed, or answered with something that is not the
    model it promised. Nothing was cached for the call; the source's own exception, if
    any, is the ``__cause__``.

    ``source`` names the source and ``op`` the call (``"vm.get_state"``); the message
    names them and the identifier, never the source's payload.
    """

    def __init__(self, source: str, op: str, detail: str) -> None:
        super().__init__(f"source {source!r} failed in {op}: {detail}")
        self.source = source
        self.op = op
        self.detail = detail

    def __reduce__(self) -> tuple[type[SourceError], tuple[str, str, str]]:
        return (type(self), (self.source, self.op, self.detail))


# -- consistency -------------------------------------------------------------------------

__all__ += ["ConsistencyUnavailable", "InvalidSessionToken"]


class ConsistencyUnavailable(TierError):
    """A read or write of a key under a ``strong`` model (or a ``session``/``monotonic``
    read that no reachable tier can serve at least as new as the caller has seen) could
    not be done with the promised consistency: the tier that holds the truth is
    unreachable. Nothing stale was served instead (these models choose consistency over
    availability).

    ``op`` is ``"get"``, ``"set"`` or ``"delete"``; ``key`` the key. ``applied`` says
    whether a write may have taken effect: ``False`` when it certainly did not (nothing
    was sent), ``None`` when it is unknown (the request may have reached the server).
    """

    def __init__(self, op: str, key: str, cause: str, applied: bool | None = None) -> None:
        super().__init__(f"{op} of a consistent key is unavailable: {cause}")
        self.op = op
        self.key = key
        self.cause = cause
        self.applied = applied

    def __reduce__(
        self,
    ) -> tuple[type[ConsistencyUnavailable], tuple[str, str, str, bool | None]]:
        return (type(self), (self.op, self.key, self.cause, self.applied))


class InvalidSessionToken(NovaCacheError, ValueError):
    """A session token given to ``manager.session(token)`` is malformed, too large, or
    its signature does not match the manager's ``session_key``. Nothing was resumed."""
