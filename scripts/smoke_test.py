"""Smoke test of an installed novacache: run from outside the source tree, in the venv
that holds the artifact (scripts/release runs it for each one; cibuildwheel runs it as
its test command).

    python smoke_test.py --compiled yes|no

Checks: the import; ``novacache.compiled`` as expected (and every compiled module
importable when it is); ``py.typed`` (and the ``.pyi`` stubs of a compiled build)
installed; a ``LocalCache`` hit; a ``CacheManager`` round trip on an SQLite file,
read back by a second manager on the same file; ``novacache --version``. Prints one
line per check; exits non-zero at the first failure, saying what was wrong.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

COMPILED_MODULES = ("_core", "_codec", "_tierkit", "_managerkit")


def _check(ok: bool, what: str) -> None:
    if not ok:
        sys.exit(f"smoke test FAILED: {what}")
    print(f"ok  {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compiled", choices=("yes", "no"), required=True)
    args = parser.parse_args()
    expect = args.compiled == "yes"

    import novacache

    here = Path(novacache.__file__).resolve().parent
    _check("site-packages" in here.parts, f"novacache imported from an install ({here})")
    _check(
        novacache.compiled is expect,
        f"novacache.compiled is {expect} (import error: {novacache._local.IMPORT_ERROR})",
    )
    if expect:
        for name in COMPILED_MODULES:
            module = importlib.import_module(f"novacache.{name}")
            _check(
                Path(module.__file__ or "").suffix in (".so", ".pyd"),
                f"novacache.{name} is compiled",
            )
            _check((here / f"{name}.pyi").exists(), f"{name}.pyi ships")
    _check((here / "py.typed").exists(), "py.typed ships")

    cache = novacache.LocalCache(16)
    cache["k"] = {"v": 1}
    _check(cache.get("k") == {"v": 1} and cache.stats.hits == 1, "LocalCache hit")

    workdir = Path(tempfile.mkdtemp(prefix="novacache-smoke-"))
    try:
        path = workdir / "cache.db"
        first = novacache.CacheManager.embedded(path)
        first.set("user:1", {"name": "Ada", "n": [1, 2, 3]}, ttl=60)
        again = first.get("user:1")
        first.close()
        second = novacache.CacheManager.embedded(path)
        from_store = second.get("user:1")
        second.close()
        _check(
            again == from_store == {"name": "Ada", "n": [1, 2, 3]},
            "CacheManager round trip on SQLite (read back by a new manager)",
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    script = Path(sys.executable).with_name("novacache")
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)
    _check(
        out.returncode == 0 and out.stdout.strip() == f"novacache {novacache.__version__}",
        f"novacache --version prints 'novacache {novacache.__version__}' (got {out.stdout!r})",
    )


if __name__ == "__main__":
    main()
