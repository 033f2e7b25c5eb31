"""Spec sweeps on the local engine: rows stream into DIR, a rerun computes
nothing twice, a torn or killed run resumes, the tables are the same bytes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmc.cli import main
from llmc.cli.sweep import rate_text
from llmc.costmodel.report import build_report
from llmc.dse.engines import LocalEngine
from llmc.dse.evaluate import evaluate_point
from llmc.dse.run import run_sweep
from llmc.dse.spec import grid, parse_spec
from llmc.dse.store import Store
from llmc.frontend.zoo.config import get_config
from tests.dse.conftest import TINY

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("sweep.csv", "sweep.jsonl", "pareto.png")


def _lines(d: Path) -> list[dict]:
    return [json.loads(x) for x in (d / "points.jsonl").read_text().splitlines()]


def test_rows_are_the_cost_models_figures(tiny) -> None:  # noqa: ANN001
    p = grid(tiny)[0]
    row = evaluate_point(p, tiny.devices[p["device"]])
    assert row["error"] is None and row["area_mm2"] > 0
    # the unmodified npu: the row equals the report of the npu target itself
    q = grid(parse_spec({**TINY, "axes": {"model": "llama-tiny", "target": "npu",
                                          "quant": "int8"}}))[0]
    r = evaluate_point(q, tiny.devices[q["device"]])
    rep = build_report(None, None, get_config("llama-tiny"), "npu", prompt=32, output=8,
                       quant="int8").to_json()["decode"]
    assert r["tokens_per_s"] == rep["tokens_per_s"]
    assert r["energy_j_per_token"] == rep["energy_j_per_token"]


def test_simulator_rows() -> None:
    s = parse_spec({"sweep": {"evaluate": "both", "prompt": 32, "output": 8},
                    "axes": {"model": "llama-tiny", "target": ["npu", "a100"],
                             "quant": "int8"}})
    npu, a100 = (evaluate_point(p, s.devices[p["device"]]) for p in grid(s))
    assert npu["sim_tokens_per_s"] > 0 and npu["sim_energy_j_per_token"] > 0 and not npu["error"]
    assert a100["tokens_per_s"] > 0 and "simulator: " in a100["error"]   # no array to simulate


def test_parallel_equals_serial_and_reruns_compute_nothing(tmp_path: Path, tiny) -> None:  # noqa: ANN001
    one = run_sweep(tiny, tmp_path / "a", LocalEngine(1))
    two = run_sweep(tiny, tmp_path / "b", LocalEngine(2), chunk=3)
    assert (one.computed, two.computed) == (16, 16)
    for name in TABLES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    again = run_sweep(tiny, tmp_path / "b", LocalEngine(2))
    assert (again.computed, again.reused) == (0, 16)
    assert len(_lines(tmp_path / "b")) == 16
    table = [json.loads(x) for x in (tmp_path / "a" / "sweep.jsonl").read_text().splitlines()]
    assert [r["hash"] for r in table] == [p["hash"] for p in grid(tiny)]
    assert any(r["pareto"] for r in table)


def test_a_torn_last_line_is_computed_again(tmp_path: Path, tiny) -> None:  # noqa: ANN001
    run_sweep(tiny, tmp_path / "a", LocalEngine(1))
    f = tmp_path / "a" / "points.jsonl"
    data = f.read_bytes().splitlines(keepends=True)
    f.write_bytes(b"".join(data[:10]) + data[10][:25])   # killed while writing row 11
    assert len(Store(tmp_path / "a").rows) == 10
    out = run_sweep(tiny, tmp_path / "a", LocalEngine(1))
    assert (out.computed, out.reused) == (6, 10)
    assert len(_lines(tmp_path / "a")) == 16


def test_a_grown_spec_computes_only_its_new_points(tmp_path: Path, tiny) -> None:  # noqa: ANN001
    run_sweep(tiny, tmp_path / "a", LocalEngine(1))
    bigger = parse_spec({**TINY, "axes": {**TINY["axes"], "batch": [1, 8, 16]}})
    out = run_sweep(bigger, tmp_path / "a", LocalEngine(1))
    assert (out.points, out.computed, out.reused) == (24, 8, 16)


def test_a_killed_sweep_resumes(tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text('[sweep]\nprompt = 32\noutput = 8\n[axes]\nmodel = "llama-tiny"\n'
                    'target = "npu"\narray = ["16x16", "32x32", "64x64"]\n'
                    'sram_mib = [1, 2, 4, 8]\nquant = ["int8", "int4"]\nbatch = [1, 2, 4, 8]\n')
    out = tmp_path / "o"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "llmc.cli", "sweep", str(spec), "-o",
                             str(out), "-j", "1", "--chunk", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        f = out / "points.jsonl"
        if f.is_file() and f.read_text().count("\n") >= 8:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = len(Store(out).rows)
    assert 8 <= kept < 96, kept                          # killed part-way through 96 points
    assert not (out / "sweep.csv").exists()              # no table from the killed run
    assert main(["sweep", str(spec), "-o", str(out), "-j", "2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["computed"] == 96 - kept and summary["run"]["reused"] == kept
    rows = _lines(out)
    assert len(rows) == 96 and len({r["hash"] for r in rows}) == 96


def test_flags_are_a_shorthand_for_a_spec(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["sweep", "--models", "llama-tiny", "--target", "npu,a100", "--quant",
                 "int8,int4", "--seq-len", "32", "--gen-tokens", "8", "--engine", "local",
                 "-j", "1", "-o", str(tmp_path / "o")]) == 0
    assert "4 computed" in capsys.readouterr().out
    table = (tmp_path / "o" / "sweep.csv").read_text().splitlines()
    assert len(table) == 5 and table[1].split(",")[2] == "npu"


@pytest.mark.parametrize("done, total, secs, text", [
    (0, 40, 0.0, "0/40 points"),
    (12, 40, 4.0, "12/40 points, 3.0 points/s, ETA 0:00:09"),
    (1000, 10000, 10.0, "1,000/10,000 points, 100.0 points/s, ETA 0:01:30"),
])
def test_progress_text(done: int, total: int, secs: float, text: str) -> None:
    assert rate_text(done, total, secs) == text


def _die_once(chunk: dict) -> list[dict]:
    """A task whose worker process dies the first time any chunk runs."""
    marker = Path(chunk["marker"])
    try:
        marker.touch(exist_ok=False)
    except FileExistsError:
        return [{"hash": str(chunk["i"])}]
    os._exit(1)


def test_a_dead_local_worker_is_replaced_and_its_chunks_rerun(tmp_path: Path) -> None:
    chunks = [{"i": i, "marker": str(tmp_path / "died")} for i in range(6)]
    got = [r["hash"] for rows in LocalEngine(2).run(chunks, _die_once) for r in rows]
    assert (tmp_path / "died").exists()
    assert sorted(got) == [str(i) for i in range(6)]       # each chunk's rows exactly once


def test_missing_ray_or_optuna_says_how_to_install(tmp_path: Path, monkeypatch, tiny) -> None:  # noqa: ANN001
    from llmc.dse.engines import import_ray
    from llmc.dse.search import search
    from llmc.errors import UsageError

    monkeypatch.setitem(sys.modules, "ray", None)        # as if not installed
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(UsageError, match=r"pip install 'llmc\[ray\]'"):
        import_ray()
    with pytest.raises(UsageError, match=r"pip install 'llmc\[search\]'"):
        search(tiny, tmp_path / "o", LocalEngine(1), trials=2)
