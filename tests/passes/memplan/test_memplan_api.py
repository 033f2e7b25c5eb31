"""``plan``: methods, arena limits and the infeasible-arena report."""

from __future__ import annotations

import pytest

from llmc.errors import UsageError
from llmc.passes.memplan import Buffer, Problem, check_plan, greedy_by_size, lower_bound, plan

PROB = Problem([Buffer("act", 4096, 0, 3), Buffer("kv", 1024, 2, 6), Buffer("tmp", 512, 3, 4),
                Buffer("out", 2048, 5, 7)])


@pytest.mark.parametrize("method", ["auto", "cpsat", "mip", "memo", "greedy", "bestfit"])
def test_every_method(method):
    p = plan(PROB, method=method)
    check_plan(PROB, p)


def test_auto_takes_greedy_at_the_bound_else_solves(make_stack):
    """auto: a greedy plan that meets the lower bound is optimal as it is;
    otherwise MEMO on tagged layers, CP-SAT on the whole problem."""
    assert plan(make_stack(3)).method == "greedy"
    trap = Problem([Buffer("b0", 384, 5, 8), Buffer("b1", 320, 3, 5), Buffer("b2", 256, 1, 2),
                    Buffer("b3", 64, 4, 6), Buffer("b4", 192, 1, 2), Buffer("b5", 192, 2, 4)])
    assert greedy_by_size(trap).arena_bytes > lower_bound(trap)
    p = plan(trap)
    assert p.method == "cpsat" and p.optimal and p.arena_bytes == lower_bound(trap)
    tagged = Problem([Buffer(b.name, b.size, b.start, b.end, 0) for b in trap.buffers])
    assert plan(tagged).method == "memo"


def test_arena_below_lower_bound_names_missing_bytes_and_spill_candidates():
    lb = lower_bound(PROB)  # act + kv + tmp live at step 3
    with pytest.raises(UsageError) as e:
        plan(PROB, method="greedy", arena_bytes=lb - 100)
    msg = str(e.value)
    assert "100 bytes short" in msg and f"{lb} bytes live at step 3" in msg
    assert "act (4096 B), kv (1024 B), tmp (512 B)" in msg
    assert "out" not in msg.split("spill candidates")[1].split(";")[0]


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
            plan(prob, method="mip", arena_bytes=lower_bound(prob))


def test_bad_arguments():
    with pytest.raises(UsageError, match="unknown memory-planning method"):
        plan(PROB, method="magic")
    with pytest.raises(UsageError, match="arena_bytes"):
        plan(PROB, arena_bytes=-1)
