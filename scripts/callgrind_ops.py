"""Instructions per operation of novacache's hot paths, counted by callgrind.

A timing on a shared or loaded machine moves by more than the changes it is meant to
show; the instructions the client process executes per operation do not. Each operation
runs in a child under ``valgrind --tool=callgrind`` twice, ``n1`` and ``n2`` times; the
difference of the two totals divided by ``n2 - n1`` is the cost of one operation, with
the start-up, the imports and the set-up cancelled out. Only the client is counted (the
Redis server is another process), so a round trip counts its system calls, not its wait.

    python scripts/callgrind_ops.py                      # every operation, this tree
    python scripts/callgrind_ops.py --tree OLD --tree .  # two checkouts side by side
    python scripts/callgrind_ops.py --only redis-get,manager-set --json out.json

``--tree`` is a checkout whose ``src/`` holds built extensions (``setup.py build_ext
--inplace``). A redis-server on a free loopback port is started for the run. Needs
valgrind. PYTHONHASHSEED is fixed, so a run repeats to within a few instructions.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

#: name: (setup, one operation, operations per repetition); ``URL`` is the server's. An
#: asyncio operation has no statement: its setup defines ``many(n)``, run on ``loop``.
OPS: dict[str, tuple[str, str | None, int]] = {
    "l1-get": ("m = CacheManager(local=LocalCache(1000)); m.set('k', 1); g = m.get", "g('k')", 1),
    # The same with a metrics collector over the manager (novacache.ops.metrics): nothing
    # on the hit path, the instructions must be the same.
    "l1-get-collected": (
        "from novacache.ops.metrics import MetricsCollector\n"
        "m = CacheManager(local=LocalCache(1000)); m.set('k', 1); g = m.get\n"
        "MetricsCollector(m, registry=None)",
        "g('k')",
        1,
    ),
    "l1-get-or-load": (
        "m = CacheManager(local=LocalCache(1000)); m.set('k', 1); g = m.get_or_load\n"
        "ld = lambda: 1",
        "g('k', ld)",
        1,
    ),
    "redis-get": ("t = RedisTier(URL, prefix='cg:'); t.set('k1', b'x' * 100)", "t.get('k1')", 1),
    "redis-mget-100": (
        "t = RedisTier(URL, prefix='cg:'); keys = [f'k{i}' for i in range(100)]\n"
        "t.set_many({k: b'x' * 100 for k in keys})",
        "t.get_many(keys)",
        1,
    ),
    "redis-set": ("t = RedisTier(URL, prefix='cg:'); f = b'x' * 100", "t.set('k1', f, 300)", 1),
    "floor-get": (
        "import redis; c = Codec(); m = CacheManager(remote=RedisTier(URL, prefix='cgm:'))\n"
        "m.set('k', V); cl = redis.Redis(connection_pool=redis.BlockingConnectionPool("
        "host=HOST, port=PORT, max_connections=64, timeout=0.5))",
        "c.decode('k', cl.get('cgm:k'))",
        1,
    ),
    "manager-redis-get": (
        "m = CacheManager(remote=RedisTier(URL, prefix='cgm:')); m.set('k', V)",
        "m.get('k')",
        1,
    ),
    # The same with the L2 latency histogram on (novacache.ops.metrics: the tier timed).
    "manager-redis-get-timed": (
        "from novacache.ops.metrics import MetricsCollector\n"
        "m = CacheManager(remote=RedisTier(URL, prefix='cgm:')); m.set('k', V)\n"
        "MetricsCollector(m, registry=None)",
        "m.get('k')",
        1,
    ),
    "manager-l1-miss-redis-get": (
        "l = LocalCache(10000); m = CacheManager(local=l, remote=RedisTier(URL, prefix='cgf:'))\n"
        "names = [f'f{i}' for i in range(1000)]\n"
        "for k in names: m.set(k, V, 300)\n"
        "def op():\n    l.clear()\n    for k in names: m.get(k)",
        "op()",
        1000,
    ),
    "manager-redis-only-get-1000": (
        "m = CacheManager(remote=RedisTier(URL, prefix='cgf:'))\n"
        "names = [f'f{i}' for i in range(1000)]\n"
        "for k in names: m.set(k, V, 300)\n"
        "def op():\n    for k in names: m.get(k)",
        "op()",
        1000,
    ),
    "floor-set": (
        "import redis, time; c = Codec(); cl = redis.Redis(connection_pool="
        "redis.BlockingConnectionPool(host=HOST, port=PORT, max_connections=64, timeout=0.5))",
        "cl.set('cgs:k', c.encode('k', seal(V, 300, time.time())), px=300000)",
        1,
    ),
    "manager-set": (
        "m = CacheManager(remote=RedisTier(URL, prefix='cgs:'))",
        "m.set('k', V, 300)",
        1,
    ),
    "manager-write-3-tiers": (
        "d = tempfile.mkdtemp(); m = CacheManager(local=LocalCache(10000), "
        "remote=RedisTier(URL, prefix='cgw:'), store=SQLiteTier(os.path.join(d, 'c.db')))",
        "m.set('w', V, 60)",
        1,
    ),
    "async-redis-get": (
        "t = AsyncRedisTier(URL, prefix='cg:'); loop.run_until_complete(t.set('k1', b'x'))\n"
        "async def many(n):\n    for _ in range(n): await t.get('k1')",
        None,
        1,
    ),
}

PRELUDE = """\
import asyncio, os, sys, tempfile
from novacache import Codec, LocalCache
from novacache.manager import CacheManager
from novacache.manager.envelope import seal
from novacache.tiers import AsyncRedisTier, RedisTier, SQLiteTier
URL, HOST, PORT = sys.argv[2], '127.0.0.1', int(sys.argv[2].rsplit(':', 1)[1].split('/')[0])
V = {"name": "vm", "cpu": 4, "mem": 8192, "state": "running", "node": "n1",
     "tags": ["a", "b"], "id": 1}
loop = asyncio.new_event_loop()
n = int(sys.argv[1])
"""


def _program(name: str) -> str:
    setup, op, _ = OPS[name]
    if op is None:  # an asyncio operation: the loop is in `many`
        return PRELUDE + setup + "\nloop.run_until_complete(many(n))\n"
    return PRELUDE + setup + f"\nfor _ in range(n):\n    {op}\n"


def _instructions(tree: Path, program: str, n: int, url: str) -> int:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(program)
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), PYTHONHASHSEED="0")
    try:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
             sys.executable, f.name, str(n), url],
            env=env, capture_output=True, text=True, check=True, cwd="/",
        )  # fmt: skip
    finally:
        os.unlink(f.name)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no total:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def per_op(tree: Path, name: str, url: str, n1: int = 200, n2: int = 1200) -> float:
    """Client instructions of one ``name`` operation in ``tree``."""
    per = OPS[name][2]
    if per > 1:  # a repetition is `per` operations: fewer repetitions
        n1, n2 = 1, 3
    elif name.startswith("l1-"):  # ~1k instructions: enough of them to drown the noise
        n1, n2 = 20_000, 220_000
    program = _program(name)
    a = _instructions(tree, program, n1, url)
    b = _instructions(tree, program, n2, url)
    return (b - a) / ((n2 - n1) * per)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", type=Path, help="checkout(s); default: .")
    parser.add_argument("--only", help="comma-separated operation names")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    trees = args.tree or [Path(".")]
    names = args.only.split(",") if args.only else list(OPS)
    unknown = sorted(set(names) - set(OPS))
    if unknown:
        raise SystemExit(f"unknown operation(s): {', '.join(unknown)}; known: {', '.join(OPS)}")
    sys.path.insert(0, str(trees[0].resolve() / "src"))
    from novacache.benchmark.redis_server import RedisServer

    server = RedisServer().start()
    results: dict[str, dict[str, float]] = {}
    try:
        print(f"{'operation':32}" + "".join(f"{t!s:>22}" for t in trees))
        for name in names:
            row = {str(t): per_op(t.resolve(), name, server.url) for t in trees}
            results[name] = row
            print(f"{name:32}" + "".join(f"{v:>22,.0f}" for v in row.values()), flush=True)
    finally:
        server.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
