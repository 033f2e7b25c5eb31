"""The greedy spill plan (spill_greedy.py): valid stay by stay, the same
spill as CP-SAT's on a small case, the planner's choice for large problems,
and the refusal when a step's own reads and writes exceed the arena."""

from __future__ import annotations

import pytest

from llmc.errors import UsageError
from llmc.passes.memplan import Buffer, Problem, check_plan, plan, plan_to_json
from llmc.passes.memplan import planner as planner_mod
from llmc.passes.memplan.spill_greedy import plan_spills_greedy

# "long" is written at 0 and read at 6; at step 3 "mid" and "big" need the room
PROB = Problem([Buffer("long", 256, 0, 6), Buffer("a", 256, 0, 1), Buffer("mid", 512, 2, 4),
                Buffer("big", 256, 3, 3), Buffer("z", 128, 5, 6)])


def test_greedy_spills_the_buffer_needed_furthest_ahead():
    p = plan_spills_greedy(PROB, 768)
    check_plan(PROB, p, 768)
    assert p.method == "greedy-spill" and p.status == "heuristic" and p.arena_bytes <= 768
    assert set(p.spills.segments) == {"long"}
    assert [(s.start, s.end) for s in p.spills.segments["long"]] == [(0, 0), (6, 6)]
    assert p.spills.moved_bytes == 512
    assert plan_to_json(PROB, p)["spills"]["buffers"] == 1


def test_many_buffers_are_planned_greedily(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(planner_mod, "GREEDY_SPILL_OVER", 3)
    p = plan(PROB, arena_bytes=768)
    check_plan(PROB, p, 768)
    assert p.method == "greedy-spill"


def test_a_chain_of_reads_spills_every_gap_it_must():
    """x is read at steps 2, 5 and 8; a big buffer at 3..4 and another at 6..7
    leave room for x only while it is read."""
    prob = Problem([Buffer("x", 256, 0, 8, access=((2, 2), (5, 5))),
                    Buffer("b1", 512, 3, 4), Buffer("b2", 512, 6, 7)])
    p = plan_spills_greedy(prob, 512)
    check_plan(prob, p, 512)
    assert [(s.start, s.end) for s in p.spills.segments["x"]] == [(0, 2), (5, 5), (8, 8)]
    assert p.spills.moved_bytes == 256 * 3


def test_a_step_that_alone_exceeds_the_arena_is_refused():
    with pytest.raises(UsageError, match="no spill plan fits: at step 3 the tensors read and "
                                         "written need 768 bytes"):
        plan_spills_greedy(Problem([Buffer("mid", 512, 2, 4, access=((3, 3),)),
                                   Buffer("big", 256, 3, 3)]),
                           640)
