"""Build a hardwired layer (llmc.rtl.hn) and check it in a cocotb testbench.

    build = build_hn([layer], "me", "icarus", "/tmp/b")       # generate + compile once
    run = run_hn(build, [layer], "me", [xs], [expected], "/tmp/b/run")
    assert run.passed, run.problem

Several layers are built side by side in one design (`generate_step`) and
run together. A whole decode step (llmc.rtl.hn_ctrl: the units and the
controller sequencing them) has its cycle model here too (`decode_schedule`)
and runs through `build_decode` / `run_decode`. `expected[i]` is what the golden model (the IR interpreter's
int_linear) gave for layer i's input vectors `xs[i]`; the testbench compares
every output word and the cycle count with `step_cycles`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmc.rtl.hn import HnLayer, generate_step
from llmc.rtl.hn_ctrl import generate_decode
from llmc.rtl.hn_ctrl import steps as ctrl_steps
from llmc.rtl.hn_ffn import FfnSpec, generate_ffn
from llmc.rtl.hn_layer import DecodeSpec
from llmc.rtl.runner import Build, SimRun, WaveFormat, build_design, run_tb

TB_MODULE = "llmc.rtl.tb_hn"


@dataclass(frozen=True)
class HnRun:
    """The verdict of one testbench run: per vector cycles and mismatches."""

    simulator: str
    style: str
    expected_cycles: int
    cycles: tuple[int, ...]
    mismatches: tuple[int, ...]
    outputs: tuple[tuple[tuple[int, ...], ...], ...]  # per vector, per layer
    sim: SimRun
    tb_wall_s: float  # wall time of the vectors inside the simulator
    problem: str | None

    @property
    def passed(self) -> bool:
        return self.problem is None and self.sim.passed and not any(self.mismatches) and \
            all(c == self.expected_cycles for c in self.cycles)


def step_cycles(layers: Sequence[HnLayer], style: str) -> int:
    """The cycle model of a step: its layers run in parallel, the slowest sets it."""
    return max(layer.cycles(style) for layer in layers)


def build_hn(layers: Sequence[HnLayer], style: str, simulator: str, build_dir: str | Path, *,
             waves: WaveFormat | bool | None = None, compact: bool = False) -> Build:
    """Generate the layers into `build_dir/rtl` and compile them in `build_dir/sim_<simulator>`
    (`compact`: the Metal-Embedding neurons as llmc_hn_neuron, llmc.rtl.hn)."""
    build_dir = Path(build_dir)
    design = generate_step(list(layers), style, compact=compact)
    sources = design.write(build_dir / "rtl")
    return build_design(sources, design.top, simulator, build_dir / f"sim_{simulator}",
                        waves=waves)


def _no_report(sim: SimRun) -> str:
    return f"the testbench wrote no report; see {sim.log}:\n{sim.log_tail()}"


def run_hn(build: Build, layers: Sequence[HnLayer], style: str,
           xs: Sequence[Sequence[Sequence[int]]], expected: Sequence[Sequence[Sequence[int]]],
           run_dir: str | Path, *, waves: bool = False) -> HnRun:
    """Run the testbench on `build`: layer i gets the vectors xs[i], checked
    against expected[i]."""
    want = step_cycles(layers, style)
    one = len(layers) == 1
    ports = [{"x": "x" if one else f"x_{i}", "y": "y" if one else f"y_{i}", "n": layer.n,
              "inputs": [[int(v) for v in x] for x in xs[i]],
              "expected": [[int(v) for v in y] for y in expected[i]]}
             for i, layer in enumerate(layers)]
    vectors = len(xs[0])
    sim, data = run_tb(build, TB_MODULE, run_dir, {
        "x_bits": layers[0].x_bits, "expected_cycles": want, "vectors": vectors,
        "ports": ports}, waves=waves)
    if data is None:
        return HnRun(build.simulator, style, want, (), (), (), sim, 0.0, _no_report(sim))
    rows = data["vectors"]
    return HnRun(build.simulator, style, want, tuple(r["cycles"] for r in rows),
                 tuple(r["mismatches"] for r in rows),
                 tuple(tuple(tuple(y) for y in r["y"]) for r in rows), sim, data["wall_s"],
                 None if len(rows) == vectors else "the testbench stopped early")


def random_inputs(k: int, count: int, seed: int, bits: int = 8) -> np.ndarray:
    """Seeded signed activations (count, k), the full range included."""
    rng = np.random.default_rng(seed)
    top = 2 ** (bits - 1) - 1
    xs = rng.integers(-top, top + 1, (count, k))
    xs[0, :] = top                    # extremes: every bit plane busy
    if count > 1:
        xs[1, :] = -top
    return xs


def build_ffn(spec: FfnSpec, simulator: str, build_dir: str | Path, *,
              waves: WaveFormat | bool | None = None) -> Build:
    """Generate a SwiGLU block (llmc.rtl.hn_ffn) and compile it."""
    build_dir = Path(build_dir)
    design = generate_ffn(spec)
    sources = design.write(build_dir / "rtl")
    return build_design(sources, design.top, simulator, build_dir / f"sim_{simulator}",
                        waves=waves)


def run_ffn(build: Build, spec: FfnSpec, xs: Sequence[Sequence[int]],
            hs: Sequence[Sequence[int]], ys: Sequence[Sequence[int]], run_dir: str | Path, *,
            waves: bool = False) -> HnRun:
    """Run the testbench on a SwiGLU block: y (and the intermediate h) of every
    x checked bit for bit, the cycles against `FfnSpec.cycles`."""
    ports = [{"x": "x", "y": "y", "n": spec.down.n, "inputs": [[int(v) for v in x] for x in xs],
              "expected": [[int(v) for v in y] for y in ys]},
             {"x": None, "y": "h", "n": spec.hidden, "bits": 8,
              "expected": [[int(v) for v in h] for h in hs]}]
    sim, data = run_tb(build, TB_MODULE, run_dir, {
        "x_bits": 8, "expected_cycles": spec.cycles(), "vectors": len(xs), "ports": ports},
        waves=waves)
    if data is None:
        return HnRun(build.simulator, "ffn", spec.cycles(), (), (), (), sim, 0.0,
                     _no_report(sim))
    rows = data["vectors"]
    return HnRun(build.simulator, "ffn", spec.cycles(), tuple(r["cycles"] for r in rows),
                 tuple(r["mismatches"] for r in rows),
                 tuple(tuple(tuple(y) for y in r["y"]) for r in rows), sim, data["wall_s"],
                 None if len(rows) == len(xs) else "the testbench stopped early")


def decode_schedule(spec: DecodeSpec) -> list[tuple[str, int]]:
    """The cycle model of a decode step (llmc.rtl.hn_ctrl): per controller step
    its edges (a unit: its own cycles + 2 for the start and the edge that sees
    done; a pass: one per element), then the edge that raises `done`."""
    rows = [(s.name, s.cycles + 2 if s.kind == "unit" else s.n) for s in ctrl_steps(spec)]
    return [*rows, ("done", 1)]


def decode_cycles(spec: DecodeSpec) -> int:
    """Rising edges from the one that samples `start` to `done` (the schedule's sum)."""
    return sum(c for _, c in decode_schedule(spec))


# A decode step is ~1,000 lines of Verilog per 500 weights; Verilator turns it into
# hundreds of C++ files whose -Os compile takes an hour on two cores: -O0 compiles
# several times faster, and a step is only ~10^4 cycles.
DECODE_BUILD_ARGS = {"verilator": ("-CFLAGS", "-O0"), "icarus": ()}


def build_decode(spec: DecodeSpec, simulator: str, build_dir: str | Path, *,
                 waves: WaveFormat | bool | None = None) -> Build:
    """Generate a decode step (llmc.rtl.hn_ctrl) into `build_dir/rtl` and compile it."""
    build_dir = Path(build_dir)
    design = generate_decode(spec)
    return build_design(design.write(build_dir / "rtl"), design.top, simulator,
                        build_dir / f"sim_{simulator}", waves=waves,
                        build_args=DECODE_BUILD_ARGS[simulator])


def run_decode(build: Build, spec: DecodeSpec, x: Sequence[int], kcs: Sequence[np.ndarray],
               vcs: Sequence[np.ndarray], pos: int, y: Sequence[int],
               hs: Sequence[Sequence[int]], run_dir: str | Path, *,
               waves: bool = False) -> HnRun:
    """Fill the attention buffers with the caches, run one decode step of the
    input row x at `pos`, and check y and every layer's h bit for bit and the
    cycles against `decode_cycles`."""
    want = decode_cycles(spec)
    ins = [{"name": "x", "bits": spec.in_bits, "values": [int(v) for v in x]},
           {"name": "pos", "bits": 0, "values": [int(pos)]}]
    for i, (k, v) in enumerate(zip(kcs, vcs, strict=True)):
        ins += [{"name": f"kc_{i}", "bits": 8, "values": np.asarray(k).reshape(-1).tolist()},
                {"name": f"vc_{i}", "bits": 8, "values": np.asarray(v).reshape(-1).tolist()}]
    outs = [{"name": "y", "bits": 32, "expected": [int(v) for v in y]}]
    outs += [{"name": f"h_{i}", "bits": 8, "expected": [int(v) for v in h]}
             for i, h in enumerate(hs)]
    sim, data = run_tb(build, "llmc.rtl.tb_ctrl", run_dir,
                       {"expected_cycles": want, "inputs": ins, "outputs": outs}, waves=waves)
    if data is None:
        return HnRun(build.simulator, "decode", want, (), (), (), sim, 0.0, _no_report(sim))
    return HnRun(build.simulator, "decode", want, (data["cycles"],), (data["mismatches"],),
                 (tuple(tuple(o) for o in data["outputs"]),), sim, data["wall_s"],
                 None if data["passed"] else f"first mismatch {data['first']}")
