"""Memory planning: give every activation buffer an offset in one arena.

Methods: TFLite-style greedy-by-size and best-fit (``heuristics``), the MEMO
MIP solved by CBC (``mip``), MEMO's per-layer decomposition (``blocks``) and
OLLA-style operator reordering (``olla``). ``check_plan`` verifies any plan;
``plan`` is the entry point that also checks an arena size.
"""

from llmc.passes.memplan.blocks import plan_blocks
from llmc.passes.memplan.check import check_plan
from llmc.passes.memplan.heuristics import best_fit, greedy_by_size
from llmc.passes.memplan.mip import SolverTimeoutWarning, solve_mip
from llmc.passes.memplan.olla import choose_order, plan_dag, problem_from_dag
from llmc.passes.memplan.planner import plan
from llmc.passes.memplan.plot import plan_png, plot_plan
from llmc.passes.memplan.problem import (
    Buffer,
    Plan,
    Problem,
    live_at,
    load_profile,
    lower_bound,
    peak_step,
    problem_from_intervals,
)
from llmc.passes.memplan.serialize import plan_to_json, write_plan_json

__all__ = [
    "Buffer", "Plan", "Problem", "SolverTimeoutWarning", "best_fit", "check_plan",
    "choose_order", "greedy_by_size", "live_at", "load_profile", "lower_bound", "peak_step",
    "plan", "plan_blocks", "plan_dag", "plan_png", "plan_to_json", "plot_plan", "problem_from_dag",
    "problem_from_intervals", "solve_mip", "write_plan_json",
]
