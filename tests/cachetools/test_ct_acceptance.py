"""Acceptance: cachetools' own test-suite, run against ``novacache.cachetools``.

The ``tests/`` folder of the cachetools 8.0.2 sdist is fetched at test time (it is not
our code, and is never committed): ``pip download`` puts the sdist in a cache directory
outside the work tree, the folder is extracted into a temporary package, its
``cachetools`` imports are pointed at ``novacache.cachetools``, and pytest runs it in a
child process once per implementation (``NOVACACHE_CACHETOOLS_IMPL``).

Without network the test is skipped, but fails when the ``CI`` environment variable is
set: CI must never pass without having run the suite.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

import novacache

VERSION = "8.0.2"
SDIST = f"cachetools-{VERSION}.tar.gz"
# The sdist on PyPI: a cached file that differs (truncated, tampered) is fetched again.
SHA256 = "30ac523adfc118b51d2b2e7bad8a0ddb31370dfe2700c7f10ca224f36ccf81e0"
IMPLEMENTATIONS = ("pure", "auto")

# `import cachetools` / `import cachetools.func`: bind the name `cachetools` to our
# package, and import the submodule (which sets it as an attribute of the package).
_IMPORT = re.compile(r"^(?P<indent>[ \t]*)import cachetools(?P<sub>(?:\.\w+)*)[ \t]*$", re.M)
# `from cachetools import X` / `from cachetools.keys import X`.
_FROM = re.compile(r"^(?P<indent>[ \t]*)from cachetools(?P<sub>(?:\.\w+)*) import ", re.M)
_LEFTOVER = re.compile(r"^[ \t]*(?:import|from)[ \t]+cachetools\b", re.M)

# Loaded by the child pytest: any import of the real cachetools is an error, so a
# missed rewrite can never test cachetools against itself.
_CONFTEST = """\
import os
import sys

sys.modules["cachetools"] = None  # importing it now raises ImportError

import novacache.cachetools

assert os.environ["NOVACACHE_CACHETOOLS_IMPL"] in ("pure", "auto")
"""


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or tempfile.gettempdir()
    return Path(base) / "novacache-tests" / "cachetools-sdist"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but the cachetools sdist is unavailable: {reason}", pytrace=False)
    pytest.skip(f"cachetools sdist unavailable: {reason}")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _download() -> Path:
    target = _cache_dir()
    sdist = target / SDIST
    if sdist.is_file() and _digest(sdist) == SHA256:
        return sdist
    target.mkdir(parents=True, exist_ok=True)
    # Into a private directory first, so that a concurrent run never reads a
    # partly written file; then moved into place atomically.
    staging = Path(tempfile.mkdtemp(dir=target))
    command = [
        sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
        "--disable-pip-version-check", f"cachetools=={VERSION}", "-d", str(staging),
    ]  # fmt: skip
    try:
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            _unavailable(repr(exc))
        fetched = staging / SDIST
        if result.returncode != 0 or not fetched.is_file():
            _unavailable(result.stderr.strip().splitlines()[-1] if result.stderr else "no sdist")
        if _digest(fetched) != SHA256:
            pytest.fail(f"{SDIST} does not have the pinned sha256", pytrace=False)
        os.replace(fetched, sdist)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sdist


def rewrite_imports(source: str) -> str:
    """Point a cachetools test module's imports at ``novacache.cachetools``."""
    source = _IMPORT.sub(
        lambda m: (
            f"{m['indent']}import novacache.cachetools{m['sub']}\n"
            f"{m['indent']}import novacache.cachetools as cachetools"
        ),
        source,
    )
    source = _FROM.sub(
        lambda m: f"{m['indent']}from novacache.cachetools{m['sub']} import ", source
    )
    leftover = _LEFTOVER.search(source)
    assert leftover is None, f"unrewritten import: {leftover.group(0)!r}"
    return source


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist's tests/ as package ``cachetools_suite``, imports rewritten."""
    sdist = _download()
    root = tmp_path_factory.mktemp("cachetools-suite")
    package = root / "cachetools_suite"
    package.mkdir()
    prefix = f"cachetools-{VERSION}/tests/"
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.startswith(prefix) and member.name.endswith(".py"):
                name = member.name[len(prefix) :]
                if "/" in name:
                    continue
                extracted = archive.extractfile(member)
                assert extracted is not None
                text = extracted.read().decode("utf-8")
                (package / name).write_text(rewrite_imports(text), encoding="utf-8")
    assert (package / "__init__.py").is_file(), "the sdist has no tests/__init__.py"
    (root / "conftest.py").write_text(_CONFTEST, encoding="utf-8")
    return root


def test_rewrite_imports() -> None:
    source = (
        "import cachetools\nimport cachetools.func\n"
        "from cachetools import LRUCache\nfrom cachetools.keys import hashkey\n"
        "    import cachetools.keys\n"
    )
    assert rewrite_imports(source) == (
        "import novacache.cachetools\nimport novacache.cachetools as cachetools\n"
        "import novacache.cachetools.func\nimport novacache.cachetools as cachetools\n"
        "from novacache.cachetools import LRUCache\n"
        "from novacache.cachetools.keys import hashkey\n"
        "    import novacache.cachetools.keys\n    import novacache.cachetools as cachetools\n"
    )


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_cachetools_suite_passes(suite_dir: Path, implementation: str) -> None:
    src = Path(novacache.__file__).resolve().parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src), str(suite_dir), env.get("PYTHONPATH", "")])
    env["NOVACACHE_CACHETOOLS_IMPL"] = implementation
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "--rootdir", str(suite_dir), str(suite_dir / "cachetools_suite"),
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=suite_dir, env=env, capture_output=True, text=True, timeout=600
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, f"{summary}\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
    passed = re.search(r"(\d+) passed", summary)
    assert passed is not None, summary
    assert int(passed.group(1)) > 300, summary
    assert not re.search(r"\d+ (failed|error|skipped|xfailed)", summary), summary
