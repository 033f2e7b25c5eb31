"""llmc.rtl: Verilog emission, hand-written blocks, a generated systolic GEMM
core, and a cocotb runner for Icarus and Verilator.

    from llmc.rtl import CoreConfig, GemmCase, build_gemm, core_config, run_gemm
    from llmc.hw.array import ArraySpec

    cases = [GemmCase(10, 9, 7, seed=1)]
    cfg = core_config(ArraySpec(4, 4), cases)         # buffers sized for the cases
    build = build_gemm(cfg, "verilator", "/tmp/b")    # generate + compile once
    run = run_gemm(build, cfg, cases, "/tmp/b/run")   # bit- and cycle-exact check
    assert run.passed, run.first_error

Modules: `emit` (typed Verilog-2005 emitter), `blocks` (the .v building
blocks), `config` (what a core is generated from), `array_os` / `gemm_core`
(the output-stationary generators) and `array_ws` / `gemm_core_ws` (the
weight-stationary ones, `ArraySpec(4, 4, "ws")`), `runner` (cocotb
build/run), `tb_gemm` (the testbench), `gemm` (check a core), `lint`, `synth`
(yosys), `tools` (finding simulators), `cli` (`llmc rtl`).

A core is a standalone synthesizable design: A and B are loaded through write
ports and C read back through a read port (the cycle contract is in
`gemm_core`'s docstring and `CoreConfig.load_cycles` / `start_to_done` /
`read_cycles`), it lints clean under `verilator --lint-only -Wall` with no
waivers, and yosys synthesises it whole (`synth.synth_core`).
"""

from llmc.rtl.config import CoreConfig
from llmc.rtl.design import Design
from llmc.rtl.gemm import CaseResult, GemmCase, GemmRun, build_gemm, core_config, run_gemm
from llmc.rtl.gemm_core import generate_core
from llmc.rtl.lint import LintError, check_lint, lint
from llmc.rtl.runner import (
    Build,
    SimRun,
    SimulationError,
    build_design,
    run_cocotb,
    run_test,
)
from llmc.rtl.tools import SIMULATORS, find_simulator

__all__ = [
    "SIMULATORS",
    "Build",
    "CaseResult",
    "CoreConfig",
    "Design",
    "GemmCase",
    "GemmRun",
    "LintError",
    "SimRun",
    "SimulationError",
    "build_design",
    "build_gemm",
    "check_lint",
    "core_config",
    "find_simulator",
    "generate_core",
    "lint",
    "run_cocotb",
    "run_gemm",
    "run_test",
]
