"""Negative tests: deliberately broken RTL must be caught by the testbench."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmc.hw.array import ArraySpec
from llmc.rtl import GemmCase, build_design, core_config, generate_core, run_gemm
from tests.rtl.rtl_helpers import FIRST

pytestmark = pytest.mark.rtl

SPEC = ArraySpec(3, 4)
CASE = GemmCase(6, 8, 5, seed=7)  # full last tile: its last write is the latest possible

FAULTS = {
    # an unsigned multiplier: wrong products for negative operands
    "unsigned-mac": ("llmc_mac_os.v", "$signed(a_in) * $signed(b_in)", "a_in * b_in"),
    # row skew one cycle too long: A and B meet one beat apart
    "skew-off-by-one": ("llmc_os_array_3x4.v", ".DEPTH (i + 1)", ".DEPTH (i + 2)"),
    # the controller gives up one cycle early: the last writes are missed
    "short-flush": ("llmc_gemm_os_3x4.v", "FLUSH = 3'd5", "FLUSH = 3'd4"),
}


SPEC_WS = ArraySpec(3, 4, "ws")  # CASE has 2 folds of K, so C accumulates once
FAULTS_WS = {
    # an unsigned multiplier in the weight-stationary PE
    "ws-unsigned-mac": ("llmc_mac_ws.v", "$signed(a_in) * $signed(w)", "a_in * w"),
    # the later folds of K overwrite C instead of adding to it
    "ws-no-accumulate": ("llmc_gemm_ws_3x4.v", "c_mem[c_addr[j*CA_BITS +: CA_BITS]]) + sum",
                         "{ACC_BITS{1'b0}}) + sum"),
    # the weights reach the PEs one cycle late: the first beat meets stale weights
    "ws-weight-late": ("llmc_ws_array_3x4.v", ".DEPTH (1)\n    ) u_w_edge",
                       ".DEPTH (2)\n    ) u_w_edge"),
    # the controller gives up one cycle early: the last sums are not written
    "ws-short-flush": ("llmc_gemm_ws_3x4.v", "flush <= 2'd2", "flush <= 2'd1"),
}


@pytest.mark.parametrize("fault", [*FAULTS, *FAULTS_WS])
def test_broken_design_is_caught(tmp_path: Path, fault: str) -> None:
    fname, old, new = FAULTS.get(fault) or FAULTS_WS[fault]
    cfg = core_config(SPEC_WS if fault in FAULTS_WS else SPEC, [CASE])
    sources = generate_core(cfg).write(tmp_path / "rtl")
    target = tmp_path / "rtl" / fname
    text = target.read_text()
    assert old in text, f"fault site {old!r} not found in {fname}"
    target.write_text(text.replace(old, new))
    build = build_design(sources, cfg.top, FIRST, tmp_path / "sim", waves=True)
    run = run_gemm(build, cfg, [CASE], tmp_path / "run", waves=True)
    assert not run.passed
    msg = run.first_error or ""
    assert "M=6 N=8 K=5" in msg and str(run.sim.waves) in msg
    if not fault.endswith("short-flush"):
        assert "!= numpy" in msg or "cycles" in msg
