"""The planner's entry point: pick a method, respect an arena, verify."""

from __future__ import annotations

from collections.abc import Callable

from llmc.errors import UsageError
from llmc.passes.memplan.blocks import plan_blocks
from llmc.passes.memplan.check import check_plan
from llmc.passes.memplan.heuristics import best_fit, greedy_by_size
from llmc.passes.memplan.mip import solve_mip
from llmc.passes.memplan.problem import Plan, Problem, live_at, peak_step

METHODS = ("auto", "mip", "memo", "greedy", "bestfit")


def plan(
    problem: Problem,
    method: str = "auto",
    arena_bytes: int | None = None,
    time_limit_s: float = 30.0,
) -> Plan:
    """Plan ``problem`` and check the result; raise UsageError if it cannot fit.

    ``method``: ``"greedy"`` (TFLite greedy-by-size), ``"bestfit"``,
    ``"mip"`` (the MEMO MIP on the whole problem), ``"memo"`` (per-block MIP,
    reused, then the model; needs ``Buffer.block`` tags) or ``"auto"``
    (``"memo"`` when any buffer has a block tag, else ``"mip"``).
    ``arena_bytes``: the capacity to fit in; an arena below the lower bound
    is reported with the bytes missing and the tensors live at the peak step
    (the candidates to spill or recompute).
    """
    if method not in METHODS:
        raise UsageError(f"unknown memory-planning method {method!r}; use one of {METHODS}")
    if arena_bytes is not None:
        if not isinstance(arena_bytes, int) or isinstance(arena_bytes, bool) or arena_bytes < 0:
            raise UsageError(f"arena_bytes must be a non-negative integer, got {arena_bytes!r}")
        step, lb = peak_step(problem)
        if arena_bytes < lb:
            raise UsageError(
                f"memory plan infeasible: the arena of {arena_bytes} bytes is "
                f"{lb - arena_bytes} bytes short of the {lb} bytes live at step {step}; "
                f"{_spill_hint(problem, step)}"
            )
    if method == "auto":
        method = "memo" if problem.has_blocks else "mip"
    solvers: dict[str, Callable[[Problem], Plan]] = {
        "greedy": greedy_by_size,
        "bestfit": best_fit,
        "mip": lambda p: solve_mip(p, time_limit_s=time_limit_s),
        "memo": lambda p: plan_blocks(p, time_limit_s=time_limit_s),
    }
    result = solvers[method](problem)
    if arena_bytes is not None and result.arena_bytes > arena_bytes:
        step, _ = peak_step(problem)
        hint = "" if method in ("mip", "memo") else " (method='mip' may find a tighter plan)"
        raise UsageError(
            f"memory plan infeasible: the best {method} plan needs {result.arena_bytes} bytes, "
            f"{result.arena_bytes - arena_bytes} more than the arena of {arena_bytes}{hint}; "
            f"{_spill_hint(problem, step)}"
        )
    check_plan(problem, result, arena_bytes)
    return result


def _spill_hint(problem: Problem, step: int, shown: int = 8) -> str:
    live = live_at(problem, step)
    names = ", ".join(f"{b.name} ({b.size} B)" for b in live[:shown])
    more = f" and {len(live) - shown} more" if len(live) > shown else ""
    return (f"spill candidates (live at step {step}, largest first): {names}{more}; "
            "spill or recompute some of them, or enlarge the arena")
