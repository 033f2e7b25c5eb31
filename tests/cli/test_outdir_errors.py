"""Every command that writes a directory refuses an output path it cannot
create — under a regular file, or where nothing may be written — with one
line on stderr and exit 2, before any work and without writing anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmc.cli import main

WRITERS = {
    "compile": ["compile", "llama-tiny", "--target", "a100", "--seq-len", "8"],
    "report": ["report", "llama-tiny", "--target", "a100"],
    "plan": ["plan", "llama-tiny", "--seq-len", "8"],
    "sweep": ["sweep", "--models", "llama-tiny", "--target", "a100", "--quant", "bf16"],
    "rtl": ["rtl", "gemm", "--array", "2x2", "--m", "2", "--n", "2", "--k", "2",
            "--simulator", "verilator"],
}


@pytest.mark.parametrize("cmd", WRITERS)
@pytest.mark.parametrize("where", ["under-a-file", "unwritable"])
def test_bad_output_path_is_one_line(cmd: str, where: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("keep")
    out = blocker / "sub" if where == "under-a-file" else Path("/proc/llmc-out")
    before = sorted(tmp_path.rglob("*"))
    assert main([*WRITERS[cmd], "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmc: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and str(out) in err
    assert sorted(tmp_path.rglob("*")) == before and blocker.read_text() == "keep"
