"""The MIP: optimality on small cases, warm start, time-out, solver failure, determinism."""

from __future__ import annotations

import random
import warnings

import pulp
import pytest

from llmc.passes.memplan import (
    Buffer,
    Plan,
    Problem,
    SolverTimeoutWarning,
    check_plan,
    greedy_by_size,
    lower_bound,
    solve_mip,
)
from llmc.passes.memplan.heuristics import best_heuristic

TRAP = Problem([Buffer("b0", 384, 5, 8), Buffer("b1", 320, 3, 5), Buffer("b2", 256, 1, 2),
                Buffer("b3", 64, 4, 6), Buffer("b4", 192, 1, 2), Buffer("b5", 192, 2, 4)])


def random_problem(seed: int, n: int) -> Problem:
    r = random.Random(seed)
    bufs = []
    for i in range(n):
        s = r.randint(0, 30)
        e = s + r.randint(0, 8)
        bufs.append(Buffer(f"b{i}", r.randint(1, 50) * 64, s, e))
    return Problem(bufs)


def test_mip_beats_greedy_and_proves_it():
    p = solve_mip(TRAP)
    check_plan(TRAP, p)
    assert greedy_by_size(TRAP).arena_bytes == 960
    assert p.arena_bytes == 768 == lower_bound(TRAP) and p.status == "optimal"


def test_sizes_scaled_by_gcd_keep_alignment():
    prob = Problem([Buffer(b.name, b.size * 1000, b.start, b.end) for b in TRAP.buffers],
                   alignment=512)
    p = solve_mip(prob)
    check_plan(prob, p)
    assert all(o % 512 == 0 for o in p.offsets.values())
    assert p.arena_bytes == lower_bound(prob)


def test_warm_start_is_never_lost():
    best = solve_mip(TRAP)
    # no time at all: the given warm start comes back as it is, verified
    p = solve_mip(TRAP, time_limit_s=0, warm_start=best)
    check_plan(TRAP, p)
    assert p.arena_bytes == 768


def test_invalid_warm_start_is_ignored_with_a_warning():
    bad = Plan({b.name: 0 for b in TRAP.buffers}, 384, "hand", 0.0)
    with pytest.warns(UserWarning, match="invalid warm start"):
        p = solve_mip(TRAP, warm_start=bad)
    check_plan(TRAP, p)


def test_time_out_returns_best_plan_with_a_warning():
    prob = random_problem(0, 40)  # CBC cannot prove this one in well under a second
    greedy = greedy_by_size(prob)
    with pytest.warns(SolverTimeoutWarning):
        p = solve_mip(prob, time_limit_s=0.3)
    check_plan(prob, p)
    assert p.status == "feasible"
    assert lower_bound(prob) <= p.arena_bytes <= greedy.arena_bytes


def test_solver_failure_falls_back_to_greedy(monkeypatch):
    class Broken:
        def __init__(self, *a, **k):
            pass

        def actualSolve(self, *a, **k):
            raise pulp.PulpSolverError("cbc exploded")

    monkeypatch.setattr(pulp, "PULP_CBC_CMD", Broken)
    prob = random_problem(0, 40)
    with pytest.warns(SolverTimeoutWarning, match="cbc exploded"):
        p = solve_mip(prob)
    check_plan(prob, p)
    assert p.arena_bytes == best_heuristic(prob).arena_bytes


def test_same_input_same_plan():
    prob = random_problem(1, 25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverTimeoutWarning)
        a, b = solve_mip(prob, time_limit_s=10), solve_mip(prob, time_limit_s=10)
    assert a.offsets == b.offsets and a.arena_bytes == b.arena_bytes


def test_identical_buffers_are_ordered_by_name():
    prob = Problem([Buffer(f"t{i}", 128, 0, 2) for i in (3, 1, 2)] + [Buffer("w", 64, 1, 4)])
    p = solve_mip(prob)
    check_plan(prob, p)
    assert p.offsets["t1"] < p.offsets["t2"] < p.offsets["t3"]
    assert p.arena_bytes == lower_bound(prob)
