"""Coverage-guided fuzzing of ``Codec.decode`` with atheris (not collected by pytest).

The property is the codec's contract: for any bytes, ``decode`` returns a value or raises
a :class:`novacache.errors.CodecError` subclass; anything else (another exception, a
crash, a sanitizer report) is a finding. Each input is decoded by five codecs over both
framings: plain (with a registered dataclass), json, signed pickle and encrypted. Frames
that decode are re-encoded and decoded again (except by the json codec, which is lossy on
purpose), which must give an equal value.

    pip install 'novacache[fuzz]'
    python tests/fuzz/fuzz_codec.py --seed-corpus tests/fuzz/corpus
    python tests/fuzz/fuzz_codec.py --stack-size 262144 -max_total_time=600 tests/fuzz/corpus
    NOVACACHE_SANITIZE=1 ... for a build with ASan/UBSan (see setup.py)

``--pure`` fuzzes only the pure-Python twin; ``--seed-corpus DIR`` writes frames to start
from: valid ones, values and hand-made payloads nested up to and far beyond the nesting
limit (old and new container forms; a seed of ``ser | flags | payload`` reaches the
serializer behind a valid checksum, see ``one_input``). ``--stack-size N`` runs the
fuzzer in a thread with an N-byte stack (``threading.stack_size``), so C stack use that
grows with the input crashes there as it would in a small thread.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import sys
import threading
from pathlib import Path
from typing import Any

import atheris  # type: ignore[import-not-found]

with atheris.instrument_imports():
    from novacache import KeyRing, errors
    from novacache.codec import MAX_DEPTH, CodecAPI, PureCodec
    from novacache.codec.frame import COMPRESSED, SER_MSGPACK, pack_plain

KEY = bytes(range(32))
PICKLE_KEY = b"k" * 32


@dataclasses.dataclass(frozen=True)
class FuzzNode:
    """A registered dataclass, so frames that name it reach its restore path."""

    value: Any


_NODE = f"{FuzzNode.__module__}.{FuzzNode.__qualname__}".encode()


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
            cls(compress_min=16, dataclasses=[FuzzNode]),
            cls(serializer="json"),
            cls(serializer="pickle", pickle_key=PICKLE_KEY),
            cls(keyring=ring),
        ]
    return out


def _deep_values() -> list[Any]:
    # Values at the nesting limit and one level past it (refused: not written), of
    # every container kind.
    out: list[Any] = []
    for depth in (MAX_DEPTH - 1, MAX_DEPTH):
        for wrap in (
            lambda v: [v],
            lambda v: (v,),
            lambda v: {"k": v},
            lambda v: frozenset([v]),
            FuzzNode,
        ):
            value: Any = 0
            for _ in range(depth):
                value = wrap(value)
            out.append(value)
    return out


def _deep_payloads() -> list[bytes]:
    # msgpack nested past the limit, by hand: arrays, maps, inline marks (tuple 12,
    # frozenset 14, dataclass 15) and old nested extensions (tuple 1, dataclass 10).
    name = bytes((0xA0 | len(_NODE),)) + _NODE
    levels = [
        b"\x91",
        b"\x81\xa1k",
        b"\x92\xc7\x00\x0c",
        b"\x92\xc7\x00\x0e",
        b"\x94\xc7\x00\x0f" + name + b"\xa5value",
    ]
    out = [level * depth + b"\x00" for level in levels for depth in (MAX_DEPTH, 2000)]
    for code in (1, 10):
        for depth in (MAX_DEPTH, 600):
            body = b"\x00"
            for _ in range(depth):
                inner = b"\x91" + body if code == 1 else b"\x92" + name + b"\x81\xa1v" + body
                size = len(inner)
                body = b"\xc9" + size.to_bytes(4, "big") + bytes((code,)) + inner
            out.append(body)
    return out


def _seed_corpus(directory: Path, codecs: list[Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    values: list[Any] = [b"raw", "text", 1, [1, (2, 3)], {"a": {1, 2}}, b"a" * 300]
    values += _deep_values()
    n = 0
    for codec in codecs:
        for value in values:
            try:
                frame = codec.encode("k", value)
            except errors.SerializerRefused:
                continue
            (directory / f"seed-{n:03d}").write_bytes(frame)
            n += 1
    for payload in _deep_payloads():
        # ser | flags | payload: one_input wraps it in a valid frame too.
        (directory / f"seed-{n:03d}").write_bytes(bytes((SER_MSGPACK, 0)) + payload)
        (directory / f"seed-{n + 1:03d}").write_bytes(pack_plain(SER_MSGPACK, 0, payload))
        n += 2


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
    stack = 0
    if "--stack-size" in argv:
        i = argv.index("--stack-size")
        stack = int(argv[i + 1])
        del argv[i : i + 2]
    atheris.Setup(argv, _on_stack(one_input, stack) if stack else one_input)
    atheris.Fuzz()


def _on_stack(test: Any, stack: int) -> Any:
    """``test``, run by a worker thread with a ``stack``-byte stack (atheris itself must
    run in the main thread): an exception comes back to be raised here, a crash of the
    worker is a crash of the process, which libFuzzer reports."""
    inputs: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    outcomes: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()

    def work() -> None:
        while True:
            data = inputs.get()
            try:
                test(data)
            except BaseException as exc:  # handed to the fuzzer's thread
                outcomes.put(exc)
            else:
                outcomes.put(None)

    threading.stack_size(stack)
    threading.Thread(target=work, name="fuzz-small-stack", daemon=True).start()

    def run(data: bytes) -> None:
        inputs.put(data)
        failure = outcomes.get()
        if failure is not None:
            raise failure

    return run


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
