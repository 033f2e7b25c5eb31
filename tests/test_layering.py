"""Imports follow the layers of `llmc.layers`: no module imports a higher
layer, function-local imports included, and the cost model, the simulator
and the RTL generators import none of each other.

The import graph is read from the source with `ast`, so an import inside a
function (or under ``if TYPE_CHECKING``) counts as much as one at the top.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from llmc.layers import LAYERS, PEERS, layer_of

ROOT = Path(__file__).resolve().parents[1] / "llmc"

@dataclass(frozen=True)
class Edge:
    file: str     # path relative to the tree's parent, e.g. llmc/ir/graph.py
    line: int
    importer: str  # dotted module names
    imported: str


def _modules(root: Path) -> dict[str, Path]:
    """Dotted name of every module under the package directory `root`."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_llmc(name: str, top: str) -> bool:
    return name == top or name.startswith(top + ".")


def _targets(node: ast.AST, module: str, is_pkg: bool, known: set[str]) -> list[str]:
    """The modules one AST node imports: `import a.b`, `from a import b`
    (a.b when that is a module, else a), relative forms resolved, and
    `importlib.import_module("a.b")` with a literal name."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            package = module if is_pkg else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{node.module}" if node.module else package
        else:
            base = node.module or ""
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                for a in node.names]
    if isinstance(node, ast.Call) and node.args:
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
        arg = node.args[0]
        if name == "import_module" and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return [arg.value]
    return []


def import_edges(root: Path) -> list[Edge]:
    """Every import of a module of package `root` by a module of it."""
    modules = _modules(root)
    known = set(modules)
    edges = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        rel = path.relative_to(root.parent).as_posix()
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            for t in _targets(node, module, is_pkg, known):
                if _is_llmc(t, root.name):
                    edges.append(Edge(rel, node.lineno, module, t))
    return sorted(edges, key=lambda e: (e.file, e.line, e.imported))


def violation(edge: Edge) -> str | None:
    """Why `edge` breaks the layering, or None when it does not."""
    src, dst = layer_of(edge.importer), layer_of(edge.imported)
    where = f"{edge.file}:{edge.line}: {edge.importer} imports {edge.imported}"
    if src is None or dst is None:
        unplaced = edge.importer if src is None else edge.imported
        return f"{where} ({unplaced} is in no layer of llmc.layers)"
    if dst[0] > src[0]:
        return f"{where} (layer {dst[1]} above {src[1]})"
    if dst[0] == src[0] and src[2] != dst[2] and {src[2], dst[2]} <= PEERS:
        return f"{where} ({dst[2]} and {src[2]} are peers in layer {src[1]})"
    return None


def violations(root: Path, allowed: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    return [v for e in import_edges(root)
            if (e.file, e.imported) not in allowed and (v := violation(e))]


def test_no_import_runs_up_the_layers() -> None:
    bad = violations(ROOT)
    assert not bad, "imports against llmc.layers:\n" + "\n".join(bad)


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in _modules(ROOT) if layer_of(m) is None]
    assert not unplaced, f"add these modules to llmc.layers.LAYERS: {unplaced}"


def test_layer_table_reads_bottom_to_top() -> None:
    names = [name for name, _ in LAYERS]
    assert names[0] == "base" and names[-1] == "cli"
    assert layer_of("llmc.cli.sim")[1] == "cli"
    assert layer_of("llmc.sim.cli")[1] == "analysis"   # no sub-package holds a cli module
    assert layer_of("llmc.passes.quant.formats")[1] == "passes"
    assert layer_of("llmc")[1] == "api"
    assert layer_of("llmc.nowhere") is None


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "llmc"


def test_checker_reports_planted_upward_imports(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "llmc/__init__.py": "",
        "llmc/errors.py": "",
        "llmc/api.py": "from llmc.ir import graph\n",              # downward: fine
        "llmc/cli/__init__.py": "import llmc.api\n",                # downward: fine
        "llmc/ir/__init__.py": "",
        "llmc/ir/graph.py": "from llmc import errors\n"
                            "def f():\n"
                            "    from llmc import api\n",           # function-local, upward
        "llmc/ir/ops.py": "from . import graph\n"                   # relative, same layer
                          "from ..passes import fuse\n",            # relative, upward
        "llmc/passes/__init__.py": "",
        "llmc/passes/fuse.py": "import importlib\n"
                               "M = importlib.import_module('llmc.sim.core')\n",
        "llmc/sim/__init__.py": "",
        "llmc/sim/core.py": "from llmc.rtl.emit import x\n",        # peer
        "llmc/cli/sim.py": "from llmc.api import compile\n",        # cli layer: fine
        "llmc/rtl/__init__.py": "",
        "llmc/rtl/emit.py": "",
    })
    assert violations(root) == [
        "llmc/ir/graph.py:3: llmc.ir.graph imports llmc.api (layer api above ir)",
        "llmc/ir/ops.py:2: llmc.ir.ops imports llmc.passes.fuse (layer passes above ir)",
        "llmc/passes/fuse.py:2: llmc.passes.fuse imports llmc.sim.core "
        "(layer analysis above passes)",
        "llmc/sim/core.py:1: llmc.sim.core imports llmc.rtl.emit "
        "(llmc.rtl and llmc.sim are peers in layer analysis)",
    ]
    assert violations(root, frozenset({("llmc/sim/core.py", "llmc.rtl.emit")}))[-1].startswith(
        "llmc/passes/fuse.py:2:")
