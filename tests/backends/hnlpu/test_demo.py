"""The hnlpu section of `llmc demo`."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmc.backends.hnlpu.demo import demo


@pytest.mark.rtl
def test_demo_simulates_a_layer_and_prints_the_system(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    demo(tmp_path)
    out = capsys.readouterr().out
    assert "4 vectors bit-exact vs the interpreter's int_linear, 9 cycles each" in out, out
    assert "decode.tokens_per_s" in out and "paper 249,960" in out
    assert "at 8192 tokens of context 62,490 tokens/s" in out
    assert len(out.splitlines()) <= 12
    assert [p.name for p in tmp_path.iterdir()] == ["hnlpu-layer"]
