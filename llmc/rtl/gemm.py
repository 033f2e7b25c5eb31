"""Check a generated GEMM core in simulation: bit-exact against numpy, cycle-exact
against `llmc.hw.array.compute_cycles`.

    cfg = core_config(ArraySpec(4, 4), [GemmCase(10, 9, 7)])
    build = build_gemm(cfg, "verilator", tmp / "build")          # once per core
    run = run_gemm(build, cfg, [GemmCase(10, 9, 7, seed=1)], tmp / "run")
    assert run.passed, run.first_error

One simulator run checks any number of cases on one build (the buffers are
sized for the largest). The testbench is `llmc.rtl.tb_gemm`; it gets its cases
through a JSON file and reports through another (`report.json` in the run
directory).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llmc.errors import UsageError
from llmc.hw.array import ArraySpec, compute_cycles
from llmc.rtl.config import MAX_GEMM_DIM, CoreConfig
from llmc.rtl.gemm_core import generate_core
from llmc.rtl.runner import Build, SimRun, WaveFormat, build_design, run_test

TB_MODULE = "llmc.rtl.tb_gemm"


@dataclass(frozen=True)
class GemmCase:
    """One GEMM to check: C[M×N] = A[M×K]·B[K×N] with operands from `seed`.

    `inject=(i, j)` makes the testbench expect a wrong C[i][j] (a negative
    test: the scoreboard must report it).
    """

    m: int
    n: int
    k: int
    seed: int = 0
    inject: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        for name in ("m", "n", "k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_GEMM_DIM:
                raise UsageError(f"{name.upper()} must be an integer in 1..{MAX_GEMM_DIM}, got {value!r}")
        if self.inject is not None and not (0 <= self.inject[0] < self.m and 0 <= self.inject[1] < self.n):
            raise UsageError(f"inject index {self.inject} is outside C ({self.m}x{self.n})")

    @property
    def shape(self) -> str:
        return f"M={self.m} N={self.n} K={self.k}"


@dataclass(frozen=True)
class CaseResult:
    """The testbench's verdict on one case."""

    case: GemmCase
    expected_cycles: int        # compute_cycles, the simulator's prediction
    rtl_cycles: int | None      # the core's own `cycles` register
    monitor_cycles: int | None  # measured by the testbench monitor (None if off)
    sim_cycles: int             # edges from the one sampling `start` to the one raising `done`
    wall_s: float               # wall time of those cycles
    passed: bool
    n_errors: int               # every error (outputs and cycles)
    output_errors: int          # wrong, missing, duplicate or stray elements of C
    errors: tuple[str, ...]     # the first few, earliest first
    load_cycles: int | None = None  # edges to load A and B through the ports
    read_cycles: int | None = None  # edges to read C back through the port


@dataclass(frozen=True)
class GemmRun:
    """All cases of one simulator run, and where its files are."""

    simulator: str
    cases: tuple[CaseResult, ...]
    sim: SimRun
    problem: str | None = None  # the run itself failed (crash, no report)

    @property
    def passed(self) -> bool:
        return self.problem is None and bool(self.cases) and all(c.passed for c in self.cases)

    @property
    def first_error(self) -> str | None:
        """The first thing that went wrong, with the case and the waveform path."""
        if self.problem:
            return self.problem
        for c in self.cases:
            if not c.passed:
                where = f"; waveform: {self.sim.waves}" if self.sim.waves else " (rerun with waves on for a waveform)"
                return f"{c.case.shape} seed={c.case.seed}: {c.errors[0]}{where}"
        return None


def core_config(spec: ArraySpec, cases: Sequence[GemmCase]) -> CoreConfig:
    """A core for `spec` whose buffers hold the largest of `cases`."""
    if not cases:
        raise UsageError("no GEMM cases given")
    cfg = CoreConfig(
        spec,
        m_max=max(c.m for c in cases),
        n_max=max(c.n for c in cases),
        k_max=max(c.k for c in cases),
    )
    for c in cases:
        cfg.check_shape(c.m, c.n, c.k)
    return cfg


def build_gemm(
    cfg: CoreConfig,
    simulator: str,
    build_dir: str | Path,
    *,
    waves: WaveFormat | bool | None = None,
) -> Build:
    """Generate the core into `build_dir/rtl` and compile it in `build_dir/sim_<simulator>`."""
    build_dir = Path(build_dir)
    sources = generate_core(cfg).write(build_dir / "rtl")
    # Verilator: keep the R·C PEs as calls to one PE model instead of inlining
    # each; on a 32x32 array this halves the C++ build and runs ~10% faster.
    args = ("-fno-inline",) if simulator == "verilator" else ()
    return build_design(sources, cfg.top, simulator, build_dir / f"sim_{simulator}",
                        waves=waves, build_args=args)


def write_tb_config(
    path: Path, cfg: CoreConfig, cases: Sequence[GemmCase], report: Path, *, monitor: bool,
    backdoor: bool = False,
) -> None:
    """The JSON the testbench reads: sizes, buffer layout, cases with predictions."""
    s = cfg.spec
    data = {
        "top": cfg.top,
        "rows": s.rows,
        "cols": s.cols,
        "in_bits": s.in_bits,
        "acc_bits": s.acc_bits,
        "ma_bits": cfg.ma_bits,
        "na_bits": cfg.na_bits,
        "ka_bits": cfg.ka_bits,
        "dataflow": s.dataflow.value,
        "fold_k": s.rows if cfg.ws else None,  # ws: C accumulates once per fold of K
        "monitor": monitor,
        "backdoor": backdoor,
        "report": os.path.relpath(report, path.parent),
        "cases": [
            {
                "m": c.m,
                "n": c.n,
                "k": c.k,
                "seed": c.seed,
                "inject": list(c.inject) if c.inject else None,
                "expected_cycles": compute_cycles(c.m, c.n, c.k, s),
                "expected_load_cycles": cfg.load_cycles(c.m, c.n, c.k),
                "expected_start_to_done": cfg.start_to_done(compute_cycles(c.m, c.n, c.k, s)),
                "expected_read_cycles": cfg.read_cycles(c.m, c.n),
            }
            for c in cases
        ],
    }
    path.write_text(json.dumps(data, indent=1) + "\n")


def run_gemm(
    build: Build,
    cfg: CoreConfig,
    cases: Sequence[GemmCase],
    run_dir: str | Path,
    *,
    monitor: bool = True,
    waves: bool = False,
    backdoor: bool = False,
) -> GemmRun:
    """Run the testbench on `build` for every case; the verdict per case.

    `backdoor=True` (benchmarks of big GEMMs) loads A and B and reads C through
    the hierarchy instead of the ports, so those phases cost no simulated cycles.
    """
    for c in cases:
        cfg.check_shape(c.m, c.n, c.k)
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    tb_json, report = run_dir / "tb.json", run_dir / "report.json"
    report.unlink(missing_ok=True)
    write_tb_config(tb_json, cfg, cases, report, monitor=monitor, backdoor=backdoor)
    sim = run_test(build, TB_MODULE, run_dir, extra_env={"LLMC_TB_CONFIG": str(tb_json)}, waves=waves)
    results = _read_report(report, cases, cfg)
    problem = None
    if len(results) < len(cases):
        problem = (
            f"the testbench stopped after {len(results)} of {len(cases)} cases; "
            f"see {sim.log}:\n{sim.log_tail()}"
        )
    elif all(r.passed for r in results) and not sim.passed:
        problem = f"the simulator run failed; see {sim.log}:\n{sim.log_tail()}"
    return GemmRun(build.simulator, tuple(results), sim, problem)


def _read_report(report: Path, cases: Sequence[GemmCase], cfg: CoreConfig) -> list[CaseResult]:
    if not report.is_file():
        return []
    rows = json.loads(report.read_text())["cases"]
    return [
        CaseResult(
            case=case,
            expected_cycles=compute_cycles(case.m, case.n, case.k, cfg.spec),
            rtl_cycles=r["rtl_cycles"],
            monitor_cycles=r["monitor_cycles"],
            sim_cycles=r["sim_cycles"],
            wall_s=r["wall_s"],
            passed=r["passed"],
            n_errors=r["n_errors"],
            output_errors=r["output_errors"],
            errors=tuple(r["errors"]),
            load_cycles=r.get("load_cycles"),
            read_cycles=r.get("read_cycles"),
        )
        for case, r in zip(cases, rows, strict=False)
    ]
