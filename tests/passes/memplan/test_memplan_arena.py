"""Every method's plan runs bit-exact inside its arena: on llmc-tiny, with and
without bank rules, and with spills."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from llmc import api
from llmc.ir.arena import interpret_in_arena
from llmc.passes.fusion import fuse
from llmc.passes.memplan import (
    SolverTimeoutWarning,
    check_plan,
    lower_bound,
    plan,
    with_banks,
)
from llmc.passes.memplan.liveness import liveness
from llmc.passes.memplan.spill import anchored_peak
from tests.conftest import traced

METHODS = ("greedy", "bestfit", "mip", "memo", "cpsat", "auto")
BANK = 16 * 1024  # smaller than the MLP's tensors, so "within" binds


def _run(graph, t, p) -> None:  # noqa: ANN001
    spills = p.spills.segments if p.spills is not None else None
    got = interpret_in_arena(graph, t.inputs, p.offsets, p.arena_bytes, spills)
    want = api.interpret(graph, t.inputs)
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))


@pytest.mark.parametrize("banks", [None, "within", "start"])
@pytest.mark.parametrize("method", METHODS)
def test_each_methods_plan_runs_in_the_arena(method: str, banks: str | None):
    t = traced("llmc-tiny", "prefill", 1, 16, "auto")
    g = fuse(t.graph)
    prob = liveness(g).problem
    if banks is not None:
        prob = with_banks(prob, BANK, banks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverTimeoutWarning)
        p = plan(prob, method=method, time_limit_s=2)
    check_plan(prob, p)
    if banks is None:
        assert p.arena_bytes == lower_bound(prob) or method in ("greedy", "bestfit")
    _run(g, t, p)


def test_a_spill_plan_with_bank_rules_runs_in_the_arena():
    t = traced("llmc-tiny", "prefill", 1, 16, "auto")
    prob = with_banks(liveness(t.graph).problem, BANK, "within")
    cap = -(-anchored_peak(prob)[1] // BANK) * BANK  # the fewest whole banks any plan needs
    assert cap < lower_bound(prob)
    p = plan(prob, arena_bytes=cap, time_limit_s=10)
    check_plan(prob, p, cap)
    assert p.spills is not None and p.spills.moved_bytes > 0
    _run(t.graph, t, p)
