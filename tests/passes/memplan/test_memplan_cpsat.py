"""CP-SAT: optimality where greedy and CBC fall short, proofs, gaps, determinism."""

from __future__ import annotations

import json
import random
import warnings

import pytest

from llmc.passes.memplan import (
    Buffer,
    Problem,
    SolverTimeoutWarning,
    check_plan,
    greedy_by_size,
    lower_bound,
    plan,
    plan_to_json,
    solve_cpsat,
)
from llmc.passes.memplan import cpsat as cpsat_mod
from llmc.passes.memplan.heuristics import best_heuristic

TRAP = Problem([Buffer("b0", 384, 5, 8), Buffer("b1", 320, 3, 5), Buffer("b2", 256, 1, 2),
                Buffer("b3", 64, 4, 6), Buffer("b4", 192, 1, 2), Buffer("b5", 192, 2, 4)])


def random_problem(seed: int, n: int, density: int = 6) -> Problem:
    """Random lifetimes of 1-12 steps over n / density steps, sizes 64 B .. 4 KiB."""
    r = random.Random(seed)
    horizon = max(10, n // density)
    bufs = []
    for i in range(n):
        s = r.randint(0, horizon)
        bufs.append(Buffer(f"b{i}", r.randint(1, 64) * 64, s, s + r.randint(0, 11)))
    return Problem(bufs)


def test_cpsat_meets_the_bound_greedy_misses_and_says_so():
    assert greedy_by_size(TRAP).arena_bytes == 960
    p = solve_cpsat(TRAP)
    check_plan(TRAP, p)
    assert p.arena_bytes == 768 == lower_bound(TRAP)
    assert p.method == "cpsat" and p.optimal and p.gap == 0.0 and p.proved_bound == 768
    data = plan_to_json(TRAP, p, timing=False)
    assert data["method"] == "cpsat" and data["optimal"] is True and data["gap"] == 0.0


@pytest.mark.parametrize("seed,n", [(1, 120), (2, 200), (3, 300)])
def test_cpsat_proves_random_interval_instances_at_the_bound(seed: int, n: int):
    """The instances where CBC stops at its time limit 1-7 % above the bound."""
    prob = random_problem(seed, n)
    p = solve_cpsat(prob, time_limit_s=20)
    check_plan(prob, p)
    assert p.arena_bytes == lower_bound(prob) and p.optimal
    assert p.arena_bytes <= greedy_by_size(prob).arena_bytes


def test_cpsat_proves_an_optimum_above_the_live_bound():
    """Two 192 B buffers live together in banks of 256 B, each within one
    bank: the live bound (384 B) cannot be met; phase 1 proves that, phase 2
    finds and proves 448 B (the second buffer starts in the second bank)."""
    prob = Problem([Buffer("a", 192, 0, 1, bank="within"), Buffer("b", 192, 1, 2, bank="within"),
                    Buffer("c", 64, 0, 0)], bank_bytes=256)
    p = solve_cpsat(prob)
    check_plan(prob, p)
    assert lower_bound(prob) == 384
    assert p.arena_bytes == 448 and p.optimal and p.proved_bound == 448
    assert p.info["phases"][0]["status"] == "INFEASIBLE"


def test_identical_buffers_are_ordered_by_name():
    """Symmetry breaking: of interchangeable buffers the first name is lowest."""
    bufs = [Buffer(f"x{i}", 128, 0, 3) for i in (3, 1, 2)] + [Buffer("y", 320, 2, 5),
                                                              Buffer("z", 256, 4, 6)]
    prob = Problem(bufs)
    p = solve_cpsat(prob)
    check_plan(prob, p)
    assert p.offsets["x1"] < p.offsets["x2"] < p.offsets["x3"]


def test_same_problem_same_plan_json():
    """Deterministic: one worker, a fixed seed and a deterministic time limit."""
    prob = random_problem(7, 200)
    first = json.dumps(plan_to_json(prob, plan(prob, method="cpsat"), timing=False))
    second = json.dumps(plan_to_json(prob, plan(prob, method="cpsat"), timing=False))
    assert first == second


def test_time_out_keeps_the_best_plan_and_reports_the_gap(monkeypatch):
    """With no time for the search the greedy hint comes back, marked
    feasible, with its gap to the proved bound."""
    prob = random_problem(2, 200)
    greedy = best_heuristic(prob)
    assert greedy.arena_bytes > lower_bound(prob)
    monkeypatch.setattr(cpsat_mod, "DET_PER_S", 0.0)  # no deterministic time at all
    with pytest.warns(SolverTimeoutWarning, match="proved bound"):
        p = solve_cpsat(prob, time_limit_s=0.001)
    check_plan(prob, p)
    assert p.status == "feasible" and not p.optimal
    assert p.arena_bytes <= greedy.arena_bytes
    assert p.gap == pytest.approx(p.arena_bytes / p.proved_bound - 1) and p.gap > 0
    assert plan_to_json(prob, p)["gap"] == round(p.gap, 6)


def test_solver_failure_falls_back_to_the_greedy_plan(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("cp-sat exploded")

    prob = random_problem(2, 200)
    monkeypatch.setattr(cpsat_mod, "_search", boom)
    with pytest.warns(SolverTimeoutWarning, match="cp-sat exploded"):
        p = solve_cpsat(prob)
    check_plan(prob, p)
    assert p.info["error"] == "solver failed: cp-sat exploded" and not p.optimal
    assert p.arena_bytes == best_heuristic(prob).arena_bytes


def test_warm_start_is_never_lost():
    best = solve_cpsat(TRAP)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverTimeoutWarning)
        p = solve_cpsat(TRAP, time_limit_s=0, warm_start=best)
    check_plan(TRAP, p)
    assert p.arena_bytes == 768 and p.optimal  # at the bound: proved anyway


def test_a_search_cut_short_is_deterministic_too():
    """The limit is CP-SAT's deterministic time, so a run stopped by it ends
    with the same plan on every run (adversarial banks: no proof in time)."""
    r = random.Random(500)
    bufs = []
    for i in range(60):
        s, size = r.randint(0, 15), r.randint(1, 96) * 64
        bufs.append(Buffer(f"t{i}", size, s, s + r.randint(0, 11),
                           bank=r.choice(["within", None] if size > 4096 else
                                         ["within", "within", None, "start"])))
    prob = Problem(bufs, bank_bytes=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverTimeoutWarning)
        plans = [solve_cpsat(prob, time_limit_s=1.0) for _ in range(2)]
    assert plans[0].status == "feasible" and plans[0].gap > 0
    assert [json.dumps(plan_to_json(prob, p, timing=False)) for p in plans].count(
        json.dumps(plan_to_json(prob, plans[0], timing=False))) == 2
