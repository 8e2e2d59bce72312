"""AES-256-GCM keys for the codec, held in a :class:`KeyRing` that allows rotation."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NoReturn

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import ConfigurationError

__all__ = ["KEY_SIZE", "KeyRing"]

KEY_SIZE = 32  # AES-256


def _cipher(key_id: int, key: bytes) -> AESGCM:
    if type(key_id) is not int or not 1 <= key_id <= 255:
        raise ConfigurationError("a key id is an int in 1..255 (0 means unencrypted)")
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_SIZE:
        # Note that the message names the length only, never the key.
        size = len(key) if isinstance(key, (bytes, bytearray)) else type(key).__name__
        raise ConfigurationError(f"key {key_id}: an AES-256 key is 32 bytes, got {size}")
    return AESGCM(bytes(key))


class KeyRing:
    """The AES-256-GCM keys of a codec: one active key that encrypts, older keys that
    still decrypt, each under a key id (1..255) written into every frame.

    To rotate without flushing the cache: :meth:`add` the new key (it becomes active),
    let entries written under the old key expire or be rewritten, then :meth:`retire` the
    old id. The raw keys are not kept: only the ciphers built from them, and no repr,
    error or log line shows key material.

    Note that a ring is shared by reference: a codec built on it sees every rotation.
    Each change replaces the ring's tables in one assignment, so readers on other
    threads see either the old or the new state, never half of one.
    """

    __slots__ = ("_active", "_ciphers")

    _active: tuple[int, AESGCM]
    _ciphers: dict[int, AESGCM]

    def __init__(self, keys: Mapping[int, bytes], active: int) -> None:
        ciphers = {key_id: _cipher(key_id, key) for key_id, key in keys.items()}
        if active not in ciphers:
            raise ConfigurationError(f"the active key id {active} is not among the keys")
        self._ciphers = ciphers
        self._active = (active, ciphers[active])

    @classmethod
    def generate(cls, key_id: int = 1) -> KeyRing:
        """Return a ring with one fresh random key (``os.urandom``) under ``key_id``."""
        return cls({key_id: os.urandom(KEY_SIZE)}, active=key_id)

    @property
    def active_id(self) -> int:
        """The id of the key that encrypts new frames."""
        return self._active[0]

    @property
    def key_ids(self) -> list[int]:
        """Every id this ring can decrypt, in ascending order."""
        return sorted(self._ciphers)

    def add(self, key_id: int, key: bytes, *, activate: bool = True) -> None:
        """Add a key; with ``activate`` (the default) new frames are encrypted with it.

        Raises :class:`~novacache.errors.ConfigurationError` if ``key_id`` is taken.
        """
        if key_id in self._ciphers:
            raise ConfigurationError(f"key id {key_id} is already in the ring")
        cipher = _cipher(key_id, key)
        self._ciphers = {**self._ciphers, key_id: cipher}
        if activate:
            self._active = (key_id, cipher)

    def activate(self, key_id: int) -> None:
        """Make the key ``key_id`` (already in the ring) the one that encrypts."""
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise ConfigurationError(f"no key with id {key_id} in the ring")
        self._active = (key_id, cipher)

    def retire(self, key_id: int) -> None:
        """Drop the key ``key_id``: frames written under it no longer decrypt.

        The active key cannot be retired; activate another one first.
        """
        if key_id == self._active[0]:
            raise ConfigurationError("the active key cannot be retired")
        if key_id not in self._ciphers:
            raise ConfigurationError(f"no key with id {key_id} in the ring")
        self._ciphers = {k: c for k, c in self._ciphers.items() if k != key_id}

    def __repr__(self) -> str:
        return f"KeyRing(active={self._active[0]}, key_ids={self.key_ids})"

    def __reduce__(self) -> NoReturn:
        # Note that pickling would have to write the keys out; refuse instead.
        raise TypeError("a KeyRing cannot be pickled (it would write its keys out)")
