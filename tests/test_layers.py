"""The import graph of ``src/novacache``: no circle, and every import points down.

Read from the sources with ``ast``, so every import counts: at module level, inside a
function (a lazy import is still a dependency) and under ``TYPE_CHECKING``. The layers
follow ``DESIGN.md``: the engine never imports the benchmark or the operations code, the
tiers never import the manager, the core imports nothing of ours but errors.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import novacache

PACKAGE = Path(novacache.__file__).resolve().parent
SOURCES = Path(__file__).resolve().parent.parent / "src" / "novacache"

# Top to bottom; a module may import its own part and the parts below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("ops",),
    ("benchmark",),
    # The operations library (SUBPARTS) sits below the benchmark, which measures it; the
    # rest of ops/ (the command line, the demo, the HTTP API) above it, since it runs the
    # benchmark.
    ("ops.metrics",),
    ("ops.health",),
    # novacache.toml: builds managers on the tiers, codec and NovaCron models it names.
    ("config",),
    ("novacron",),
    ("invalidation",),
    ("manager",),
    ("consistency",),  # versions, the clock, conflict resolution: the manager uses them
    ("coherence",),
    ("tiers",),
    ("codec", "cachetools"),
    (
        "_local",
        "_local_py",
        "_core",
        "_codec",
        "_tierkit",
        "_managerkit",
        "_floor",
        "_select",
        "_stats",
        "_concurrency",
        "_counters",
        "_policy_py",
        "breaker",
        "errors",
        "_version",
    ),
)
# The facades above every layer: they re-export the public API. The command line and the
# benchmark use the library as its users do, through them.
FACADES = {"novacache", "novacache.__main__"}
FACADE_USERS = {"ops", "benchmark"}


def _root() -> Path:
    """The tree to read: the sources beside the tests, else the installed package."""
    return SOURCES if SOURCES.is_dir() else PACKAGE


def _modules(root: Path) -> dict[str, Path | None]:
    """Every module: its source, or ``None`` for a compiled one (``ext/*.pyx``, or the
    extension modules of an installed package)."""
    found: dict[str, Path | None] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    compiled = [p.stem for p in (root.parent.parent / "ext").glob("*.pyx")]
    compiled += [p.name.split(".")[0] for p in PACKAGE.glob("*.so")]
    for stem in compiled:
        found.setdefault(f"novacache.{stem}", None)
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The novacache modules ``name`` imports (a name imported from a package counts as
    its submodule when it is one)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [
                f"{module}.{a.name}" if f"{module}.{a.name}" in known else module
                for a in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith("novacache") and target != name:
                out.add(target)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules(_root())
    known = set(modules)
    return {
        name: _imports(name, path, known) if path is not None else set()
        for name, path in modules.items()
    }


#: Modules of a part that form a layer of their own: ``{"ops.metrics", ...}``.
SUBPARTS = {"ops.metrics", "ops.health"}


def _part(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 2 and f"{parts[1]}.{parts[2]}" in SUBPARTS:
        return f"{parts[1]}.{parts[2]}"
    return parts[1] if len(parts) > 1 else ""


def _layer(module: str) -> int:
    part = _part(module)
    for i, names in enumerate(LAYERS):
        if part in names:
            return i
    raise AssertionError(f"{module} belongs to no layer: add its part to LAYERS")


def test_every_module_has_a_layer() -> None:
    for module in _graph():
        if module not in FACADES:
            _layer(module)


def test_imports_point_down() -> None:
    wrong = []
    for module, targets in _graph().items():
        if module in FACADES:
            continue
        for target in targets:
            if target in FACADES:
                if _part(module) in FACADE_USERS:
                    continue
                wrong.append(f"{module} -> {target} (the public facade)")
            elif _part(target) == _part(module):
                continue
            elif _layer(target) < _layer(module) or (
                _layer(target) == _layer(module) and _layer(module) != len(LAYERS) - 1
            ):
                # Up, or sideways between parts of one layer (the core's modules are
                # one part: they may import each other).
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(sorted(wrong))


def test_no_import_circle() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not circles, f"import circles: {circles}"


@pytest.mark.parametrize("part", ["benchmark", "ops"])
def test_the_engine_never_imports(part: str) -> None:
    users = sorted(
        module
        for module, targets in _graph().items()
        if _part(module) not in ("benchmark", "ops")
        and module not in FACADES
        and any(_part(t) == part for t in targets)
    )
    assert not users, f"the engine imports novacache.{part}: {users}"
