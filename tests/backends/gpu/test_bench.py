"""bench/gpu_bench.py is ready to run unattended on a GPU: it imports cleanly,
lists its cases with the cost model's predictions in a dry run, and refuses
(one line, exit 2) on a machine without a GPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import gpu_bench


def test_dry_run_lists_every_goal_with_a_prediction(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert gpu_bench.main(["--dry-run", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "gpu_dryrun.json").read_text())
    groups = [r["group"] for r in res["rows"]]
    assert groups.count("attention") == 3 and groups.count("gemv") == 3
    assert {"copy", "gemm", "llama-1.1b"} <= set(groups)
    for r in res["rows"]:
        assert (r["predicted_s"] is None) == (r["group"] == "llama-1.1b")
        assert r["predicted_s"] is None or 0 < r["predicted_s"] < 1
    out = capsys.readouterr().out
    assert "prefill T=16384" in out and "gemv 14336x4096 B=1" in out
    assert (tmp_path / "gpu_dryrun.md").read_text().startswith("# gpu backend benchmark")


def test_without_a_gpu_it_refuses_in_one_line(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert gpu_bench.main(["--out", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "no CUDA GPU" in err
    assert not any(tmp_path.iterdir())


def test_cases_past_the_budget_are_skipped_and_every_case_is_flushed() -> None:
    now = [0.0]
    flushed: list[int] = []

    def measure(row: dict) -> dict:
        now[0] += 100.0                       # each case takes 100 s of the clock
        if row["name"] == "b":
            raise RuntimeError("out of memory\nmore")
        return {"x_s": 1.0}

    rows = [{"group": "g", "name": n} for n in "abcde"]
    gpu_bench.measure_rows(rows, measure, 250.0, lambda: flushed.append(1), lambda: now[0])
    assert [("x_s" in r, "error" in r, "skipped" in r) for r in rows] == [
        (True, False, False), (False, True, False), (True, False, False),
        (False, False, True), (False, False, True)]
    assert rows[1]["error"] == "RuntimeError: out of memory"
    assert rows[0]["wall_s"] == 100.0 and len(flushed) == 3
    assert "skipped time budget of 250 s spent" in gpu_bench.markdown(
        {"device": "h100-sxm5", "rows": [{**r, "predicted_s": None} for r in rows]})
