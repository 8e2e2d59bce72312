"""Cache misses and mispredicted branches per operation of novacache's hot paths.

The companion of ``callgrind_ops.py`` (same operations, same programs): each program
runs in a child under ``valgrind --tool=cachegrind --cache-sim=yes --branch-sim=yes``
twice, with 20,000 and 120,000 iterations for a ``LocalCache`` operation (see
``callgrind_ops.per_op`` for the others), and the difference of the two runs divided by
the extra iterations is what one operation costs: instructions, D1 misses (reads and
writes), last-level data misses and mispredicted branches (conditional and indirect).
Callgrind counts instructions only; a data-dependent branch or a cache line that is
not there costs time that these counters show. The simulated caches are valgrind's
model of the machine's, so compare trees and operations with each other, not with
another machine.

    python scripts/cachegrind_ops.py --tree /path/a --tree /path/b \\
        --only lc-aside-1k-lru,lc-aside-1k-tinylfu
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import callgrind_ops  # beside this file

#: The counters, as cachegrind's summary names them.
COUNTERS = {
    "instructions": r"I\s+refs:\s+([\d,]+)",
    "D1 misses": r"D1\s+misses:\s+([\d,]+)",
    "LLd misses": r"LLd misses:\s+([\d,]+)",
    "mispredicts": r"Mispredicts:\s+([\d,]+)",
}


def summary(stderr: str, counters: dict[str, str] = COUNTERS) -> dict[str, int]:
    """The totals cachegrind printed on ``stderr``, one per ``counters`` name (its
    pattern captures the number); a counter not printed stops the run."""
    found: dict[str, int] = {}
    for name, pattern in counters.items():
        match = re.search(pattern, stderr)
        if match is None:
            raise SystemExit(f"cachegrind printed no {name!r}:\n{stderr[-2000:]}")
        found[name] = int(match.group(1).replace(",", ""))
    return found


def _counters(tree: Path, program: str, n: int, url: str) -> dict[str, int]:
    stderr = callgrind_ops.run_valgrind(
        tree, program, n, url,
        ["--tool=cachegrind", "--cache-sim=yes", "--branch-sim=yes",
         "--cachegrind-out-file=/dev/null"],
    )  # fmt: skip
    return summary(stderr)


def per_op(tree: Path, name: str, url: str) -> dict[str, float]:
    """Each counter for one ``name`` operation in ``tree``."""
    n1, n2, per = 200, 1200, callgrind_ops.OPS[name][2]
    if per < 0:
        n1, n2, per = 20_000, 120_000, 1
    elif per > 1:
        n1, n2 = 1, 3
    program = callgrind_ops._program(name)
    a = _counters(tree, program, n1, url)
    b = _counters(tree, program, n2, url)
    return {k: (b[k] - a[k]) / ((n2 - n1) * per) for k in COUNTERS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", type=Path, help="checkout(s); default: .")
    parser.add_argument("--only", required=True, help="comma-separated operation names")
    parser.add_argument("--redis", default="redis://127.0.0.1:1", help="for Redis operations")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    trees = args.tree or [Path(".")]
    names = args.only.split(",")
    unknown = [n for n in names if n not in callgrind_ops.OPS]
    if unknown:
        parser.error(f"unknown operation(s) {', '.join(unknown)}; see callgrind_ops.OPS")
    results: dict[str, dict[str, dict[str, float]]] = {}
    print(f"{'operation':<28} {'tree':<24} " + " ".join(f"{c:>13}" for c in COUNTERS))
    for name in names:
        for tree in trees:
            got = per_op(tree.resolve(), name, args.redis)
            results.setdefault(name, {})[str(tree)] = got
            cells = " ".join(f"{got[c]:>13,.2f}" for c in COUNTERS)
            print(f"{name:<28} {str(tree)[-24:]:<24} {cells}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
