"""``plan``: methods, arena limits and the infeasible-arena report."""

from __future__ import annotations

import pytest

from llmc.errors import UsageError
from llmc.passes.memplan import Buffer, Problem, check_plan, lower_bound, plan

PROB = Problem([Buffer("act", 4096, 0, 3), Buffer("kv", 1024, 2, 6), Buffer("tmp", 512, 3, 4),
                Buffer("out", 2048, 5, 7)])


@pytest.mark.parametrize("method", ["auto", "mip", "memo", "greedy", "bestfit"])
def test_every_method(method):
    p = plan(PROB, method=method)
    check_plan(PROB, p)


def test_auto_uses_blocks_when_tagged(make_stack):
    assert plan(make_stack(3)).method == "memo"
    assert plan(PROB).method == "mip"


def test_arena_below_lower_bound_names_missing_bytes_and_spill_candidates():
    lb = lower_bound(PROB)  # act + kv + tmp live at step 3
    with pytest.raises(UsageError) as e:
        plan(PROB, arena_bytes=lb - 100)
    msg = str(e.value)
    assert "100 bytes short" in msg and f"{lb} bytes live at step 3" in msg
    assert "act (4096 B), kv (1024 B), tmp (512 B)" in msg
    assert "out" not in msg.split("spill candidates")[1]


def test_exact_arena_fits_and_is_checked():
    p = plan(PROB, arena_bytes=lower_bound(PROB))
    check_plan(PROB, p, arena_bytes=lower_bound(PROB))


def test_arena_above_bound_but_below_any_plan():
    # a classic case where no plan meets the load bound: A and C each touch B's
    # neighbours, so the arena must exceed the max live bytes
    prob = Problem([Buffer("a", 64, 0, 1), Buffer("b", 128, 1, 2), Buffer("c", 64, 2, 3),
                    Buffer("d", 128, 3, 4), Buffer("e", 64, 4, 5), Buffer("f", 128, 5, 0 + 6),
                    Buffer("g", 64, 0, 6)])
    p = plan(prob, method="mip")
    if p.arena_bytes > lower_bound(prob):
        with pytest.raises(UsageError, match="more than the arena"):
            plan(prob, arena_bytes=lower_bound(prob))


def test_bad_arguments():
    with pytest.raises(UsageError, match="unknown memory-planning method"):
        plan(PROB, method="magic")
    with pytest.raises(UsageError, match="arena_bytes"):
        plan(PROB, arena_bytes=-1)
