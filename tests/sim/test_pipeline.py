"""The fold pipeline recurrence: hand-worked cases and numba == Python reference."""

from __future__ import annotations

import numpy as np
import pytest

from llmc.sim.pipeline import pipeline_reference, run_pipeline


def _run(buffers, load, store, lat_fold, cpb=1.0, latency=0.0, fn=run_pipeline):
    arr = lambda x: np.asarray(x, dtype=np.float64)  # noqa: E731
    return fn(arr(load), arr(store), arr(lat_fold), arr(lat_fold), buffers, cpb, latency)


def test_double_buffered_by_hand():
    # L0 [0,100) ; L1 [100,200) while fold 0 runs [100,150) ; S0 [200,210) ;
    # fold 1 [200,249) ; S1 [249,259)
    end, issue, done, *_ = _run(2, [100, 100], [10, 10], [50, 49])
    assert list(issue) == [100, 200] and list(done) == [150, 249]
    assert end == 259


def test_single_buffered_by_hand():
    # L0 [0,100) ; fold 0 [100,150) ; L1 [150,250) ; S0 [250,260) ; fold 1 [260,309) ; S1
    end, issue, done, *_ = _run(1, [100, 100], [10, 10], [50, 49])
    assert list(issue) == [100, 260]
    assert end == 319


def test_latency_is_paid_once_per_dependency():
    end, issue, *_ = _run(2, [10, 10, 10], [0, 0, 0], [100, 100, 99], latency=40)
    assert issue[0] == 50        # 10 bytes + 40 latency
    assert end == 50 + 299       # later loads hide behind compute


def test_free_memory_is_pure_compute():
    end, *_ = _run(2, [5, 6, 7], [1, 2, 3], [10, 10, 9], cpb=0.0)
    assert end == 29


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("buffers", [1, 2])
def test_numba_matches_reference(seed, buffers):
    rng = np.random.default_rng(seed)
    nfold = int(rng.integers(1, 60))
    load = rng.integers(0, 500, nfold) * (rng.random(nfold) < 0.8)
    store = rng.integers(0, 200, nfold) * (rng.random(nfold) < 0.5)
    lat_fold = rng.integers(1, 300, nfold).astype(float)
    interval = np.minimum(lat_fold, rng.integers(1, 300, nfold))
    args = [np.asarray(x, dtype=np.float64) for x in (load, store, lat_fold, interval)]
    cpb, latency = float(rng.random() * 3), float(rng.integers(0, 100))
    fast = run_pipeline(*args, buffers, cpb, latency)
    slow = pipeline_reference(*args, buffers, cpb, latency)
    assert fast[0] == pytest.approx(slow[0])
    for a, b in zip(fast[1:], slow[1:], strict=True):
        np.testing.assert_allclose(a, b)


def test_a_fused_graph_keeps_epilogue_values_on_chip() -> None:
    """Reading a fused graph, the epilogue ops' vector steps do the same work
    but stream only what crosses a kernel boundary."""
    from llmc import api
    from llmc.passes.fusion import fuse
    from llmc.sim.from_ir import schedule_from_graph
    from llmc.sim.steps import VectorStep

    g = api.trace("llama-tiny", "prefill", batch=1, seq_len=16, weights="meta").graph
    plain = [s for s in schedule_from_graph(g) if isinstance(s, VectorStep)]
    fused = [s for s in schedule_from_graph(fuse(g)) if isinstance(s, VectorStep)]
    assert sorted((s.name, s.elements) for s in plain) == sorted((s.name, s.elements)
                                                                 for s in fused)
    moved = lambda steps: sum(s.read_bytes + s.write_bytes for s in steps)  # noqa: E731
    assert moved(fused) < moved(plain)
    silu = next(s for s in fused if s.name.endswith("ffn:silu"))
    assert silu.read_bytes == 0 and silu.write_bytes == 0   # between the gate GEMM and the mul
