"""The package's dependency rules: layers import only downwards, no module imports itself in a circle.

Layers, lowest first (``../shared/DESIGN.md``)::

    storage  <  data  <  text, video  <  models, eval  <  train  <  apps

Every ``import`` and ``from ... import`` of a ``purls_pl`` module counts, also inside functions and
``if TYPE_CHECKING:`` blocks (an import hidden to dodge a cycle is still a dependency). Each package must
also import alone, in a fresh interpreter. (The ``purls-pl`` dispatcher loads commands by name, which is
not an import.)
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "purls_pl"
LAYERS: dict[str, int] = {
    "storage": 0,
    "integrity": 0,
    "progress": 0,
    "data": 1,
    "text": 2,
    "video": 2,
    "models": 3,
    "eval": 3,
    "train": 4,
    "apps": 5,
}
#: Top-level modules that sit above everything (the ``python -m purls_pl`` entry).
TOP = {"purls_pl", "purls_pl.__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    if module in TOP:
        return max(LAYERS.values()) + 1
    part = module.split(".")[1]
    if part not in LAYERS:
        raise AssertionError(f"{module} is in no layer; add its package to LAYERS in {__file__}")
    return LAYERS[part]


def imports(path: Path, modules: set[str]) -> set[str]:
    """The ``purls_pl`` modules ``path`` imports (submodules named in ``from pkg import mod`` included)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("purls_pl"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("purls_pl"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in modules}


def graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): imports(f, modules) - {module_name(f)} for f in files}


def test_every_module_is_in_a_layer():
    for module in graph():
        layer(module)


def test_imports_point_down_the_layers():
    upward = [
        f"{src} (layer {layer(src)}) imports {dst} (layer {layer(dst)})"
        for src, targets in graph().items()
        for dst in sorted(targets)
        if layer(dst) > layer(src)
    ]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_cycles():
    edges = graph()
    # A package's __init__ re-exporting its submodules is not a cycle of the submodules with it.
    for module, targets in edges.items():
        edges[module] = {t for t in targets if not module.startswith(t + ".")}
    cycles, state, stack = [], dict.fromkeys(edges, 0), []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state[nxt] == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif state[nxt] == 0:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if state[node] == 0:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_each_package_imports_alone(package):
    """A fresh interpreter imports every module of the package (and only what they need)."""
    modules = sorted(m for m in graph() if m == f"purls_pl.{package}" or m.startswith(f"purls_pl.{package}."))
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
