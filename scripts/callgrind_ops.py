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

#: A synchronous tier held in a dict (for operations that must not depend on a server).
_DICT_TIER = (
    "class DictTier:\n"
    "    def __init__(self): self.d = {}\n"
    "    def get(self, k): return self.d.get(k)\n"
    "    def set(self, k, f, ttl=None): self.d[k] = f\n"
    "    def get_many(self, ks): return {k: self.d[k] for k in ks if k in self.d}\n"
    "    def set_many(self, m, ttl=None): self.d.update(m)\n"
    "    def delete_many(self, ks): return sum(self.d.pop(k, None) is not None for k in ks)\n"
    "    def close(self): pass\n"
)

#: The same as an asyncio tier.
_ASYNC_DICT_TIER = (
    "class AsyncDictTier:\n"
    "    def __init__(self): self.d = {}\n"
    "    async def get(self, k): return self.d.get(k)\n"
    "    async def set(self, k, f, ttl=None): self.d[k] = f\n"
    "    async def get_many(self, ks): return {k: self.d[k] for k in ks if k in self.d}\n"
    "    async def set_many(self, m, ttl=None): self.d.update(m)\n"
    "    async def delete_many(self, ks): return sum(self.d.pop(k, None) is not None for k in ks)\n"
    "    async def close(self): pass\n"
)

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
    # A delete of a manager with L1 only (no tier below: no tombstone, no version).
    "l1-delete": ("m = CacheManager(local=LocalCache(1000)); d = m.delete", "d('k')", 1),
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
    # The same with the metrics module loaded and a collector without timers (the control
    # of the next: prometheus-client's import registers collectors of its own), then
    # with the L2 latency histogram on (novacache.ops.metrics: the tier timed).
    "manager-redis-get-collected": (
        "from novacache.ops.metrics import MetricsCollector\n"
        "m = CacheManager(remote=RedisTier(URL, prefix='cgm:')); m.set('k', V)\n"
        "MetricsCollector(m, registry=None, latency=False)",
        "m.get('k')",
        1,
    ),
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
    # The same two without a server: a tier that is a dict in this process, so the
    # difference (the L1 miss and the fill) does not move with the server's timing as a
    # socket's reads do; and with the garbage collector off, whose share of the values
    # L1 keeps (~1k instructions a get here) comes in collections too rare to average.
    "manager-dict-l1-fill": (
        _DICT_TIER + "l = LocalCache(10000); m = CacheManager(local=l, remote=DictTier())\n"
        "import gc; gc.disable()\n"
        "names = [f'f{i}' for i in range(1000)]\n"
        "for k in names: m.set(k, V, 300)\n"
        "def op():\n    l.clear()\n    for k in names: m.get(k)",
        "op()",
        1000,
    ),
    "manager-dict-only-get": (
        _DICT_TIER + "m = CacheManager(remote=DictTier())\n"
        "import gc; gc.disable()\n"
        "names = [f'f{i}' for i in range(1000)]\n"
        "for k in names: m.set(k, V, 300)\n"
        "def op():\n    for k in names: m.get(k)",
        "op()",
        1000,
    ),
    # The asyncio manager's two (an asyncio tier held in a dict).
    "manager-async-dict-l1-fill": (
        _ASYNC_DICT_TIER + "l = LocalCache(10000); m = AsyncCacheManager(local=l, "
        "remote=AsyncDictTier())\n"
        "import gc; gc.disable()\n"
        "names = [f'f{i}' for i in range(1000)]\n"
        "async def fill():\n    for k in names: await m.set(k, V, 300)\n"
        "loop.run_until_complete(fill())\n"
        "async def many(n):\n    g = m.get\n    for _ in range(n):\n        l.clear()\n"
        "        for k in names: await g(k)",
        None,
        1000,
    ),
    "manager-async-dict-only-get": (
        _ASYNC_DICT_TIER + "m = AsyncCacheManager(remote=AsyncDictTier())\n"
        "import gc; gc.disable()\n"
        "names = [f'f{i}' for i in range(1000)]\n"
        "async def fill():\n    for k in names: await m.set(k, V, 300)\n"
        "loop.run_until_complete(fill())\n"
        "async def many(n):\n    g = m.get\n    for _ in range(n):\n"
        "        for k in names: await g(k)",
        None,
        1000,
    ),
    "floor-set": (
        "import redis, time; c = Codec(); cl = redis.Redis(connection_pool="
        "redis.BlockingConnectionPool(host=HOST, port=PORT, max_connections=64, timeout=0.5))",
        "cl.set('cgs:k', c.encode('k', seal(V, 300, time.time())), px=300000)",
        1,
    ),
    "encode-envelope": (
        "import time; c = Codec()",
        "c.encode('k', seal(V, 300, time.time()))",
        1,
    ),
    "bare-execute-set": (
        "import redis; f = b'x' * 120; cl = redis.Redis(connection_pool="
        "redis.BlockingConnectionPool(host=HOST, port=PORT, max_connections=64, timeout=0.5))",
        "cl.execute_command('SET', b'cgs:k', f, 'PX', 300000)",
        1,
    ),
    "bare-conn-set": (
        "import redis; f = b'x' * 120; pool = redis.BlockingConnectionPool(host=HOST, "
        "port=PORT, max_connections=64, timeout=0.5)\n"
        "def op():\n    c = pool.get_connection()\n"
        "    c.send_packed_command(c.pack_command('SET', b'cgs:k', f, 'PX', 300000), False)\n"
        "    c.read_response()\n    pool.release(c)",
        "op()",
        1,
    ),
    "lane-set": (
        "import redis; f = b'x' * 120; pool = redis.BlockingConnectionPool(host=HOST, "
        "port=PORT, max_connections=64, timeout=0.5)\nidle = [pool.get_connection()]\n"
        "def op():\n    c = idle.pop()\n"
        "    c.send_command('SET', b'cgs:k', f, 'PX', 300000)\n"
        "    r = c.read_response()\n    idle.append(c)",
        "op()",
        1,
    ),
    "dogpile-set": (
        "import redis; from novacache.benchmark.peers_manager import dogpile_region\n"
        "r = dogpile_region(redis.BlockingConnectionPool(host=HOST, port=PORT, "
        "max_connections=64, timeout=0.5), 300).obj",
        "r.set('cgd:k', V)",
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
    "async-lane-get": (
        "import redis.asyncio as ra; cl = ra.Redis(host=HOST, port=PORT)\n"
        "loop.run_until_complete(cl.set('cg:k1', b'x'))\n"
        "async def many(n):\n    c = await cl.connection_pool.get_connection()\n"
        "    for _ in range(n):\n        await c.send_command('GET', b'cg:k1')\n"
        "        await c.read_response()",
        None,
        1,
    ),
    "async-floor-get": (
        "import redis.asyncio as ra; cl = ra.Redis(host=HOST, port=PORT)\n"
        "loop.run_until_complete(cl.set('cg:k1', b'x'))\n"
        "async def many(n):\n    for _ in range(n): await cl.get('cg:k1')",
        None,
        1,
    ),
    "async-redis-get": (
        "t = AsyncRedisTier(URL, prefix='cg:'); loop.run_until_complete(t.set('k1', b'x'))\n"
        "async def many(n):\n    for _ in range(n): await t.get('k1')",
        None,
        1,
    ),
}

#: LocalCache operations, one loop iteration ``for k in keys: <statement>`` each: name:
#: (setup, statement). The setup builds ``c`` and ``keys`` (and may warm ``c`` up); the
#: measured iterations are ``keys[:n]`` after that. ``POL`` is the policy (the name ends
#: in ``-lru`` or ``-tinylfu``).
_ASIDE = (
    "from novacache.benchmark.traces.generate import TraceSpec, generate\n"
    "t = generate(TraceSpec('zipf-0.9', 'zipf', 0.9, n_requests=260_000, "
    "n_objects=100_000, seed=1234)).tolist()\n"
    "c = LocalCache(maxsize=SIZE, policy=POL)\n"
    "for k in t[:WARM]:\n    if c.get(k) is None: c[k] = 1\n"
    "keys = t[WARM:]"
)
_LOCAL: dict[str, tuple[str, str]] = {
    # 10,000 int keys read in a cycle (insertion order) / in a seeded random order.
    "lc-hit-int": (
        "c = LocalCache(maxsize=10_000, policy=POL)\n"
        "for i in range(10_000): c[i] = i\n"
        "keys = [i for _ in range(13) for i in range(10_000)]",
        "c[k]",
    ),
    "lc-hit-rand": (
        "import random; r = random.Random(7)\n"
        "c = LocalCache(maxsize=10_000, policy=POL)\n"
        "for i in range(10_000): c[i] = i\n"
        "keys = [r.randrange(10_000) for _ in range(130_000)]",
        "c[k]",
    ),
    "lc-get-miss": (
        "c = LocalCache(maxsize=10_000, policy=POL)\n"
        "for i in range(10_000): c[i] = i\n"
        "keys = list(range(10**6, 10**6 + 130_000))",
        "c.get(k)",
    ),
    "lc-set-new": (
        "c = LocalCache(maxsize=1_000, policy=POL)\n"
        "for i in range(1_000): c[i] = i\n"
        "keys = list(range(10**6, 10**6 + 130_000))",
        "c[k] = 1",
    ),
    "lc-overwrite": (
        "c = LocalCache(maxsize=10_000, policy=POL)\n"
        "for i in range(10_000): c[i] = i\n"
        "keys = [i for _ in range(13) for i in range(10_000)]",
        "c[k] = 1",
    ),
    # The cache-aside loop over Zipf 0.9 (100,000 objects), after 100,000 requests.
    "lc-aside-1k": (_ASIDE.replace("SIZE", "1_000").replace("WARM", "100_000"), "ASIDE"),
    "lc-aside-10k": (_ASIDE.replace("SIZE", "10_000").replace("WARM", "100_000"), "ASIDE"),
    "lc-aside-100k": (_ASIDE.replace("SIZE", "100_000").replace("WARM", "100_000"), "ASIDE"),
}
for _name, (_setup, _stmt) in _LOCAL.items():
    for _pol in ("lru", "tinylfu"):
        OPS[f"{_name}-{_pol}"] = (_setup.replace("POL", repr(_pol)), _stmt, -1)

PRELUDE = """\
import asyncio, os, sys, tempfile
from novacache import Codec, LocalCache
from novacache.manager import AsyncCacheManager, CacheManager
from novacache.manager.envelope import seal
from novacache.tiers import AsyncRedisTier, RedisTier, SQLiteTier
URL, HOST, PORT = sys.argv[2], '127.0.0.1', int(sys.argv[2].rsplit(':', 1)[1].split('/')[0])
V = {"name": "vm", "cpu": 4, "mem": 8192, "state": "running", "node": "n1",
     "tags": ["a", "b"], "id": 1}
loop = asyncio.new_event_loop()
n = int(sys.argv[1])
"""


def _program(name: str) -> str:
    setup, op, per = OPS[name]
    if per < 0:  # a LocalCache operation: one iteration over `keys` each
        body = "if c.get(k) is None: c[k] = 1" if op == "ASIDE" else op
        return PRELUDE + setup + f"\nfor k in keys[:n]:\n    {body}\n"
    if op is None:  # an asyncio operation: the loop is in `many`
        return PRELUDE + setup + "\nloop.run_until_complete(many(n))\n"
    return PRELUDE + setup + f"\nfor _ in range(n):\n    {op}\n"


def run_valgrind(tree: Path, program: str, n: int, url: str, tool: list[str]) -> str:
    """What valgrind (its options ``tool``) printed on stderr for ``program`` run with
    ``tree``'s package, ``n`` iterations and ``url`` (also cachegrind_ops' runner)."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(program)
    # One BLAS thread: numpy's (the trace generator's) idle threads spin, and callgrind
    # counts their instructions too.
    env = dict(
        os.environ,
        PYTHONPATH=str(tree / "src"),
        PYTHONHASHSEED="0",
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
    )
    try:
        out = subprocess.run(
            ["valgrind", *tool, sys.executable, f.name, str(n), url],
            env=env, capture_output=True, text=True, check=True, cwd="/",
        )  # fmt: skip
    finally:
        os.unlink(f.name)
    return out.stderr


def _instructions(tree: Path, program: str, n: int, url: str) -> int:
    stderr = run_valgrind(
        tree, program, n, url, ["--tool=callgrind", "--callgrind-out-file=/dev/null"]
    )
    found = re.search(r"Collected : (\d+)", stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no total:\n{stderr[-2000:]}")
    return int(found.group(1))


def per_op(tree: Path, name: str, url: str, n1: int = 200, n2: int = 1200) -> float:
    """Client instructions of one ``name`` operation in ``tree``."""
    per = OPS[name][2]
    if per < 0:  # a LocalCache operation: 20,000 and 120,000 iterations
        n1, n2, per = 20_000, 120_000, 1
    elif name.startswith(("manager-dict-", "manager-async-dict-")):  # no server: more
        n1, n2 = 2, 12  # repetitions, which the first pass's table growth weighs less in
    elif per > 1:  # a repetition is `per` operations: fewer repetitions
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
