"""Coverage-guided fuzzing of ``Codec.decode`` with atheris (not collected by pytest).

The property is the codec's contract: for any bytes, ``decode`` returns a value or raises
a :class:`novacache.errors.CodecError` subclass; anything else (another exception, a
crash, a sanitizer report) is a finding. Each input is decoded by six codecs over both
framings: plain, json, signed pickle and encrypted. Frames that decode are re-encoded and
decoded again (except by the json codec, which is lossy on purpose), which must give an
equal value.

    pip install 'novacache[fuzz]'
    python tests/fuzz/fuzz_codec.py -atheris_runs=2000000 tests/fuzz/corpus
    NOVACACHE_SANITIZE=1 ... for a build with ASan/UBSan (see setup.py)

``--pure`` fuzzes only the pure-Python twin; ``--seed-corpus DIR`` writes valid frames
to start from.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import atheris  # type: ignore[import-not-found]

with atheris.instrument_imports():
    from novacache import KeyRing, errors
    from novacache.codec import CodecAPI, PureCodec
    from novacache.codec.frame import COMPRESSED, pack_plain

KEY = bytes(range(32))
PICKLE_KEY = b"k" * 32


def _classes(pure_only: bool) -> list[Any]:
    classes: list[Any] = [PureCodec]
    if not pure_only:
        from novacache._codec import FrameEngine

        classes.append(type("CompiledCodec", (CodecAPI, FrameEngine), {}))
    return classes


def _codecs(pure_only: bool) -> list[Any]:
    ring = KeyRing({1: KEY, 2: bytes(32)}, active=1)
    out = []
    for cls in _classes(pure_only):
        out += [
            cls(compress_min=16),
            cls(serializer="json"),
            cls(serializer="pickle", pickle_key=PICKLE_KEY),
            cls(keyring=ring),
        ]
    return out


def _seed_corpus(directory: Path, codecs: list[Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    values: list[Any] = [b"raw", "text", 1, [1, (2, 3)], {"a": {1, 2}}, b"a" * 300]
    n = 0
    for codec in codecs:
        for value in values:
            try:
                frame = codec.encode("k", value)
            except errors.SerializerRefused:
                continue
            (directory / f"seed-{n:03d}").write_bytes(frame)
            n += 1


def main() -> None:
    pure_only = "--pure" in sys.argv
    codecs = _codecs(pure_only)
    if "--seed-corpus" in sys.argv:
        _seed_corpus(Path(sys.argv[sys.argv.index("--seed-corpus") + 1]), codecs)
        return

    lossy = [c for c in codecs if "serializer='json'" in repr(c)]

    def one_input(data: bytes) -> None:
        check(data)
        if len(data) >= 2:
            # The same bytes behind a valid checksum, so mutations reach the serializers
            # and the decompressor instead of stopping at the checksum.
            check(pack_plain(data[0], data[1] & COMPRESSED, data[2:]))

    def check(data: bytes) -> None:
        for codec in codecs:
            try:
                value = codec.decode("k", data)
            except errors.CodecError:
                continue
            if codec in lossy:
                continue  # json writes a tuple read from a msgpack frame as a list
            try:
                again = codec.decode("k", codec.encode("k", value))
            except errors.SerializerRefused:
                continue  # e.g. a type only pickle frames carry
            if again != value and value == value:  # NaN is not equal to itself
                raise AssertionError(f"{codec!r}: {value!r} came back as {again!r}")

    argv = [a for a in sys.argv if a != "--pure"]
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
