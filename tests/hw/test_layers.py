"""llmc.hw is the lowest layer, and the simulator and the RTL generator are
peers that both read it: every import, function-local ones included."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

LLMC = Path(__file__).resolve().parents[2] / "llmc"


def _imports(package: str) -> dict[str, set[str]]:
    """Module file -> the modules it imports (absolute names)."""
    out = {}
    for path in sorted((LLMC / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
        out[str(path.relative_to(LLMC.parent))] = names
    return out


def test_hw_imports_only_the_standard_library_numpy_and_errors() -> None:
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    for path, names in _imports("hw").items():
        for name in names:
            top = name.split(".")[0]
            ok = top in allowed or name == "llmc.errors" or name.startswith("llmc.hw")
            assert ok, f"{path} imports {name}"


def test_rtl_imports_nothing_from_sim() -> None:
    for path, names in _imports("rtl").items():
        assert not any(n == "llmc.sim" or n.startswith("llmc.sim.") for n in names), path
    for path, names in _imports("sim").items():
        assert not any(n.startswith("llmc.rtl") for n in names), path
