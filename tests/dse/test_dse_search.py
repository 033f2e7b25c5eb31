"""The Pareto front, its hypervolume, and the NSGA-II search over a spec."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmc.dse.engines import LocalEngine
from llmc.dse.pareto import front, hypervolume, mark
from llmc.dse.run import run_sweep
from llmc.dse.spec import parse_spec

pytest.importorskip("optuna")


def test_front_is_three_objective() -> None:
    # (tokens/J, tokens/s, area): the last is beaten by the first on all three
    objs = [(10, 100, 1.0), (20, 50, 1.0), (5, 200, 3.0), (9, 90, 2.0)]
    assert front(objs) == [0, 1, 2]


def test_front_equals_the_definition_on_random_points() -> None:
    rng = np.random.default_rng(0)
    for _ in range(10):
        objs = [tuple(x) for x in rng.integers(1, 6, size=(150, 3)).astype(float)]
        m = np.array(objs) * [-1, -1, 1]                  # minimised
        brute = [i for i in range(len(m))
                 if not np.any(np.all(m <= m[i], axis=1) & np.any(m < m[i], axis=1))]
        assert front(objs) == brute


def test_front_is_per_model_and_skips_what_does_not_fit() -> None:
    def row(model: str, tpj: float, fits: bool = True) -> dict:
        return {"model": model, "tokens_per_j": tpj, "tokens_per_s": 1.0, "area_mm2": 1.0,
                "fits": fits, "error": None}

    rows = [row("a", 1), row("a", 2), row("a", 9, fits=False), row("b", 0.5)]
    assert mark(rows) == [1, 3]
    assert [r["pareto"] for r in rows] == [False, True, False, True]


def test_hypervolume_of_known_boxes() -> None:
    assert hypervolume(np.array([[0.0, 0.0, 0.0]])) == pytest.approx(1.0)
    assert hypervolume(np.array([[0.5, 0.5, 0.5]])) == pytest.approx(0.125)
    # two boxes 0.5 x 1 x 1 and 1 x 0.5 x 1 overlapping in 0.5 x 0.5 x 1
    assert hypervolume(np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]])) == pytest.approx(0.75)
    assert hypervolume(np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.5]])) == pytest.approx(0.25)


def test_search_finds_most_of_the_grids_front(tmp_path: Path) -> None:
    from llmc.dse.search import hypervolume_ratio, search

    spec = parse_spec({"sweep": {"prompt": 32, "output": 8},
                       "axes": {"model": "llama-tiny", "target": "npu",
                                "array": ["16x16", "32x32", "64x64", "128x128"],
                                "sram_mib": [1, 4, 16], "quant": ["int8", "int4"],
                                "batch": [1, 4, 16]}})
    run_sweep(spec, tmp_path / "grid", LocalEngine(2))
    out = search(spec, tmp_path / "search", LocalEngine(2), trials=24, seed=0)
    assert out.points == 24 and out.computed == 24        # its own directory: all new
    def rows(d: str) -> list[dict]:
        return [json.loads(x) for x in (tmp_path / d / "sweep.jsonl").read_text().splitlines()]

    hv = hypervolume_ratio(rows("grid"), rows("search"))
    assert 0.5 < hv["ratio"] <= 1.0 + 1e-9, hv
    # in the grid's directory every proposed point is already there
    again = search(spec, tmp_path / "grid", LocalEngine(2), trials=24, seed=0)
    assert (again.computed, again.reused) == (0, 24)
