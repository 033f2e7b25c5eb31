"""The Ray engine on a real local cluster (ray.init(num_cpus=2)) and on a
two-node cluster on this machine (ray.cluster_utils.Cluster): the same
tables as the local engine, a worker node removed mid-sweep loses and
duplicates nothing, an unreachable address is one line and exit 2."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from llmc.cli import main
from llmc.dse.engines import LocalEngine, RayEngine
from llmc.dse.run import run_sweep
from llmc.dse.spec import parse_spec
from tests.dse.conftest import TINY

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[2]
TABLES = ("sweep.csv", "sweep.jsonl", "pareto.png")


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray's workers import llmc from this checkout, as an installed llmc would."""
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), path])))
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")


def _lines(d: Path) -> list[dict]:
    return [json.loads(x) for x in (d / "points.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_ray_tables_are_the_local_tables(tmp_path: Path, tiny, worker_env) -> None:  # noqa: ANN001
    local = run_sweep(tiny, tmp_path / "local", LocalEngine(1))
    engine = RayEngine(jobs=2)            # ray.init(address="local", num_cpus=2)
    try:
        assert ray.is_initialized() and engine.workers == 2
        out = run_sweep(tiny, tmp_path / "ray", engine, chunk=2)
        assert (local.computed, out.computed) == (16, 16)
        for name in TABLES:
            assert (tmp_path / "local" / name).read_bytes() == \
                (tmp_path / "ray" / name).read_bytes(), name
        again = run_sweep(tiny, tmp_path / "ray", engine)
        assert (again.computed, again.reused) == (0, 16)
    finally:
        engine.close()
    assert not ray.is_initialized()


@pytest.mark.slow
def test_a_node_removed_mid_sweep_loses_and_duplicates_nothing(tmp_path: Path,
                                                               worker_env) -> None:  # noqa: ANN001
    from ray.cluster_utils import Cluster

    spec = parse_spec({**TINY, "axes": {**TINY["axes"], "batch": [1, 2, 4, 8, 16]}})
    run_sweep(spec, tmp_path / "local", LocalEngine(1))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    keep = cluster.add_node(num_cpus=1)
    doomed = cluster.add_node(num_cpus=1)
    removed = []
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        engine = RayEngine()
        assert engine.workers == 2

        def step(done: int, total: int) -> None:
            if done >= 6 and not removed:
                cluster.remove_node(doomed)           # a worker node goes away
                removed.append(done)

        out = run_sweep(spec, tmp_path / "ray", engine, chunk=1, progress=step)
        assert removed and removed[0] < 40               # mid-sweep
        alive = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
        assert keep.node_id in alive and doomed.node_id not in alive
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert (out.points, out.computed, out.reused) == (40, 40, 0)
    rows = _lines(tmp_path / "ray")
    assert len(rows) == 40 and len({r["hash"] for r in rows}) == 40
    for name in TABLES:
        assert (tmp_path / "local" / name).read_bytes() == \
            (tmp_path / "ray" / name).read_bytes(), name


def test_unreachable_address_is_one_line(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    spec = tmp_path / "s.toml"
    spec.write_text('[axes]\nmodel = "llama-tiny"\ntarget = "npu"\n')
    t0 = time.time()
    for address in ("127.0.0.1:1", "nonsense"):
        assert main(["sweep", str(spec), "-o", str(tmp_path / "o"), "--engine", "ray",
                     "--address", address]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--address" in err or "no Ray cluster" in err, err
    assert time.time() - t0 < 15
    assert not (tmp_path / "o" / "sweep.csv").exists()
