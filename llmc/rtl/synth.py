"""Cell counts of generated designs from yosys: the systolic array
(`synth_array`), the whole standalone GEMM core (`synth_core`) and any Design
(`synth_design`, used for the hardwired layers of llmc.rtl.hn; `synth_top`,
its top module alone over black-box units, for the decode step's controller).

`synth_array(spec)` writes the array module and its blocks to a temporary
directory, runs `synth -flatten` on the array alone and reports yosys'
generic cells; `synth_core(cfg)` does the same for the core with its
controller and buffers (register files, sized by `cfg`).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from llmc.hw.array import ArraySpec
from llmc.rtl.config import CoreConfig
from llmc.rtl.design import Design
from llmc.rtl.gemm_core import generate_core
from llmc.rtl.runner import SimulationError
from llmc.rtl.tools import find_yosys


@dataclass(frozen=True)
class SynthReport:
    """yosys `stat` of one module: total cells, flip-flops, cells by type."""

    module: str
    cells: int
    flops: int
    by_type: tuple[tuple[str, int], ...]
    yosys: str

    def lines(self) -> list[str]:
        """Human-readable summary."""
        out = [f"{self.module}: {self.cells} cells ({self.flops} flip-flops), {self.yosys}"]
        out += [f"  {name:<16} {count}" for name, count in self.by_type]
        return out


def _run_yosys(executable: Path, cwd: str, script: str, top: str) -> tuple[dict, float]:
    """Run the yosys `script` (which writes stat.json) in `cwd`; (the parsed
    stat.json, seconds). A failure is a SimulationError naming `top`."""
    t0 = time.perf_counter()
    out = subprocess.run([str(executable), "-q", "-p", script], cwd=cwd,
                         capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    stat = Path(cwd) / "stat.json"
    if out.returncode != 0 or not stat.is_file():
        raise SimulationError(f"yosys failed on {top}: {out.stderr.strip()[-2000:]}")
    return json.loads(stat.read_text()), seconds


def _report(top: str, cells: dict[str, int], version: str) -> SynthReport:
    """The SynthReport of a module from its cells by type (yosys' $scopeinfo
    cells left out: they are not hardware)."""
    by_type = sorted((k, int(v)) for k, v in cells.items() if not k.startswith("$scopeinfo"))
    flops = sum(n for name, n in by_type if "DFF" in name)
    return SynthReport(top, sum(n for _, n in by_type), flops, tuple(by_type), version)


def synth_design(design: Design, *, flatten: bool = True) -> tuple[SynthReport, float]:
    """Synthesise a generated design with yosys (`synth -noabc`: generic gates,
    no technology mapping) and count its cells by type; (report, seconds).

    Paths are relative (the yowasp wheel sees only its working directory)."""
    tool = find_yosys()
    with tempfile.TemporaryDirectory(prefix="llmc-synth-") as tmp:
        names = [p.name for p in design.write(tmp)]
        script = (f"read_verilog {' '.join(names)}; "
                  f"synth -noabc {'-flatten ' if flatten else ''}-top {design.top}; "
                  "tee -q -o stat.json stat -json")
        data, seconds = _run_yosys(tool.executable, tmp, script, design.top)
    return _report(design.top, data["design"]["num_cells_by_type"], tool.version), seconds


def synth_core(cfg: CoreConfig) -> SynthReport:
    """Synthesise the whole GEMM core of `cfg` (os or ws) with yosys and count its cells."""
    return synth_design(generate_core(cfg))[0]


def synth_top(design: Design) -> tuple[SynthReport, float]:
    """Synthesise only the top module of `design`, its submodules read as black
    boxes (`read_verilog -lib`): the cells of the glue and control a top adds to
    its units (llmc.rtl.hn_ctrl's controller), each unit instance one cell."""
    tool = find_yosys()
    with tempfile.TemporaryDirectory(prefix="llmc-synth-") as tmp:
        names = [p.name for p in design.write(tmp)]
        top = f"{design.top}.v"
        units = [n for n in names if n != top]
        lib = f"read_verilog -lib {' '.join(units)}; " if units else ""
        script = (f"{lib}read_verilog {top}; "
                  f"synth -noabc -top {design.top}; tee -q -o stat.json stat -json")
        data, seconds = _run_yosys(tool.executable, tmp, script, design.top)
    cells = data["modules"][f"\\{design.top}"]["num_cells_by_type"] \
        if f"\\{design.top}" in data.get("modules", {}) else data["design"]["num_cells_by_type"]
    return _report(design.top, cells, tool.version), seconds


def synth_array(spec: ArraySpec) -> SynthReport:
    """Synthesise the R×C array of `spec` with yosys and count its cells."""
    tool = find_yosys()
    cfg = CoreConfig(spec, 1, 1, 1)  # buffer sizes do not matter for the array
    design = generate_core(cfg)
    with tempfile.TemporaryDirectory(prefix="llmc-synth-") as tmp:
        paths = design.write(tmp)
        array = [p.name for p in paths if p.stem != cfg.top]  # blocks + array, no core
        # relative paths and generic gates, as synth_design (the yowasp wheel)
        script = (
            f"read_verilog {' '.join(array)}; "
            f"synth -noabc -flatten -top {cfg.array}; tee -q -o stat.json stat -json"
        )
        data = _run_yosys(tool.executable, tmp, script, cfg.array)[0]
    mod = data["design"]
    by_type = sorted(mod["num_cells_by_type"].items())
    flops = sum(n for name, n in by_type if "DFF" in name)
    return SynthReport(cfg.array, int(mod["num_cells"]), flops, tuple(by_type), tool.version)
