"""What C code breaks: references and memory on every path, threads sharing one codec."""

from __future__ import annotations

import gc
import sys
import threading
import tracemalloc
from typing import Any

from codec_helpers import KEY, OTHER_KEY

from novacache import KeyRing, errors
from novacache.codec import frame


def _exercise(codec: Any, value: Any, frames: list[bytes]) -> None:
    codec.decode("k", codec.encode("k", value))
    for data in frames:
        try:
            codec.decode("k", data)
        except errors.CodecError:
            pass
    for refused in (object(), _TOO_DEEP, _LOOP):
        try:
            codec.encode("k", refused)
        except errors.SerializerRefused:
            pass


# Refused by the nesting walk (deep, and holding itself) and by the msgpack scan.
_TOO_DEEP: Any = 0
for _ in range(200):
    _TOO_DEEP = [{"k": (_TOO_DEEP,)}]
_LOOP: Any = [1]
_LOOP.append({"again": _LOOP})
_DEEP_FRAMES = [
    frame.pack_plain(frame.SER_MSGPACK, 0, b"\x91" * 500 + b"\x00"),
    frame.pack_plain(frame.SER_MSGPACK, 0, b"\x92\x00\xc7\x00\x0c"),
    frame.pack_plain(frame.SER_MSGPACK, 0, b"\xc7\x03\x01\x92\x01\x02"),  # old (1, 2)
]


def test_no_growth_over_many_calls(codec_cls: Any) -> None:
    for codec in (codec_cls(compress_min=0), codec_cls(keyring=KeyRing({1: KEY}, active=1))):
        value = {"a": [1, 2, (3, 4)], "b": b"x" * 600}
        good = codec.encode("k", value)
        bad = [
            good[:-1],
            good[:9] + b"\xff" + good[10:],
            b"NC\x02",
            frame.pack_plain(frame.SER_MSGPACK, 0, b"\xc1"),
            frame.pack_plain(frame.SER_BYTES, frame.COMPRESSED, b"\xff\xff\xff\x7f\x00"),
            *_DEEP_FRAMES,
        ]
        for _ in range(200):
            _exercise(codec, value, bad)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(1000):
                _exercise(codec, value, bad)
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert grown < 64 * 1024, f"{grown} bytes kept after 1000 rounds"


def test_values_and_frames_keep_their_refcounts(codec_cls: Any) -> None:
    codec = codec_cls()
    value = b"v" * 100
    text = "t" * 100
    data = codec.encode("k", value)
    counts = [sys.getrefcount(o) for o in (value, text, data)]
    for _ in range(1000):
        codec.encode("k", value)
        codec.encode("k", text)
        codec.decode("k", data)
    assert [sys.getrefcount(o) for o in (value, text, data)] == counts


def test_the_nesting_walk_keeps_refcounts(codec_cls: Any) -> None:
    # The compiled walk reads borrowed references: what it holds, it must let go of.
    inner = ["leaf"]
    key = ("k", 1)
    value = {key: [inner, (inner,), {inner[0]}], "n": [[inner]]}
    codec = codec_cls()
    counts = [sys.getrefcount(o) for o in (inner, key, value)]
    for _ in range(1000):
        codec.encode("k", value)
        try:
            codec.encode("k", [value, _TOO_DEEP])
        except errors.SerializerRefused:
            pass
    assert [sys.getrefcount(o) for o in (inner, key, value)] == counts


def test_threads_share_one_codec_while_keys_rotate(codec_cls: Any) -> None:
    ring = KeyRing({1: KEY}, active=1)
    codec = codec_cls(keyring=ring, compress_min=0)
    barrier = threading.Barrier(5)
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        barrier.wait()
        try:
            for i in range(300):
                key = f"k{n}:{i}"
                value = {"n": n, "i": i, "blob": b"x" * (i % 700)}
                assert codec.decode(key, codec.encode(key, value)) == value
        except BaseException as exc:  # reported below
            failures.append(exc)

    def rotator() -> None:
        barrier.wait()
        ring.add(2, OTHER_KEY)  # the old key stays for decryption: nothing may fail

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=rotator))
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert not failures, failures
    assert ring.active_id == 2
