"""Memory plans from IR liveness, proven by running inside one arena."""

from __future__ import annotations

import numpy as np
import pytest

from llmc import api
from llmc.errors import LlmcError
from llmc.ir.arena import interpret_in_arena
from llmc.passes.memplan import check_plan, lower_bound, plan
from llmc.passes.memplan.liveness import liveness


@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_llmc_tiny_runs_bit_exact_in_mip_arena(phase: str) -> None:
    traced = api.trace("llmc-tiny", phase, batch=1, seq_len=32)
    live = liveness(traced.graph)
    p = plan(live.problem, method="mip")
    check_plan(live.problem, p)
    assert p.arena_bytes <= 1.01 * lower_bound(live.problem)
    got = interpret_in_arena(traced.graph, traced.inputs, p.offsets, p.arena_bytes)
    ref = api.interpret(traced.graph, traced.inputs)
    for g, r in zip(got, ref, strict=False):
        assert np.array_equal(g, r)


def test_overlapping_plan_is_caught() -> None:
    traced = api.trace("llama-tiny", "prefill", batch=1, seq_len=16, weights="random")
    live = liveness(traced.graph)
    everything_at_zero = {b.name: 0 for b in live.problem.buffers}
    size = max(b.size for b in live.problem.buffers)
    ref = api.interpret(traced.graph, traced.inputs)
    try:
        got = interpret_in_arena(traced.graph, traced.inputs, everything_at_zero, size)
    except LlmcError:
        return  # corrupted indices: caught as an error
    assert not all(np.array_equal(g, r) for g, r in zip(got, ref, strict=False))


def test_views_extend_their_base_lifetime() -> None:
    traced = api.trace("llama-tiny", "prefill", batch=1, seq_len=8, weights="random")
    live = liveness(traced.graph)
    names = {b.name for b in live.problem.buffers}
    ops = {n.name: n.op for n in traced.graph.nodes}
    assert not any(ops[n] in ("reshape", "permute", "slice", "expand") for n in names)
    blocks = {b.block for b in live.problem.buffers}
    assert {0, 1} <= blocks and None in blocks  # per-layer buffers and the residual stream
