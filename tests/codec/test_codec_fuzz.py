"""100,000+ random and mutated frames per framing: nothing but CodecError, no wrong value.

Seeded, so a failure reproduces: the message names the seed and the frame. For longer,
coverage-guided runs use the atheris harness in ``tests/fuzz/``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from codec_helpers import KEY, OTHER_KEY, CountingNonce

from novacache import KeyRing, errors
from novacache.codec import frame

SEED = 20261126
FRAMES_PER_FRAMING = 100_000
PICKLE_KEY = b"k" * 32

SAMPLE_VALUES: list[Any] = [
    b"",
    b"raw",
    b"a" * 700,
    "text",
    "t\u00e9xt " * 200,
    0,
    -1,
    2**70,
    1.5,
    None,
    [1, 2, 3],
    (1, (2,)),
    {"a": 1, "b": [b"x", {"c": None}]},
    {1, 2},
    list(range(300)),
]


def build_codecs(codec_cls: Any) -> dict[str, Any]:
    ring = KeyRing({1: KEY, 2: OTHER_KEY}, active=1)
    return {
        "plain": codec_cls(compress_min=64),
        "json": codec_cls(serializer="json", compress_min=64),
        "pickle": codec_cls(serializer="pickle", pickle_key=PICKLE_KEY, compress_min=64),
        "encrypted": codec_cls(keyring=ring, compress_min=64, _nonce_source=CountingNonce()),
    }


def mutations(rng: random.Random) -> list[Callable[[bytes], bytes]]:
    def flip_bit(data: bytes) -> bytes:
        out = bytearray(data)
        i = rng.randrange(len(out) * 8)
        out[i // 8] ^= 1 << (i % 8)
        return bytes(out)

    def flip_bits(data: bytes) -> bytes:
        out = bytearray(data)
        for _ in range(rng.randint(2, 8)):
            i = rng.randrange(len(out) * 8)
            out[i // 8] ^= 1 << (i % 8)
        return bytes(out)

    def overwrite(data: bytes) -> bytes:
        out = bytearray(data)
        i = rng.randrange(len(out))
        n = rng.randint(1, 8)
        out[i : i + n] = rng.randbytes(n)
        return bytes(out)

    def header_field(data: bytes) -> bytes:
        out = bytearray(data)
        out[rng.randrange(2, min(10, len(out)))] = rng.randrange(256)
        return bytes(out)

    def truncate(data: bytes) -> bytes:
        return data[: rng.randrange(len(data))]

    def extend(data: bytes) -> bytes:
        return data + rng.randbytes(rng.randint(1, 16))

    def splice(data: bytes) -> bytes:
        i, j = sorted(rng.randrange(len(data) + 1) for _ in range(2))
        return data[:i] + data[j:]

    return [flip_bit, flip_bits, overwrite, header_field, truncate, extend, splice]


def random_frames(rng: random.Random) -> Iterator[bytes]:
    """Bytes that are not derived from a real frame."""
    while True:
        kind = rng.randrange(4)
        if kind == 0:  # pure noise
            yield rng.randbytes(rng.randint(0, 64))
        elif kind == 1:  # right magic and version, noise after
            yield b"NC\x01" + rng.randbytes(rng.randint(0, 64))
        elif kind == 2:  # a well-formed header around noise (valid length, wrong checksum)
            body = rng.randbytes(rng.randint(0, 48))
            header = b"NC\x01" + bytes((rng.randrange(6), rng.randrange(4), rng.randrange(3)))
            yield header + len(body).to_bytes(4, "little") + body + rng.randbytes(8)
        else:  # a valid checksum around a noise payload: reaches the serializers
            flags = rng.choice((0, 0, frame.COMPRESSED))
            payload = rng.randbytes(rng.randint(0, 48))
            if flags and rng.random() < 0.5:
                payload = rng.randint(0, 200).to_bytes(4, "little") + payload
            yield frame.pack_plain(rng.randrange(6), flags, payload)


def test_fuzz_decode_sees_only_codec_errors(codec_cls: Any) -> None:
    rng = random.Random(SEED)
    codecs = build_codecs(codec_cls)
    originals = []
    for name, codec in codecs.items():
        for value in SAMPLE_VALUES:
            for key in ("k", "user:42"):
                try:
                    originals.append((name, key, value, codec.encode(key, value)))
                except errors.SerializerRefused:  # json: no bytes, no big ints
                    continue
    mutate = mutations(rng)
    noise = random_frames(rng)
    seen: dict[str, int] = {}
    for i in range(FRAMES_PER_FRAMING):
        name, key, value, original = rng.choice(originals)
        codec = codecs[name]
        if i % 4 == 0:  # noise, offered to a random codec
            data = next(noise)
            derived = False
        else:
            data = rng.choice(mutate)(original)
            derived = True
        try:
            result = codec.decode(key, data)
        except errors.CodecError as exc:
            seen[type(exc).__name__] = seen.get(type(exc).__name__, 0) + 1
            continue
        except BaseException as exc:  # pragma: no cover - the failure this test hunts
            raise AssertionError(
                f"seed {SEED} step {i}: {type(exc).__name__}: {exc!r} for frame {data!r}"
            ) from exc
        if derived and data != original:
            # Every byte of a frame is covered by its checksum or GCM tag: a changed frame
            # that decodes is a wrong value unless it decodes to the same value.
            assert result == value, f"seed {SEED} step {i}: wrong value from {data!r}"
        seen["ok"] = seen.get("ok", 0) + 1
    assert sum(seen.values()) == FRAMES_PER_FRAMING
    # The run reached each layer, not only the magic check.
    for layer in ("CorruptFrame", "ChecksumMismatch", "DecryptionFailed", "UnknownFormat"):
        assert seen.get(layer, 0) > 100, seen


def test_fuzz_twins_agree_on_every_outcome(both_classes: tuple[type[Any], type[Any]]) -> None:
    rng = random.Random(SEED + 1)
    compiled, pure = (build_codecs(cls) for cls in both_classes)
    mutate = mutations(rng)
    noise = random_frames(rng)
    originals = [
        (name, codec.encode("k", value))
        for name, codec in compiled.items()
        for value in SAMPLE_VALUES
        if name != "json"
    ]
    for i in range(20_000):
        name, original = rng.choice(originals)
        data = next(noise) if i % 4 == 0 else rng.choice(mutate)(original)
        outcomes = []
        for codecs in (compiled, pure):
            try:
                outcomes.append(("ok", codecs[name].decode("k", data)))
            except errors.CodecError as exc:
                outcomes.append((type(exc).__name__, None))
        assert outcomes[0] == outcomes[1], (name, data)
