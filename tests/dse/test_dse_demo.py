"""The sweep section of the tour: short, and writes only under its root."""

from __future__ import annotations

from pathlib import Path

from llmc.dse.demo import demo


def test_demo_is_short_and_writes_under_root(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    demo(tmp_path / "root")
    out = capsys.readouterr().out.splitlines()
    assert 3 <= len(out) <= 12
    assert "36 computed" in out[1] and "0 computed, 36 reused" in out[1]
    assert "Pareto front" in out[2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]
