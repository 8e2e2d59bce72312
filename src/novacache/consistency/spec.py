"""The consistency models per key prefix, and session tokens (no I/O here).

``consistency={"acct:": "strong", "user:": "session", "feed:": "monotonic"}``: a key
takes the model of the longest prefix it begins with, else ``"eventual"`` (today's
behaviour, the default). See docs/consistency.md for what each model promises.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final, Literal

from ..errors import ConfigurationError, InvalidSessionToken
from .hlc import MAX_STAMP, MAX_WRITER, Version

__all__ = [
    "EVENTUAL",
    "MAX_TOKEN_CHARS",
    "MAX_TRACKED",
    "MODELS",
    "MONOTONIC",
    "SESSION",
    "STRONG",
    "Model",
    "Models",
    "Stamps",
    "Tracked",
    "decode_token",
    "encode_token",
]

Model = Literal["eventual", "strong", "session", "monotonic"]
EVENTUAL: Final = "eventual"
STRONG: Final = "strong"
SESSION: Final = "session"
MONOTONIC: Final = "monotonic"
MODELS: Final = (EVENTUAL, STRONG, SESSION, MONOTONIC)

#: Keys a session remembers the version of, at most (the oldest is forgotten first).
MAX_TRACKED = 1024
#: The longest session token accepted.
MAX_TOKEN_CHARS = 256 * 1024
_TOKEN_PREFIX = "nv2."
# Tokens of the first format (their versions were the models' own, before the envelope
# carried one): refused with a message that says so.
_OLD_PREFIXES = ("nv1.",)
# Note that without a session_key a token is validated (this fixed key makes its MAC a
# checksum: a truncated or edited token is refused) but not signed: anyone can forge one.
_UNSIGNED = b"novacache-session-token"


class Models:
    """The model of each key, by the longest matching prefix (``"eventual"`` when none
    matches). An empty prefix ``""`` sets the model of every other key."""

    def __init__(self, spec: Mapping[str, str]) -> None:
        if not isinstance(spec, Mapping):
            raise ConfigurationError("consistency= is a mapping of key prefix to model")
        rules: list[tuple[str, Model]] = []
        for prefix, model in spec.items():
            if not isinstance(prefix, str):
                raise ConfigurationError(f"a consistency prefix is a str, not {prefix!r}")
            if model not in MODELS:
                raise ConfigurationError(
                    f"consistency model of {prefix!r} is one of {', '.join(MODELS)}, not {model!r}"
                )
            rules.append((prefix, model))  # type: ignore[arg-type]
        rules.sort(key=lambda rule: -len(rule[0]))
        self.rules: tuple[tuple[str, Model], ...] = tuple(rules)
        self.prefixes = tuple(prefix for prefix, model in rules if model != EVENTUAL)
        self.uses = frozenset(model for _, model in rules)

    def model(self, key: str) -> Model:
        """The model of ``key``."""
        if not key.startswith(self.prefixes):
            return EVENTUAL
        for prefix, model in self.rules:
            if key.startswith(prefix):
                return model
        return EVENTUAL  # pragma: no cover - startswith(prefixes) found one

    def __repr__(self) -> str:
        return f"Models({dict(self.rules)!r})"


class Tracked:
    """The highest version seen per key, for at most ``limit`` keys (the least recently
    updated is forgotten first: the guarantee of a forgotten key starts over).
    Thread-safe."""

    def __init__(self, limit: int = MAX_TRACKED) -> None:
        self.limit = limit
        self.versions: OrderedDict[str, Version] = OrderedDict()
        self._lock = threading.Lock()

    def floor(self, key: str) -> Version | None:
        """The highest version seen for ``key`` (``None``: none)."""
        return self.versions.get(key)

    def saw(self, key: str, version: Version) -> None:
        """Remember ``version`` of ``key`` when it is the highest so far."""
        with self._lock:
            versions = self.versions
            old = versions.get(key)
            if old is None or version > old:
                versions[key] = version
                versions.move_to_end(key)
                while len(versions) > self.limit:
                    versions.popitem(last=False)


class Stamps:
    """The version of the value an L1 holds per key, with that value object itself, for
    at most ``limit`` keys (the oldest stamp is dropped first: then its L1 copy has an
    unknown version). Thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._stamps: OrderedDict[str, tuple[Any, Version]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[Any, Version] | None:
        """``(value, version)`` stamped for ``key``, or ``None``."""
        return self._stamps.get(key)

    def put(self, key: str, value: Any, version: Version) -> None:
        with self._lock:
            stamps = self._stamps
            stamps[key] = (value, version)
            stamps.move_to_end(key)
            while len(stamps) > self.limit:
                stamps.popitem(last=False)

    def pop(self, key: str) -> None:
        with self._lock:
            self._stamps.pop(key, None)

    def __len__(self) -> int:
        return len(self._stamps)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(body: str, key: bytes | None) -> str:
    digest = hmac.new(key or _UNSIGNED, body.encode("ascii"), hashlib.sha256).digest()
    return _b64(digest[:16])


def encode_token(versions: Mapping[str, Version], key: bytes | None = None) -> str:
    """A compact text (URL-safe) of the versions a session saw (the envelope versions
    of :mod:`.hlc`), MAC'ed with ``key``."""
    items = [[k, v.stamp, v.writer] for k, v in versions.items()]
    body = _b64(json.dumps(items, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{_TOKEN_PREFIX}{body}.{_mac(body, key)}"


def decode_token(token: str, key: bytes | None = None) -> dict[str, Version]:
    """The versions of a token made by :func:`encode_token` with the same ``key``;
    :class:`~novacache.errors.InvalidSessionToken` for anything else, a token of the
    older format (``nv1.``, made before sessions compared envelope versions) included."""
    if not isinstance(token, str):
        raise InvalidSessionToken(f"a session token is a str, not {type(token).__name__}")
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidSessionToken(f"session token longer than {MAX_TOKEN_CHARS} characters")
    if token.startswith(_OLD_PREFIXES):
        raise InvalidSessionToken(
            "session token of an older format (nv1): it cannot be resumed, start a new session"
        )
    if not token.startswith(_TOKEN_PREFIX) or token.count(".") != 2:
        raise InvalidSessionToken("not a novacache session token")
    _, body, mac = token.split(".")
    if not hmac.compare_digest(mac.encode("ascii", "replace"), _mac(body, key).encode()):
        raise InvalidSessionToken("session token signature does not match")
    try:
        items = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError):
        raise InvalidSessionToken("session token body is malformed") from None
    out: dict[str, Version] = {}
    if type(items) is not list or len(items) > MAX_TRACKED:
        raise InvalidSessionToken("session token body is malformed")
    for item in items:
        if (
            type(item) is not list
            or len(item) != 3
            or type(item[0]) is not str
            or type(item[1]) is not int
            or type(item[2]) is not int
            or not 0 <= item[1] <= MAX_STAMP
            or not 0 <= item[2] <= MAX_WRITER
        ):
            raise InvalidSessionToken("session token body is malformed")
        out[item[0]] = Version(item[1], item[2])
    return out
