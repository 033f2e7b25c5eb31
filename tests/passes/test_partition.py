"""Pipeline partitioning of a model's layers into stages."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest

from llmc import api
from llmc.cli import main
from llmc.errors import UsageError
from llmc.ir.cost import graph_cost, param_count
from llmc.ir.verify import verify
from llmc.passes.partition import (
    _split,
    annotate_stages,
    fewest_stages,
    layer_units,
    partition_layers,
)


def _brute(costs, sizes, stages, capacity):  # noqa: ANN001, ANN202
    """The least bottleneck over every contiguous split (None: none fits)."""
    n, best = len(costs), None
    for cuts in itertools.combinations(range(1, n), stages - 1):
        ends = [*cuts, n]
        start, worst, ok = 0, 0.0, True
        for e in ends:
            ok &= capacity is None or sum(sizes[start:e]) <= capacity
            worst = max(worst, sum(costs[start:e]))
            start = e
        if ok and (best is None or worst < best):
            best = worst
    return best


@pytest.mark.parametrize("seed", range(40))
def test_split_is_optimal(seed: int) -> None:
    r = random.Random(seed)
    n = r.randint(1, 8)
    costs = [float(r.randint(1, 20)) for _ in range(n)]
    sizes = [r.randint(1, 10) for _ in range(n)]
    stages = r.randint(1, n)
    capacity = r.choice([None, r.randint(5, 30)])
    want = _brute(costs, sizes, stages, capacity)
    got = _split(costs, sizes, stages, capacity)
    if want is None:
        assert got is None
        return
    assert got is not None and got[-1] == n and len(got) == stages
    start, worst = 0, 0.0
    for e in got:
        assert e > start and (capacity is None or sum(sizes[start:e]) <= capacity)
        worst = max(worst, sum(costs[start:e]))
        start = e
    assert worst == want


def test_stages_cover_the_model_and_run_it_unchanged() -> None:
    t = api.trace("llama-tiny", "prefill", batch=1, seq_len=16, weights="random")
    part = partition_layers(t.graph, 2)
    assert [(s.first_layer, s.last_layer) for s in part.stages] == [(0, 0), (1, 1)]
    assert sum(s.cost for s in part.stages) == graph_cost(t.graph).flops
    assert sum(s.weight_bytes for s in part.stages) == param_count(t.graph).nbytes
    staged = annotate_stages(t.graph, part)
    verify(staged)
    assert {n.attrs["stage"] for n in staged.nodes if "stage" in n.attrs} == {0, 1}
    want = api.interpret(t.graph, t.inputs)
    got = api.interpret(staged, t.inputs)
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))


def test_fewest_stages_is_fewest() -> None:
    g = api.trace("llama-2-7b", "decode", batch=1, seq_len=64, weights="meta").graph
    cap = 4 * 2**30
    part = fewest_stages(g, cap)
    assert all(s.weight_bytes <= cap for s in part.stages)
    with pytest.raises(UsageError, match="do not fit"):
        partition_layers(g, len(part.stages) - 1, cap)
    units = layer_units(g)
    assert [u.layer for u in units] == list(range(32))


def test_partition_refuses_what_cannot_be() -> None:
    g = api.trace("llama-tiny", "prefill", batch=1, seq_len=16, weights="meta").graph
    with pytest.raises(UsageError, match="into 3 stages"):
        partition_layers(g, 3)
    with pytest.raises(UsageError, match="alone has .* B more than a stage's"):
        fewest_stages(g, 1024)


def test_partition_cli(capsys) -> None:  # noqa: ANN001
    assert main(["partition", "llama-tiny", "--stages", "2", "--json", "--target", "a100",
                 "--seq-len", "16"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cost_unit"] == "s" and len(out["stages"]) == 2 and 0 < out["balance"] <= 1
    assert main(["partition", "llama-tiny", "--capacity", "1KiB"]) == 2
    assert "alone has" in capsys.readouterr().err


def test_stage_boundaries_carry_the_residual_stream() -> None:
    from llmc.frontend.zoo.config import get_config
    from llmc.passes.partition import boundary_bytes

    cfg = get_config("llama-tiny")
    g = api.trace("llama-tiny", "prefill", batch=1, seq_len=16, weights="meta").graph
    assert boundary_bytes(partition_layers(g, 2)) == [16 * cfg.hidden * 4]
    d = api.trace("llama-tiny", "decode", batch=2, seq_len=16, weights="meta").graph
    (b,) = boundary_bytes(partition_layers(d, 2))
    assert 2 * cfg.hidden * 4 <= b < 2 * 2 * cfg.hidden * 4     # the stream and the positions


def test_partition_pipeline_figures(capsys) -> None:  # noqa: ANN001
    assert main(["partition", "llama-2-7b", "--stages", "4", "--target", "a100",
                 "--phase", "decode", "--seq-len", "64", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    pipe = out["pipeline"]
    assert pipe["link"] and not pipe["stages_over_capacity"]
    assert pipe["boundary_bytes"] == [pipe["boundary_bytes"][0]] * 3
    assert pipe["latency_s"] == pytest.approx(sum(s["cost"] for s in out["stages"])
                                              + 3 * pipe["transfer_s"])
    assert pipe["items_per_s"] == pytest.approx(1 / max(out["bottleneck"], pipe["transfer_s"]))
