"""llmc sweep: many cost-model reports in parallel, and their Pareto fronts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmc.cli import main
from llmc.costmodel.report import build_report
from llmc.costmodel.sweep import Point, Shape, pareto, points, sweep
from llmc.errors import UsageError
from llmc.frontend.zoo.config import get_config

SHAPE = Shape(prompt=512, output=64, context=None)


def test_rows_are_the_reports_in_product_order() -> None:
    pts = points(["llama-2-7b"], ["a100", "npu"], ["bf16", "int4"], [1, 8], [1])
    rows = sweep(pts, SHAPE, jobs=2)
    assert rows == sweep(pts, SHAPE, jobs=1)                       # parallel = serial
    assert [(r["target"], r["quant"], r["batch"]) for r in rows] == [
        (p.target, p.quant, p.batch) for p in pts]
    cfg = get_config("llama-2-7b")
    for r, p in zip(rows, pts, strict=True):
        rep = build_report(None, None, cfg, p.target, batch=p.batch, prompt=512, output=64,
                           quant=p.quant)
        assert r["fits"] == rep.memory.fits
        if r["fits"]:
            assert r["tokens_per_s"] == rep.to_json()["decode"]["tokens_per_s"]
    npu_bf16 = rows[4]
    assert npu_bf16["target"] == "npu" and not npu_bf16["fits"]
    assert npu_bf16["missing_bytes"] > 0


def test_pareto_front_is_per_model() -> None:
    def row(model: str, tps: float, j: float, fits: bool = True) -> dict:
        return {"model": model, "tokens_per_s": tps, "energy_j_per_token": j, "fits": fits}

    rows = [row("a", 100, 1.0), row("a", 50, 0.5), row("a", 40, 0.6),   # (40, .6) dominated
            row("a", 500, 0.1, fits=False), row("b", 10, 5.0)]          # b alone: on its front
    assert pareto(rows) == [0, 1, 4]


def test_bad_points_are_refused_before_running() -> None:
    with pytest.raises(UsageError, match="tpu"):
        points(["llama-2-7b"], ["tpu"], [None], [1], [1])
    with pytest.raises(UsageError, match="--batch"):
        points(["llama-2-7b"], ["a100"], [None], [0], [1])


def test_a_point_the_model_cannot_run_is_a_row() -> None:
    (r,) = sweep([Point("llama-2-7b", "a100", None, 1, 3)], SHAPE)
    assert not r["fits"] and "does not divide" in r["error"]


def test_sweep_cli_writes_the_same_bytes_twice(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    args = ["sweep", "--models", "llama-2-7b,mistral-7b", "--target", "a100,h100",
            "--quant", "bf16,int8", "--batch", "1,4", "--seq-len", "256", "-j", "2"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 0
    assert main([*args, "-o", str(tmp_path / "b")]) == 0
    for name in ("sweep.json", "sweep.csv", "sweep.md", "sweep.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    data = json.loads((tmp_path / "a" / "sweep.json").read_text())
    assert len(data["rows"]) == 16 and any(r["pareto"] for r in data["rows"])
    assert "★" in capsys.readouterr().out
    assert main(["sweep", "--models", "llama-2-7b", "--target", "a100", "--batch", "x"]) == 2
    assert "--batch" in capsys.readouterr().err
