"""`llmc rtl gemm` / `llmc rtl synth`: outputs, atomic output directory, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llmc.cli import main
from llmc.hw.array import ArraySpec, compute_cycles
from llmc.rtl import tools as rtl_tools
from tests.rtl.rtl_helpers import FIRST

pytestmark = pytest.mark.rtl

# the selected simulator (LLMC_RTL_SIMULATORS); the command's default is auto
GEMM = ["rtl", "gemm", "--array", "2x3", "--m", "5", "--n", "4", "--k", "3", "--simulator", FIRST]


def _one_line_error(capsys: pytest.CaptureFixture[str], *fragments: str) -> None:
    err = capsys.readouterr().err
    assert err.startswith("llmc: error: ") and err.count("\n") == 1, err
    for f in fragments:
        assert f in err, err


def test_gemm_passes_and_prints_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main([*GEMM, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    want = compute_cycles(5, 4, 3, ArraySpec(2, 3))
    assert "PASS" in text and f"RTL {want}  monitor {want}  llmc sim gemm {want}" in text
    assert "device   edge-npu (overrides: array 2x3)" in text
    summary = json.loads((out / "llmc-rtl.json").read_text())
    assert summary["passed"] and summary["rtl_cycles"] == summary["predicted_cycles"] == want
    assert summary["device"] == "edge-npu" and summary["overrides"] == ["array 2x3"]
    assert (out / "rtl" / "llmc_gemm_os_2x3.v").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary left beside it
    # a second run replaces its own earlier output
    assert main([*GEMM, "--seed", "3", "-o", str(out)]) == 0
    assert json.loads((out / "llmc-rtl.json").read_text())["seed"] == 3


def test_gemm_verilator_json(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """--json: the summary is the whole of stdout, the simulator's own output
    included (capfd reads the file descriptor the tools inherit)."""
    out = tmp_path / "v"
    assert main([*GEMM, "--simulator", "verilator", "--json", "-o", str(out)]) == 0
    got = json.loads(capfd.readouterr().out)
    assert got["out"] == str(out) and got["passed"] and "Verilator" in got["simulator_version"]
    assert got == {"out": str(out), **json.loads((out / "llmc-rtl.json").read_text())}


def test_failing_testbench_shows_indices_and_waveform(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main([*GEMM, "--inject", "1,2", "--waves", "-o", str(out)]) == 1
    text = capsys.readouterr().out
    assert "FAIL" in text and "C[1][2]" in text
    wave = out / "run" / f"llmc_gemm_os_2x3.{'fst' if FIRST == 'icarus' else 'vcd'}"
    assert f"waveform: {wave}" in text and wave.is_file()


def test_gemm_weight_stationary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ws"
    assert main([*GEMM, "--dataflow", "ws", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    want = compute_cycles(5, 4, 3, ArraySpec(2, 3, "ws"))
    assert want == 2 * 2 * (2 * 2 + 3 + 5 - 2) - 1  # ceil(K/R) * ceil(N/C) folds of 2R+C+M-2
    assert "2x3 ws" in text and f"RTL {want}  monitor {want}  llmc sim gemm {want}" in text
    summary = json.loads((out / "llmc-rtl.json").read_text())
    assert summary["passed"] and summary["dataflow"] == "ws" and summary["rtl_cycles"] == want
    assert (out / "rtl" / "llmc_gemm_ws_2x3.v").is_file()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--array", "0x4"], ["array rows must be a positive integer"]),
        (["--array", "65x4"], ["array rows must be in 1..64"]),
        (["--array", "4x4", "--acc-bits", "12"], ["acc_bits must be in 16..64"]),
        (["--array", "4x4", "--in-bits", "17"], ["in_bits must be in 2..16"]),
        (["--array", "4x4", "--dataflow", "is"], ["output- and weight-stationary arrays only",
                                                   "--dataflow ws"]),
        (["--array", "4x4", "--dataflow", "xs"], ["unknown dataflow 'xs'"]),
        (["--array", "4x4", "--simulator", "vcs"], ["unknown simulator 'vcs'"]),
        (["--array", "4x4", "--inject", "9,9"], ["outside C"]),
    ],
)
def test_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                   args: list[str], fragments: list[str]) -> None:
    rc = main(["rtl", "gemm", "--m", "3", "--n", "3", "--k", "3", *args, "-o", str(tmp_path / "o")])
    assert rc == 2
    _one_line_error(capsys, *fragments)
    assert not (tmp_path / "o").exists()


def test_refuses_a_file_and_a_foreign_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "file"
    f.write_text("keep me")
    assert main([*GEMM, "-o", str(f)]) == 2
    _one_line_error(capsys, "not a directory")
    d = tmp_path / "dir"
    d.mkdir()
    (d / "notes.txt").write_text("keep me")
    assert main([*GEMM, "-o", str(d)]) == 2
    _one_line_error(capsys, "refusing to replace")
    assert f.read_text() == (d / "notes.txt").read_text() == "keep me"


def test_missing_simulator(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtl_tools.shutil, "which", lambda name: None)
    assert main([*GEMM, "--simulator", "icarus", "-o", str(tmp_path / "o")]) == 2
    _one_line_error(capsys, "iverilog", "apt-get install")
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys is not installed (optional)")
def test_synth_reports_cells(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rtl", "synth", "--array", "2x2"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("llmc_os_array_2x2: ") and "cells" in first and "flip-flops" in first


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_synth_core_reports_cells(capsys: pytest.CaptureFixture[str], dataflow: str) -> None:
    """The standalone core synthesises whole: array, controller and buffers."""
    try:
        rtl_tools.find_yosys()
    except rtl_tools.ToolMissingError:
        pytest.skip("yosys is not installed (optional)")
    assert main(["rtl", "synth", "--array", "2x2", "--dataflow", dataflow, "--core", "2x3x4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"llmc_gemm_{dataflow}_2x2: ") and "flip-flops" in lines[0]
    assert any(ln.split()[0] == "$_XOR_" for ln in lines[1:-1])  # cells by type
    assert lines[-1].startswith("core of edge-npu (overrides: array 2x2")


def test_synth_core_bad_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rtl", "synth", "--array", "2x2", "--core", "2x3"]) == 2
    _one_line_error(capsys, "--core must look like MxNxK")


def test_synth_without_yosys(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtl_tools.shutil, "which", lambda name: None)
    monkeypatch.setattr(rtl_tools, "_venv_script", lambda name: None)  # nor the wheel
    assert main(["rtl", "synth", "--array", "2x2"]) == 2
    _one_line_error(capsys, "yosys", "apt-get install")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ([], ["edge-npu's array is 128x128", "up to 64x64", "pass --array RxC"]),
        (["--target", "h100"], ["h100-sxm5 has no [array] for the RTL generator",
                                "--array RxC, e.g. --array 4x4"]),
        (["--target", "tpu9"], ["unknown device or target 'tpu9'"]),
    ],
)
def test_the_array_is_the_targets(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  args: list[str], fragments: list[str]) -> None:
    rc = main(["rtl", "gemm", "--m", "3", "--n", "3", "--k", "3", *args, "-o", str(tmp_path / "o")])
    assert rc == 2
    _one_line_error(capsys, *fragments)
    assert not (tmp_path / "o").exists()


def test_target_array_reads_the_device() -> None:
    from llmc.rtl.config import target_array

    spec, device, shown = target_array("npu", "4x4")
    assert (spec, device, shown) == (ArraySpec(4, 4, "os", 8, 32), "edge-npu", ("array 4x4",))
    spec, device, shown = target_array("spinnaker2")
    assert (spec.rows, spec.cols, spec.in_bits, device, shown) == (16, 4, 8, "spinnaker2", ())
    spec, _, shown = target_array("npu", "4x4", in_bits=4, acc_bits=16)
    assert (spec.in_bits, spec.acc_bits) == (4, 16)
    assert shown == ("array 4x4", "in_bits 4", "acc_bits 16")
    spec, device, shown = target_array("h100", "2x2")
    assert (spec, device, shown) == (ArraySpec(2, 2), "h100-sxm5", ("array 2x2",))
