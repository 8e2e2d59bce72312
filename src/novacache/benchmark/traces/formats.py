"""Trace files in libCacheSim's formats: oracleGeneral (binary) and csv.

oracleGeneral is a flat array of little-endian 24-byte records::

    struct { uint32 clock_time; uint64 obj_id; uint32 obj_size; int64 next_access_vtime; }

``next_access_vtime`` is the index of the object's next request, or -1 when there is
none (what Belady, the offline bound, reads). A file may be zstd-compressed
(``*.zst``): reading it then needs the ``zstandard`` package.

csv: one request per line, columns chosen by 1-based index as in libCacheSim's
``-t csv -t-params "obj-id-col=2,obj-size-col=3,time-col=1,delimiter=,,has-header=true"``.
Numeric ids are used as they are; other ids are numbered in order of first appearance.
"""

from __future__ import annotations

import csv
import io
import struct
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = [
    "ORACLE_RECORD",
    "Trace",
    "TraceFormatError",
    "next_access",
    "read_csv",
    "read_oracle_general",
    "read_trace",
    "write_csv",
    "write_oracle_general",
]

#: One oracleGeneral record.
ORACLE_RECORD = struct.Struct("<IQIq")
_CHUNK = 1 << 16


class TraceFormatError(ValueError):
    """A trace file that is not in the format it was read as."""


@dataclass
class Trace:
    """Requests of a trace: ids, and sizes when the file has them (else all 1)."""

    name: str
    ids: array[int]
    sizes: array[int] | None = None

    def __len__(self) -> int:
        return len(self.ids)


def next_access(ids: Sequence[int]) -> array[int]:
    """For each request, the index of the next request for the same id, or -1."""
    nxt = array("q", bytes(8 * len(ids)))
    last: dict[int, int] = {}
    for i in range(len(ids) - 1, -1, -1):
        key = ids[i]
        nxt[i] = last.get(key, -1)
        last[key] = i
    return nxt


def write_oracle_general(
    path: str | Path, ids: Sequence[int], sizes: Sequence[int] | None = None
) -> None:
    """Write ``ids`` (and ``sizes``, default 1) as an oracleGeneral file; clock = index."""
    nxt = next_access(ids)
    pack = ORACLE_RECORD.pack
    with open(path, "wb") as f:
        buf = bytearray()
        for i, key in enumerate(ids):
            size = 1 if sizes is None else sizes[i]
            buf += pack(i & 0xFFFFFFFF, key, size, nxt[i])
            if len(buf) >= _CHUNK * ORACLE_RECORD.size:
                f.write(buf)
                buf.clear()
        f.write(buf)


def _open_binary(path: Path) -> IO[bytes]:
    if path.suffix == ".zst":
        try:
            import zstandard
        except ImportError as exc:
            raise TraceFormatError(f"{path}: reading .zst needs the zstandard package") from exc
        raw = path.open("rb")
        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
    return path.open("rb")


def read_oracle_general(path: str | Path, *, limit: int | None = None) -> Trace:
    """Read an oracleGeneral file (optionally ``.zst``): ids and sizes, up to ``limit``."""
    p = Path(path)
    ids = array("Q")
    sizes = array("Q")
    rec = ORACLE_RECORD.size
    with _open_binary(p) as f:
        tail = b""
        while limit is None or len(ids) < limit:
            block = f.read(_CHUNK * rec)
            if not block:
                break
            data = tail + block
            whole = len(data) - len(data) % rec
            tail = data[whole:]
            for _, key, size, _ in ORACLE_RECORD.iter_unpack(data[:whole]):
                ids.append(key)
                sizes.append(size)
        if tail:
            raise TraceFormatError(
                f"{p}: {len(tail)} trailing bytes; oracleGeneral records are {rec} bytes"
            )
    if limit is not None:
        del ids[limit:]
        del sizes[limit:]
    return Trace(p.name, ids, sizes)


def write_csv(path: str | Path, ids: Iterable[int], sizes: Sequence[int] | None = None) -> None:
    """Write ``time,obj_id,obj_size`` rows with a header (csv columns 1, 2, 3)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(("time", "obj_id", "obj_size"))
        for i, key in enumerate(ids):
            w.writerow((i, key, 1 if sizes is None else sizes[i]))


def _rows(f: io.TextIOBase, delimiter: str) -> Iterator[list[str]]:
    return csv.reader(f, delimiter=delimiter)


def read_csv(
    path: str | Path,
    *,
    obj_id_col: int = 2,
    obj_size_col: int | None = 3,
    delimiter: str = ",",
    has_header: bool | None = None,
    limit: int | None = None,
) -> Trace:
    """Read a csv trace; columns are 1-based (libCacheSim's ``obj-id-col`` etc.).

    ``has_header=None`` skips the first row when its id column is not a number.
    ``obj_size_col=None`` gives every request size 1.
    """
    if obj_id_col < 1 or (obj_size_col is not None and obj_size_col < 1):
        raise ValueError("csv columns are 1-based")
    p = Path(path)
    ids = array("Q")
    sizes = array("Q")
    names: dict[str, int] = {}
    with p.open("r", encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(_rows(f, delimiter), 1):
            if limit is not None and len(ids) >= limit:
                break
            if not row:
                continue
            try:
                raw = row[obj_id_col - 1].strip()
                size_text = row[obj_size_col - 1].strip() if obj_size_col else "1"
            except IndexError:
                raise TraceFormatError(
                    f"{p}:{lineno}: {len(row)} columns, need column"
                    f" {max(obj_id_col, obj_size_col or 0)}"
                ) from None
            if lineno == 1 and has_header is not False and (has_header or not raw.isdigit()):
                continue
            if raw.isdigit() and int(raw) < 1 << 64:
                key = int(raw)
            else:
                key = names.setdefault(raw, len(names) + 1)
            try:
                size = int(size_text)
            except ValueError:
                raise TraceFormatError(
                    f"{p}:{lineno}: size {size_text!r} is not an integer"
                ) from None
            if size < 0:
                raise TraceFormatError(f"{p}:{lineno}: negative size {size}")
            ids.append(key)
            sizes.append(size)
    return Trace(p.name, ids, sizes if obj_size_col else None)


def read_trace(path: str | Path, fmt: str | None = None, **csv_options: object) -> Trace:
    """Read ``path`` as ``fmt`` ("oracleGeneral" or "csv"; guessed from the name if None)."""
    p = Path(path)
    if fmt is None:
        lowered = p.name.lower()
        fmt = "csv" if lowered.endswith((".csv", ".csv.zst", ".txt")) else "oracleGeneral"
    if fmt.lower() in ("oraclegeneral", "oracle_general", "oraclegeneralbin"):
        return read_oracle_general(p, limit=csv_options.get("limit"))  # type: ignore[arg-type]
    if fmt.lower() == "csv":
        return read_csv(p, **csv_options)  # type: ignore[arg-type]
    raise ValueError(f"unknown trace format {fmt!r}; use oracleGeneral or csv")
