"""`llmc demo`, the README's main job, runs end to end and its checks hold."""

from __future__ import annotations

import shutil
from pathlib import Path

from llmc.cli import main


def test_demo_runs_and_every_check_passes(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["demo", "-o", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    for n in range(1, 8):
        assert f"== {n}. " in out
    assert "logits bit-identical to the plain interpreter" in out
    assert "DIFFERENT" not in out and "FAIL" not in out
    if shutil.which("iverilog"):
        assert "0 wrong outputs" in out and ": PASS" in out
    assert (tmp_path / "demo" / "llama-2-7b-a100" / "report.html").exists()
