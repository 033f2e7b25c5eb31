"""The planner's entry point: pick a method, respect an arena, spill, verify."""

from __future__ import annotations

from collections.abc import Callable

from llmc.errors import UsageError
from llmc.passes.memplan.blocks import plan_blocks
from llmc.passes.memplan.check import check_plan
from llmc.passes.memplan.cpsat import solve_cpsat
from llmc.passes.memplan.heuristics import best_fit, greedy_by_size
from llmc.passes.memplan.mip import solve_mip
from llmc.passes.memplan.problem import Plan, Problem, live_at, lower_bound, peak_step
from llmc.passes.memplan.spill import SpillSearchTimeout, plan_spills

METHODS = ("auto", "cpsat", "mip", "memo", "greedy", "bestfit")
SPILLING = ("auto", "cpsat")  # the methods that spill when the arena is too small
GREEDY_SPILL_OVER = 1500  # buffers; above, spills are planned greedily (spill_greedy.py)


def plan(
    problem: Problem,
    method: str = "auto",
    arena_bytes: int | None = None,
    time_limit_s: float = 30.0,
) -> Plan:
    """Plan ``problem`` and check the result; raise UsageError if it cannot fit.

    ``method``: ``"greedy"`` (TFLite greedy-by-size), ``"bestfit"``,
    ``"cpsat"`` (the CP-SAT model, ``cpsat.py``), ``"mip"`` (the MEMO MIP on
    the whole problem, CBC), ``"memo"`` (per-block MIP, reused, then the
    model; needs ``Buffer.block`` tags) or ``"auto"``: greedy-by-size and
    best-fit, and CP-SAT when neither meets the lower bound.
    ``arena_bytes``: the capacity to fit in. When no plan fits it (it is
    below the lower bound, or the least arena is above it), ``auto`` and
    ``cpsat`` spill (``spill.py``: the fewest bytes moved to DRAM and
    back); the other methods report the bytes missing and the tensors live
    at the peak step.
    """
    if method not in METHODS:
        raise UsageError(f"unknown memory-planning method {method!r}; use one of {METHODS}")
    if arena_bytes is not None:
        if not isinstance(arena_bytes, int) or isinstance(arena_bytes, bool) or arena_bytes < 0:
            raise UsageError(f"arena_bytes must be a non-negative integer, got {arena_bytes!r}")
        step, lb = peak_step(problem)
        if arena_bytes < lb:
            if method in SPILLING:
                return _spill(problem, arena_bytes, time_limit_s)
            raise UsageError(
                f"memory plan infeasible: the arena of {arena_bytes} bytes is "
                f"{lb - arena_bytes} bytes short of the {lb} bytes live at step {step}; "
                f"{_spill_hint(problem, step)}; method 'cpsat' or 'auto' plans spills"
            )
    result = _solve(problem, method, time_limit_s)
    if arena_bytes is not None and result.arena_bytes > arena_bytes:
        if method in SPILLING:
            return _spill(problem, arena_bytes, time_limit_s)
        step, _ = peak_step(problem)
        raise UsageError(
            f"memory plan infeasible: the best {method} plan needs {result.arena_bytes} bytes, "
            f"{result.arena_bytes - arena_bytes} more than the arena of {arena_bytes} "
            f"(method 'cpsat' finds the least arena, and spills); "
            f"{_spill_hint(problem, step)}"
        )
    check_plan(problem, result, arena_bytes)
    return result


def _solve(problem: Problem, method: str, time_limit_s: float) -> Plan:
    if method == "auto":
        return _auto(problem, time_limit_s)
    solvers: dict[str, Callable[[Problem], Plan]] = {
        "greedy": greedy_by_size,
        "bestfit": best_fit,
        "cpsat": lambda p: solve_cpsat(p, time_limit_s=time_limit_s),
        "mip": lambda p: solve_mip(p, time_limit_s=time_limit_s),
        "memo": lambda p: plan_blocks(p, time_limit_s=time_limit_s),
    }
    return solvers[method](problem)


def _auto(problem: Problem, time_limit_s: float) -> Plan:
    """Greedy-by-size, then best-fit; when neither meets the lower bound, the
    MEMO decomposition on a problem of tagged layers (fast on deep stacks),
    then CP-SAT on the whole problem from the best plan so far."""
    lb = lower_bound(problem)
    for fn in (greedy_by_size, best_fit):
        p = fn(problem)
        if p.arena_bytes <= lb:
            return p
    warm = None
    if problem.has_blocks and not problem.has_rules:
        warm = plan_blocks(problem, time_limit_s=time_limit_s / 2)
        if warm.arena_bytes <= lb:
            return warm
        time_limit_s /= 2
    return solve_cpsat(problem, time_limit_s=time_limit_s, warm_start=warm)


def _spill(problem: Problem, arena_bytes: int, time_limit_s: float) -> Plan:
    """CP-SAT's spill plan, or on a problem too large for it (more than
    GREEDY_SPILL_OVER buffers, or none found in time) the greedy one."""
    from llmc.passes.memplan.spill_greedy import plan_spills_greedy

    if len(problem.buffers) > GREEDY_SPILL_OVER:
        result = plan_spills_greedy(problem, arena_bytes)
    else:
        try:
            result = plan_spills(problem, arena_bytes, time_limit_s)
        except SpillSearchTimeout:
            result = plan_spills_greedy(problem, arena_bytes)
    check_plan(problem, result, arena_bytes)
    return result


def _spill_hint(problem: Problem, step: int, shown: int = 8) -> str:
    live = live_at(problem, step)
    names = ", ".join(f"{b.name} ({b.size} B)" for b in live[:shown])
    more = f" and {len(live) - shown} more" if len(live) > shown else ""
    return (f"spill candidates (live at step {step}, largest first): {names}{more}; "
            "spill or recompute some of them, or enlarge the arena")
