"""Build of novacache's compiled core.

Every ``ext/<name>.pyx`` becomes the extension module ``novacache.<name>``.

Build switches (environment variables, read at build time):

``NOVACACHE_NO_EXTENSIONS=1``
    Build nothing: a pure-Python wheel that runs on the twin (``novacache._local_py``).
``NOVACACHE_DEBUG=1``
    ``-O0 -g3``, C asserts on, Cython's own internal checks on: for gdb and valgrind.
``NOVACACHE_ANNOTATE=1``
    Write Cython's annotated HTML next to each ``.pyx`` (yellow = Python API calls).
``NOVACACHE_LINETRACE=1``
    Compile with line tracing, so coverage.py and profilers see lines inside ``.pyx``.
``NOVACACHE_ONLY=_core,_floor``
    Build only these modules of ``ext/`` (a development convenience).
``NOVACACHE_SANITIZE=1``
    Build with AddressSanitizer and UndefinedBehaviorSanitizer (run Python with
    ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)``), for the tests that hunt
    memory errors.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
EXT_DIR = HERE / "ext"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


NO_EXTENSIONS = _flag("NOVACACHE_NO_EXTENSIONS") or sys.implementation.name != "cpython"
DEBUG = _flag("NOVACACHE_DEBUG")
ANNOTATE = _flag("NOVACACHE_ANNOTATE")
LINETRACE = _flag("NOVACACHE_LINETRACE")
SANITIZE = _flag("NOVACACHE_SANITIZE")


class NovaBuildExt(build_ext):
    """Compiler flags for the switches above (Cython runs in ``_extensions``)."""

    def build_extensions(self) -> None:
        for ext in self.extensions:
            if self.compiler.compiler_type == "msvc":
                ext.extra_compile_args += ["/O2"] if not DEBUG else ["/Od", "/Zi"]
                continue
            if DEBUG:
                ext.extra_compile_args += ["-O0", "-g3", "-UNDEBUG"]
            else:
                # Every function starts on a 64-byte boundary, so that a change in one
                # function does not shift the alignment of the hot paths after it: the
                # merge of two changes that touched neither made LRU's cache-aside loop
                # at 100,000 entries 10-15% slower (1.13-1.22x dict instead of
                # 1.01-1.08x, `novacache bench --only aside`) by moving code alone; with
                # this flag it is 1.00-1.02x. The library grows by 8 KB.
                ext.extra_compile_args += ["-O3", "-falign-functions=64"]
                if sys.platform.startswith("linux"):
                    # Ship symbols (profilers name functions) but not the debug info
                    # that Python's default -g adds: the wheel is a third of the size.
                    ext.extra_link_args += ["-Wl,--strip-debug"]
            if SANITIZE:
                ext.extra_compile_args += [
                    "-fsanitize=address,undefined",
                    "-fno-omit-frame-pointer",
                ]
                ext.extra_link_args += ["-fsanitize=address,undefined"]
            if LINETRACE:
                ext.define_macros += [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]
        super().build_extensions()


def _cython_directives() -> dict[str, object]:
    directives: dict[str, object] = {
        "language_level": "3",
        "boundscheck": False,
        "wraparound": False,
        "cdivision": True,
        "initializedcheck": False,
        "embedsignature": True,
    }
    if LINETRACE:
        directives["linetrace"] = True
        directives["profile"] = True
    if DEBUG:
        directives["boundscheck"] = True
        directives["wraparound"] = True
    return directives


def _depends(pyx: Path) -> list[str]:
    """The files a module is rebuilt for besides its ``.pyx``: every header of ``ext/``,
    and the parts the ``.pyx`` includes, kept in the folder named as the module without
    its underscore (``ext/_core.pyx`` includes ``ext/core/*.pxi``), and the core's C API
    (``ext/core/api.pxi``), which other modules include too."""
    parts = EXT_DIR / pyx.stem.lstrip("_")
    files = [*EXT_DIR.glob("*.h"), *parts.glob("*.pxi"), *parts.glob("*.pxd")]
    files.append(EXT_DIR / "core" / "api.pxi")
    files = list(dict.fromkeys(files))
    return sorted(str(p.relative_to(HERE)) for p in files)


def _extensions() -> list[Extension]:
    if NO_EXTENSIONS:
        return []
    from Cython.Build import cythonize

    only = {n.strip() for n in os.environ.get("NOVACACHE_ONLY", "").split(",") if n.strip()}
    extensions = [
        Extension(
            f"novacache.{pyx.stem}",
            [str(pyx.relative_to(HERE))],
            include_dirs=[str(EXT_DIR.relative_to(HERE))],
            depends=_depends(pyx),
        )
        for pyx in sorted(EXT_DIR.glob("*.pyx"))
        if not only or pyx.stem in only
    ]
    return cythonize(  # type: ignore[no-any-return]
        extensions,
        compiler_directives=_cython_directives(),
        annotate=ANNOTATE,
        force=ANNOTATE or LINETRACE or DEBUG,
        quiet=not DEBUG,
    )


setup(
    ext_modules=_extensions(),
    cmdclass={"build_ext": NovaBuildExt},
)
