"""Deep values and deeper frames: typed errors, never a crash, on any thread stack.

Issue 18: a tuple, set, frozenset or dataclass used to be decoded by one nested
``msgpack.unpackb`` per level, each with a 40 KiB unpack context on the C stack, so a
tuple 250 deep killed the main thread and 20 levels a thread with a 512 KiB stack; and
``lz4.block.compress`` alone needs more than 256 KiB of stack. Every case that could
crash runs in a child process (``tests/_isolate.py``) on a 256 KiB thread stack (the
smallest the issue names), a 512 KiB one and the main thread, for both framings.
"""

from __future__ import annotations

import json
from pathlib import Path

import lz4.block
import pytest
from codec_helpers import FRAMINGS, KEY, load_codec_class
from nesting_cases import (
    PAYLOAD_KINDS,
    SER_MSGPACK,
    VALUE_KINDS,
    Node,
    build,
    payload,
    plain_frame,
    sealed_frame,
)

from _isolate import run_isolated
from novacache import CacheManager, errors
from novacache.codec import MAX_DEPTH, nesting
from novacache.tiers import RedisTier
from tiers.redis_servers import Standalone, redis_base, redis_standalone  # noqa: F401

STACKS = {"256KiB": 256 * 1024, "512KiB": 512 * 1024, "main": None}
FAR = 5000  # far beyond the limit (a chain of hashed tuples stays at 1000: see below)
FAR_FRAME = 20_000  # levels of a crafted frame (msgpack's own unpacker stops at 1024)


def test_the_limit_is_one_constant() -> None:
    compiled = pytest.importorskip("novacache._codec")
    from novacache.codec import msgpack_layout

    assert compiled.MAX_DEPTH == nesting.MAX_DEPTH == MAX_DEPTH == 128
    assert (compiled.HAS_MARKS, compiled.HAS_OLD) == (
        msgpack_layout.HAS_MARKS,
        msgpack_layout.HAS_OLD,
    )


@pytest.mark.parametrize("stack", list(STACKS))
@pytest.mark.parametrize("framing", FRAMINGS)
def test_values_at_the_limit_round_trip_and_deeper_ones_are_refused(
    framing: str, stack: str
) -> None:
    # Every container kind (and a mix), at, around and far beyond the limit. Before the
    # fix this child died with SIGSEGV (tuple, set, frozenset, dataclass kinds).
    code = f"""
    from codec_helpers import load_codec_class
    from nesting_cases import Node, VALUE_KINDS, build
    from novacache import errors
    from novacache.codec import MAX_DEPTH

    codec = load_codec_class({framing!r})(dataclasses=[Node], compress_min=64)
    for kind in VALUE_KINDS:
        far = 1000 if kind == "dict_key" else {FAR}  # hashing the key recurses per level
        for depth in (3, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 250, far):
            print(kind, depth, flush=True)
            value = build(kind, depth)
            try:
                frame = codec.encode("k", value)
            except errors.SerializerRefused as exc:
                assert depth > MAX_DEPTH, (kind, depth, exc)
                assert "nests deeper than 128" in str(exc)
                continue
            assert depth <= MAX_DEPTH, (kind, depth)
            assert codec.decode("k", frame) == value, (kind, depth)
    print("done")
    """
    result = run_isolated(code, stack_size=STACKS[stack]).check()
    assert result.stdout.endswith("done\n")


@pytest.mark.parametrize("stack", list(STACKS))
@pytest.mark.parametrize("framing", FRAMINGS)
def test_values_that_contain_themselves_are_refused(framing: str, stack: str) -> None:
    code = f"""
    import dataclasses
    from codec_helpers import load_codec_class
    from nesting_cases import Node
    from novacache import errors

    @dataclasses.dataclass
    class Loop:
        other: object

    looped = []
    looped.append(looped)
    mapping = {{}}
    mapping["self"] = [mapping]
    node = Loop(None)
    node.other = (node,)
    for serializer in ("msgpack", "json"):
        codec = load_codec_class({framing!r})(serializer=serializer, dataclasses=[Loop])
        for value in (looped, mapping, node, [1, {{"deep": [looped]}}]):
            try:
                codec.encode("k", value)
            except errors.SerializerRefused as exc:
                assert "contains itself" in str(exc), exc
            else:
                raise AssertionError(f"{{serializer}}: {{value!r}} was encoded")
    print("done")
    """
    run_isolated(code, stack_size=STACKS[stack]).check()


def _crafted_frames() -> dict[str, str]:
    """Frames written by hand around hand-made payloads: name -> hex.

    Built here, in the test process: ``lz4.block.compress`` itself cannot run on the
    child's 256 KiB thread (see test_compressed_values_encode_on_a_256_kib_thread).
    """
    frames: dict[str, str] = {}
    for kind in PAYLOAD_KINDS:
        for depth in (MAX_DEPTH, MAX_DEPTH + 1, 3000 if kind.startswith("old") else FAR_FRAME):
            body = payload(kind, depth)
            squeezed = len(body).to_bytes(4, "little") + lz4.block.compress(body, store_size=False)
            name = f"{kind}-{depth}"
            frames[f"{name}-plain"] = plain_frame(SER_MSGPACK, 0, body).hex()
            frames[f"{name}-lz4"] = plain_frame(SER_MSGPACK, 1, squeezed).hex()
            frames[f"{name}-aes"] = sealed_frame(KEY, 1, "k", SER_MSGPACK, 0, body).hex()
            frames[f"{name}-aes-lz4"] = sealed_frame(KEY, 1, "k", SER_MSGPACK, 1, squeezed).hex()
    # A mark anywhere but first in an array, and bytes after the object.
    for name, body in {
        "mark-second": b"\x92\x00\xc7\x00\x0c",
        "mark-top": b"\xc7\x00\x0c",
        "mark-map-value": b"\x81\xa1k\xc7\x00\x0c",
        "mark-map-key": b"\x81\xc7\x00\x0c\x00",
        "mark-with-data": b"\x92\xd4\x0c\x00\x00",
        "trailing": b"\x91\x00\x00",
    }.items():
        frames[name] = plain_frame(SER_MSGPACK, 0, body).hex()
    return frames


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("frames") / "frames.json"
    path.write_text(json.dumps(_crafted_frames()))
    return path


@pytest.mark.parametrize("stack", list(STACKS))
@pytest.mark.parametrize("framing", FRAMINGS)
def test_crafted_deep_frames_are_corrupt(framing: str, stack: str, crafted: Path) -> None:
    # Frames nested 129 levels and far beyond, in every container form, old and new,
    # plain, compressed and encrypted: CorruptFrame. At 128 levels they decode.
    code = f"""
    import json
    from codec_helpers import KEY, load_codec_class
    from nesting_cases import Node, expected
    from novacache import KeyRing, errors
    from novacache.codec import MAX_DEPTH

    cls = load_codec_class({framing!r})
    plain = cls(dataclasses=[Node])
    sealed = cls(dataclasses=[Node], keyring=KeyRing({{1: KEY}}, active=1))
    for name, frame in json.load(open({str(crafted)!r})).items():
        print(name, flush=True)
        codec = sealed if "-aes" in name else plain
        parts = name.split("-")
        depth = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        try:
            value = codec.decode("k", bytes.fromhex(frame))
        except errors.CorruptFrame:
            assert depth is None or depth > MAX_DEPTH, name
        else:
            assert depth is not None and depth <= MAX_DEPTH, name
            assert value == expected(parts[0], depth), name
    print("done")
    """
    result = run_isolated(code, stack_size=STACKS[stack]).check()
    assert result.stdout.endswith("done\n")


@pytest.mark.parametrize("framing", FRAMINGS)
def test_compressed_values_encode_on_a_256_kib_thread(framing: str) -> None:
    # lz4.block.compress keeps a 256 KiB state on the C stack: before the fix, any
    # value of compress_min (512) bytes or more killed a 256 KiB thread on encode.
    code = f"""
    import threading
    from codec_helpers import load_codec_class
    from novacache.codec import frame

    codec = load_codec_class({framing!r})()
    big = b"0123456789abcdef" * (5 * 1024 * 1024 // 16)  # above lz4.frame's 4 MiB block
    for value in (b"x" * 1000, {{"k": "v" * 2000}}, ["same"] * 300, big):
        data = codec.encode("k", value)
        assert data[4] & frame.COMPRESSED, len(data)
        assert codec.decode("k", data) == value
    assert threading.stack_size() == 256 * 1024  # put back after the large compression
    print("done")
    """
    run_isolated(code, stack_size=256 * 1024).check()


# -- through the embedded manager, read back in a new process --------------------------


def _reader(path: Path, framing: str, body: str, *, encrypted: bool = False) -> str:
    ring = "KeyRing({1: KEY}, active=1)" if encrypted else "None"
    return f"""
    from codec_helpers import KEY, load_codec_class
    from nesting_cases import Node, PAYLOAD_KINDS, VALUE_KINDS, build
    from novacache import CacheManager, KeyRing
    from novacache.codec import MAX_DEPTH

    codec = load_codec_class({framing!r})(dataclasses=[Node], keyring={ring})
    with CacheManager.embedded({str(path)!r}, codec=codec) as m:
    {body}
    print("done")
    """


@pytest.mark.parametrize("stack", list(STACKS))
@pytest.mark.parametrize("framing", FRAMINGS)
def test_embedded_manager_reads_deep_values_in_a_new_process(
    framing: str, stack: str, tmp_path: Path
) -> None:
    # The case: stored through CacheManager.embedded, read by a new process.
    # The envelope takes one level, so values may nest MAX_DEPTH - 1 deep.
    path = tmp_path / "store.db"
    codec = load_codec_class(framing)(dataclasses=[Node])
    with CacheManager.embedded(path, codec=codec) as m:
        for kind in VALUE_KINDS:
            m.set(f"{kind}-ok", build(kind, MAX_DEPTH - 1))
            with pytest.raises(errors.SerializerRefused, match="nests deeper"):
                m.set(f"{kind}-deep", build(kind, MAX_DEPTH))
        with pytest.raises(errors.SerializerRefused, match="nests deeper"):
            m.set("issue-18", build("tuple", 250))
    body = """
        for kind in VALUE_KINDS:
            print(kind, flush=True)
            assert m.get(f"{kind}-ok") == build(kind, MAX_DEPTH - 1), kind
            assert m.get(f"{kind}-deep") is None, kind
        assert m.get("issue-18") is None
        assert m.stats.get("store", "corrupt") == 0
    """
    result = run_isolated(_reader(path, framing, body), stack_size=STACKS[stack]).check()
    assert result.stdout.endswith("done\n")


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "aes"])
@pytest.mark.parametrize("framing", FRAMINGS)
def test_embedded_manager_survives_planted_deep_frames(
    framing: str, encrypted: bool, tmp_path: Path
) -> None:
    # Frames planted straight into the store (what anyone able to write it can do): each
    # read is a counted miss, in every new process, on a 256 KiB thread too.
    path = tmp_path / "store.db"
    with CacheManager.embedded(path) as m:
        assert m.store is not None
        for kind in PAYLOAD_KINDS:
            depth = 3000 if kind.startswith("old") else FAR_FRAME
            envelope = b"\x94\x01\xc0\xc0" + payload(kind, depth)  # [1, None, None, value]
            key = f"planted-{kind}"
            if encrypted:
                frame = sealed_frame(KEY, 1, key, SER_MSGPACK, 0, envelope)
            else:
                frame = plain_frame(SER_MSGPACK, 0, envelope)
            m.store.set(key, frame)
    body = """
        for kind in PAYLOAD_KINDS:
            print(kind, flush=True)
            for attempt in range(2):
                assert m.get(f"planted-{kind}") is None, kind
        assert m.stats.get("store", "corrupt") == 2 * len(PAYLOAD_KINDS)
    """
    for stack in STACKS.values():  # every restart reads them again
        code = _reader(path, framing, body, encrypted=encrypted)
        run_isolated(code, stack_size=stack).check()


@pytest.mark.parametrize("stack", ["256KiB", "main"])
@pytest.mark.parametrize("framing", FRAMINGS)
def test_crafted_deep_json_frames_are_corrupt(framing: str, stack: str) -> None:
    # json.loads recurses per level and stops only at the recursion limit, which a
    # program may raise far beyond what its thread stack holds: the codec counts
    # brackets (not those inside strings) before json runs.
    code = f"""
    import sys
    from codec_helpers import load_codec_class
    from nesting_cases import plain_frame
    from novacache import errors
    from novacache.codec import MAX_DEPTH

    sys.setrecursionlimit(1_000_000)
    codec = load_codec_class({framing!r})()
    strings = '"[[[{{{{", "\\\\"[", '
    for depth, ok in ((MAX_DEPTH, True), (MAX_DEPTH + 1, False), (200_000, False)):
        for doc in ("[" * depth + "]" * depth, '{{"k":' * depth + "0" + "}}" * depth,
                    "[" + strings + "[" * (depth - 1) + "]" * depth):
            frame = plain_frame(3, 0, doc.encode())
            try:
                codec.decode("k", frame)
            except errors.CorruptFrame as exc:
                assert not ok and "nests deeper than 128" in str(exc), (depth, exc)
            else:
                assert ok, depth
    print("done")
    """
    run_isolated(code, stack_size=STACKS[stack]).check()


def test_signed_pickle_frames_are_not_scanned_and_do_not_recurse() -> None:
    # Documented in docs/codec.md: a pickle frame is unpickled only when it carries the
    # HMAC of the codec's key, and the unpickler builds nested lists with its own heap
    # stack, so even a frame nested 100,000 deep (only a key holder can write one)
    # decodes on a 256 KiB thread without recursion.
    code = """
    from codec_helpers import load_codec_class
    from novacache.codec.serializers import PickleSerializer
    from nesting_cases import plain_frame

    key = b"p" * 32
    depth = 100_000
    body = b"\\x80\\x02" + b"]" * depth + b"a" * (depth - 1) + b"."  # [[[...]]]
    frame = plain_frame(4, 0, PickleSerializer(key)._sign(body) + body)
    for framing in ("compiled", "pure"):
        value = load_codec_class(framing)(pickle_key=key).decode("k", frame)
        for _ in range(depth - 1):
            (value,) = value
        assert value == []
    print("done")
    """
    run_isolated(code, stack_size=256 * 1024).check()


def test_large_compressions_from_many_small_threads_at_once() -> None:
    # Above 4 MiB, lz4.block runs on a helper thread whose stack size is set, under a
    # lock, around its start only: concurrent encoders all round-trip, and the program's
    # own threading.stack_size setting is what it was.
    code = """
    import threading
    from codec_helpers import load_codec_class

    codec = load_codec_class("compiled")()
    pure = load_codec_class("pure")()
    failures = []
    start = threading.Barrier(6)

    def worker(n):
        start.wait()
        value = bytes([n]) * (5 * 1024 * 1024 + n)
        for c in (codec, pure):
            data = c.encode("k", value)
            if c.decode("k", data) != value or len(data) > len(value) // 100:
                failures.append(n)

    threading.stack_size(256 * 1024)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert threading.stack_size() == 256 * 1024
    print("done")
    """
    run_isolated(code).check()


@pytest.mark.parametrize("stack", ["256KiB", "main"])
def test_managers_survive_deep_frames_planted_in_redis(
    stack: str, request: pytest.FixtureRequest
) -> None:
    # Issue 18, defect 1, on Redis: anyone who can write to Redis can plant a small frame
    # nested far past the limit. Every read in a new process, by the synchronous and the
    # asyncio manager, is a counted miss (never a crash), on a 256 KiB thread too.
    server: Standalone = request.getfixturevalue("redis_standalone")
    prefix = f"deep-{stack}:"
    tier = RedisTier(server.url, prefix=prefix)
    try:
        for kind in PAYLOAD_KINDS:
            depth = 3000 if kind.startswith("old") else FAR_FRAME
            envelope = b"\x94\x01\xc0\xc0" + payload(kind, depth)  # [1, None, None, value]
            tier.set(f"planted-{kind}", plain_frame(SER_MSGPACK, 0, envelope))
    finally:
        tier.close()
    code = f"""
    import asyncio
    from nesting_cases import PAYLOAD_KINDS
    from novacache import AsyncCacheManager, CacheManager, LocalCache
    from novacache.tiers import AsyncRedisTier, RedisTier

    with CacheManager(local=LocalCache(10), remote=RedisTier({server.url!r},
                      prefix={prefix!r})) as m:
        for kind in PAYLOAD_KINDS:
            for attempt in range(2):
                assert m.get(f"planted-{{kind}}") is None, kind
        assert m.stats.get("remote", "corrupt") == 2 * len(PAYLOAD_KINDS)

    async def one():
        return 1

    async def main():
        async with AsyncCacheManager(local=LocalCache(10), remote=AsyncRedisTier(
                {server.url!r}, prefix={prefix!r})) as m:
            for kind in PAYLOAD_KINDS:
                assert await m.get(f"planted-{{kind}}") is None, kind
                assert await m.get_or_load(f"planted-{{kind}}", one) == 1
            # a get reads once; get_or_load reads, then again inside its single-flight
            assert m.stats.get("remote", "corrupt") == 3 * len(PAYLOAD_KINDS)

    asyncio.run(main())
    print("done")
    """
    run_isolated(code, stack_size=STACKS[stack]).check()
