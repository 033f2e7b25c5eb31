"""Build a hardwired layer (llmc.rtl.hn) and check it in a cocotb testbench.

    build = build_hn(layer, "me", "icarus", "/tmp/b")       # generate + compile once
    run = run_hn(build, layer, "me", xs, expected, "/tmp/b/run")
    assert run.passed, run.problem

`expected` is what the golden model (the IR interpreter's int_linear) gave
for the input vectors `xs`; the testbench compares every output word and the
cycle count with `HnLayer.cycles(style)`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmc.rtl.hn import HnLayer, generate
from llmc.rtl.runner import Build, SimRun, WaveFormat, build_design, run_test

TB_MODULE = "llmc.rtl.tb_hn"


@dataclass(frozen=True)
class HnRun:
    """The verdict of one testbench run: per vector cycles and mismatches."""

    simulator: str
    style: str
    expected_cycles: int
    cycles: tuple[int, ...]
    mismatches: tuple[int, ...]
    outputs: tuple[tuple[int, ...], ...]
    sim: SimRun
    problem: str | None

    @property
    def passed(self) -> bool:
        return self.problem is None and self.sim.passed and not any(self.mismatches) and \
            all(c == self.expected_cycles for c in self.cycles)


def build_hn(layer: HnLayer, style: str, simulator: str, build_dir: str | Path, *,
             waves: WaveFormat | bool | None = None) -> Build:
    """Generate the layer into `build_dir/rtl` and compile it in `build_dir/sim_<simulator>`."""
    build_dir = Path(build_dir)
    design = generate(layer, style)
    sources = design.write(build_dir / "rtl")
    return build_design(sources, design.top, simulator, build_dir / f"sim_{simulator}",
                        waves=waves)


def run_hn(build: Build, layer: HnLayer, style: str, xs: Sequence[Sequence[int]],
           expected: Sequence[Sequence[int]], run_dir: str | Path, *,
           waves: bool = False) -> HnRun:
    """Run the testbench on `build` for the vectors `xs` against `expected`."""
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg, report = run_dir / "tb.json", run_dir / "report.json"
    report.unlink(missing_ok=True)
    want = layer.cycles(style)
    cfg.write_text(json.dumps({
        "k": layer.k, "n": layer.n, "x_bits": layer.x_bits, "expected_cycles": want,
        "inputs": [[int(v) for v in x] for x in xs],
        "expected": [[int(v) for v in y] for y in expected],
        "report": str(report),
    }) + "\n")
    sim = run_test(build, TB_MODULE, run_dir, extra_env={"LLMC_TB_CONFIG": str(cfg)},
                   waves=waves)
    if not report.is_file():
        return HnRun(build.simulator, style, want, (), (), (), sim,
                     f"the testbench wrote no report; see {sim.log}:\n{sim.log_tail()}")
    rows = json.loads(report.read_text())["vectors"]
    return HnRun(build.simulator, style, want, tuple(r["cycles"] for r in rows),
                 tuple(r["mismatches"] for r in rows), tuple(tuple(r["y"]) for r in rows),
                 sim, None if len(rows) == len(xs) else "the testbench stopped early")


def random_inputs(k: int, count: int, seed: int, bits: int = 8) -> np.ndarray:
    """Seeded signed activations (count, k), the full range included."""
    rng = np.random.default_rng(seed)
    top = 2 ** (bits - 1) - 1
    xs = rng.integers(-top, top + 1, (count, k))
    xs[0, :] = top                    # extremes: every bit plane busy
    if count > 1:
        xs[1, :] = -top
    return xs
