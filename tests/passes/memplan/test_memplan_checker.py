"""The checker, and every method on hand-made adversarial cases."""

from __future__ import annotations

import pytest

from llmc.errors import IRError
from llmc.passes.memplan import Buffer, Plan, Problem, check_plan, lower_bound

B = Buffer

CASES = {
    "single": [B("only", 1000, 0, 0)],
    "nested": [B("outer", 640, 0, 9), B("mid", 320, 2, 7), B("inner", 128, 4, 5),
               B("late", 704, 8, 9)],
    "identical": [B(f"t{i}", 256, 0, 3) for i in range(5)],
    "identical_staggered": [B(f"t{i}", 256, i, i + 1) for i in range(6)],
    "huge_and_small": [B("huge", 1 << 20, 3, 5)] + [B(f"s{i}", 64 * (i % 3 + 1), i, i + 2)
                                                     for i in range(10)],
    "zero_length": [B("a", 128, 2, 2), B("b", 128, 2, 2), B("c", 64, 3, 3), B("d", 192, 1, 4)],
    "all_overlapping": [B(f"o{i}", 64 * (i + 1), 0, 5) for i in range(6)],
    "none_overlapping": [B(f"n{i}", 64 * (6 - i), i, i) for i in range(6)],
    "zero_size": [B("empty", 0, 0, 3), B("x", 64, 0, 3), B("y", 0, 1, 1)],
    "unaligned_sizes": [B("a", 1, 0, 1), B("b", 65, 1, 2), B("c", 127, 0, 2), B("d", 63, 2, 3)],
    # greedy-by-size and best-fit need 960 bytes here; the optimum is 768
    "greedy_trap": [B("b0", 384, 5, 8), B("b1", 320, 3, 5), B("b2", 256, 1, 2),
                    B("b3", 64, 4, 6), B("b4", 192, 1, 2), B("b5", 192, 2, 4)],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_method_passes_the_checker(case, plans_of):
    problem = Problem(CASES[case])
    plans = plans_of(problem)
    # every case here has an optimal plan that meets the lower bound
    assert plans["mip"].arena_bytes == lower_bound(problem), case
    assert plans["mip"].status == "optimal"


def test_greedy_trap_really_traps_greedy(plans_of):
    plans = plans_of(Problem(CASES["greedy_trap"]))
    assert plans["greedy"].arena_bytes == 960 and plans["bestfit"].arena_bytes == 960
    assert plans["mip"].arena_bytes == 768


def _plan(offsets: dict[str, int], arena: int) -> Plan:
    return Plan(offsets, arena, "hand", 0.0)


def test_overlap_names_both_buffers_and_steps():
    p = Problem([B("a", 128, 0, 4), B("b", 64, 3, 6)])
    with pytest.raises(IRError, match=r"'a'.*'b'.*bytes 64\.\.127.*steps 3\.\.4"):
        check_plan(p, _plan({"a": 0, "b": 64}, 128))
    check_plan(p, _plan({"a": 0, "b": 128}, 192))
    # not live together: sharing bytes is fine
    check_plan(Problem([B("a", 128, 0, 2), B("b", 64, 3, 6)]), _plan({"a": 0, "b": 0}, 128))


def test_misalignment_overflow_and_bookkeeping():
    p = Problem([B("a", 100, 0, 1), B("b", 64, 1, 2)], alignment=64)
    with pytest.raises(IRError, match="'b'.*offset 96 is not a multiple of the alignment 64"):
        check_plan(p, _plan({"a": 0, "b": 96}, 192))
    with pytest.raises(IRError, match="'b'.*past the arena of 160"):
        check_plan(p, _plan({"a": 0, "b": 128}, 160))
    with pytest.raises(IRError, match="needs 192 bytes but the arena has 150"):
        check_plan(p, _plan({"a": 0, "b": 128}, 192), arena_bytes=150)
    with pytest.raises(IRError, match="no offset.*'b'"):
        check_plan(p, _plan({"a": 0}, 128))
    with pytest.raises(IRError, match="unknown.*'c'"):
        check_plan(p, _plan({"a": 0, "b": 128, "c": 0}, 192))
    with pytest.raises(IRError, match="'a'.*not a non-negative integer"):
        check_plan(p, _plan({"a": -64, "b": 128}, 192))
