"""The codec's rows of ``novacache bench``: encode/decode time and bytes on the wire.

Self-contained: :func:`run` returns plain dicts, one per measurement, for the runner to
print and store. Every row has ``section`` ("codec"), ``row`` (a stable id), ``impl``,
``value`` (``dict`` or ``bytes``), ``size`` (nominal bytes), and then either
``encode_ns``, ``decode_ns`` and ``wire_bytes``, or, for the target rows, the numbers
named there. Times are the median over rounds of the mean time per call in a round;
implementations are interleaved round by round, so a noisy neighbour hits all of them.

Implementations compared:

- ``codec`` / ``codec-pure``: :class:`novacache.Codec` on the compiled framing and on
  its pure-Python twin (msgpack, lz4 above 512 B; ``+aes`` rows add AES-256-GCM).
- ``pickle``: ``pickle.dumps`` / ``pickle.loads`` (highest protocol), no framing.
- ``naive``: what the reference design did, by hand in Python: ``json.dumps`` (bytes as
  they are), ``zlib`` above 512 B, a ``struct`` header and a ``hashlib.blake2b`` checksum.

The two target rows of issue 4:

- ``raw-100``: a 100-byte ``bytes`` value, no encryption, encode + decode (ns).
- ``overhead-1k``: a 1 KiB dict through msgpack + lz4 + AES-GCM, the codec against the
  sum of the bare library calls it makes (``msgpack.packb`` with the codec's options,
  ``lz4.frame.compress`` as the codec calls it, ``os.urandom(12)``, ``AESGCM.encrypt``,
  and back) in the same run, as a ratio. (Until issue 18 the codec called
  ``lz4.block.compress``, whose 256 KiB stack frame kills small threads; see
  ``novacache.codec.compression``.)
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import random
import statistics
import struct
import time
import zlib
from collections.abc import Callable
from typing import Any

__all__ = ["SIZES", "make_value", "pipelines", "run"]

SIZES = (100, 1024, 10 * 1024, 100 * 1024)
KEY = "bench:key"

Encode = Callable[[Any], bytes]
Decode = Callable[[bytes], Any]


def make_value(kind: str, size: int) -> Any:
    """A value of about ``size`` bytes once msgpacked: a ``dict`` of primitives, or
    ``bytes`` that compress like a log (words from a 64-word vocabulary, seeded)."""
    rng = random.Random(size)
    if kind == "bytes":
        words = [f"w{rng.randrange(10**6)}".encode() for _ in range(64)]
        blob = b" ".join(rng.choices(words, k=size // 3))
        return blob[:size]
    import msgpack  # type: ignore[import-untyped]

    value: dict[str, Any] = {}
    i = 0
    while len(msgpack.packb(value)) < size:
        slot = i % 4
        value[f"field_{i}"] = (
            rng.randrange(1 << 30)
            if slot == 0
            else rng.random()
            if slot == 1
            else "".join(rng.choices("abcdefghij", k=12))
            if slot == 2
            else bool(i % 3)
        )
        i += 1
    return value


def _naive() -> tuple[Encode, Decode]:
    header = struct.Struct("<4sBI")

    def encode(value: Any) -> bytes:
        flag = 2 if type(value) is bytes else 0
        body = value if flag else json.dumps(value).encode()
        if len(body) >= 512:
            body, flag = zlib.compress(body), flag | 1
        head = header.pack(b"NAIV", flag, len(body))
        return head + body + hashlib.blake2b(head + body, digest_size=8).digest()

    def decode(frame: bytes) -> Any:
        _, flag, n = header.unpack_from(frame)
        body = frame[header.size : header.size + n]
        if hashlib.blake2b(frame[: header.size + n], digest_size=8).digest() != frame[-8:]:
            raise ValueError("checksum")
        if flag & 1:
            body = zlib.decompress(body)
        return body if flag & 2 else json.loads(body)

    return encode, decode


def pipelines(encrypted: bool) -> dict[str, tuple[Encode, Decode]]:
    """``{impl: (encode, decode)}`` of every implementation available here."""
    from novacache.codec import Codec, KeyRing, PureCodec, compiled

    ring = KeyRing({1: bytes(range(32))}, active=1) if encrypted else None
    out: dict[str, tuple[Encode, Decode]] = {}
    classes: list[tuple[str, Any]] = [("codec-pure", PureCodec)]
    if compiled:
        classes.insert(0, ("codec", Codec))
    for name, cls in classes:
        codec = cls(keyring=ring)
        out[name] = (functools.partial(codec.encode, KEY), functools.partial(codec.decode, KEY))
    if not encrypted:
        out["pickle"] = (
            lambda v: pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL),
            pickle.loads,
        )
        out["naive"] = _naive()
    return out


def _round(fn: Callable[[], Any], number: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(number):
        fn()
    return (time.perf_counter_ns() - start) / number


def _calibrate(fn: Callable[[], Any], budget_ns: float) -> int:
    number = 1
    while True:
        elapsed = _round(fn, number) * number
        if elapsed >= budget_ns or number >= 1 << 20:
            return max(1, int(number * budget_ns / max(elapsed, 1.0)))
        number *= 4


def _interleaved(
    fns: dict[str, Callable[[], Any]], rounds: int, budget_ns: float
) -> dict[str, list[float]]:
    numbers = {name: _calibrate(fn, budget_ns) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name].append(_round(fn, numbers[name]))
    return samples


def _both(enc: Encode, dec: Decode, value: Any, frame: bytes) -> Callable[[], Any]:
    def both() -> Any:
        enc(value)
        return dec(frame)

    return both


def _round_trip(codec: Any, value: Any) -> Callable[[], Any]:
    encode, decode = codec.encode, codec.decode

    def round_trip() -> Any:
        return decode(KEY, encode(KEY, value))

    return round_trip


def _bare_1k(value: Any) -> Callable[[], Any]:
    import lz4.block  # type: ignore[import-untyped]
    import lz4.frame  # type: ignore[import-untyped]
    import msgpack
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from novacache.codec.serializers import MsgpackSerializer

    ser = MsgpackSerializer()
    default, ext_hook = ser._default_fn, ser._ext_hook_fn
    aead = AESGCM(bytes(range(32)))
    aad = b"0123456789" + KEY.encode()
    packb, unpackb = msgpack.packb, msgpack.unpackb
    compress, decompress, urandom = lz4.frame.compress, lz4.block.decompress, os.urandom
    block_size = lz4.frame.BLOCKSIZE_MAX4MB

    def bare() -> Any:
        packed = packb(value, default=default, strict_types=True)
        framed = compress(packed, 0, block_size, False, False, False, False)
        small = len(packed).to_bytes(4, "little") + framed[11:-4]
        nonce = urandom(12)
        sealed = aead.encrypt(nonce, small, aad)
        opened = aead.decrypt(nonce, sealed, aad)
        return unpackb(decompress(opened), ext_hook=ext_hook, strict_map_key=False)

    return bare


def run(quick: bool) -> list[dict[str, Any]]:
    """Measure the codec and its peers; ``quick`` takes fewer, shorter rounds."""
    rounds = 5 if quick else 15
    budget = 2e6 if quick else 2e7  # ns per round and implementation
    rows: list[dict[str, Any]] = []

    for encrypted in (False, True):
        impls = pipelines(encrypted)
        for kind in ("dict", "bytes"):
            for size in SIZES:
                value = make_value(kind, size)
                frames = {name: enc(value) for name, (enc, _) in impls.items()}
                fns: dict[str, Callable[[], Any]] = {}
                for name, (enc, dec) in impls.items():
                    fns[f"{name}/encode"] = functools.partial(enc, value)
                    fns[f"{name}/decode"] = functools.partial(dec, frames[name])
                samples = _interleaved(fns, rounds, budget)
                for name in impls:
                    rows.append(
                        {
                            "section": "codec",
                            "row": f"{kind}-{size}{'+aes' if encrypted else ''}",
                            "impl": name,
                            "value": kind,
                            "size": size,
                            "encrypted": encrypted,
                            "encode_ns": statistics.median(samples[f"{name}/encode"]),
                            "decode_ns": statistics.median(samples[f"{name}/decode"]),
                            "wire_bytes": len(frames[name]),
                        }
                    )

    # Target: raw 100-byte bytes, no encryption, encode + decode.
    raw = make_value("bytes", 100)
    for name, (enc, dec) in pipelines(False).items():
        if not name.startswith("codec"):
            continue
        frame = enc(raw)
        samples = _interleaved({"both": _both(enc, dec, raw, frame)}, rounds, budget)
        rows.append(
            {
                "section": "codec",
                "row": "raw-100",
                "impl": name,
                "value": "bytes",
                "size": 100,
                "encode_decode_ns": statistics.median(samples["both"]),
                "target_ns": 500.0,
            }
        )

    # Target: 1 KiB msgpack + lz4 + AES-GCM against the bare library calls.
    value = make_value("dict", 1024)
    from novacache.codec import Codec, KeyRing, PureCodec, compiled

    ring = KeyRing({1: bytes(range(32))}, active=1)
    contenders: dict[str, Callable[[], Any]] = {"bare": _bare_1k(value)}
    for name, cls in [("codec", Codec)] * compiled + [("codec-pure", PureCodec)]:
        codec = cls(keyring=ring, compress_min=0)
        contenders[name] = _round_trip(codec, value)
    samples = _interleaved(contenders, rounds * 2, budget)
    bare_ns = statistics.median(samples["bare"])
    for name in contenders:
        if name == "bare":
            continue
        ratios = [c / b for c, b in zip(samples[name], samples["bare"], strict=True)]
        rows.append(
            {
                "section": "codec",
                "row": "overhead-1k",
                "impl": name,
                "value": "dict",
                "size": 1024,
                "codec_ns": statistics.median(samples[name]),
                "bare_ns": bare_ns,
                "ratio": statistics.median(ratios),
                "target_ratio": 1.10,
            }
        )
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The rows as a plain-text table (for ``python -m novacache.benchmark.codec_bench``)."""
    lines = [f"{'row':<18}{'impl':<12}{'encode ns':>12}{'decode ns':>12}{'wire B':>9}"]
    for r in rows:
        if "encode_ns" in r:
            lines.append(
                f"{r['row']:<18}{r['impl']:<12}{r['encode_ns']:>12.0f}{r['decode_ns']:>12.0f}"
                f"{r['wire_bytes']:>9}"
            )
        elif r["row"] == "raw-100":
            lines.append(
                f"{r['row']:<18}{r['impl']:<12}  encode+decode {r['encode_decode_ns']:.0f} ns"
                f" (target <= {r['target_ns']:.0f})"
            )
        else:
            lines.append(
                f"{r['row']:<18}{r['impl']:<12}  {r['codec_ns']:.0f} ns vs bare calls "
                f"{r['bare_ns']:.0f} ns: x{r['ratio']:.3f} (target <= {r['target_ratio']:.2f})"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(format_rows(run(quick="--quick" in sys.argv)))
