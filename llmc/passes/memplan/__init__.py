"""Memory planning: give every activation buffer an offset in one arena.

Methods: TFLite-style greedy-by-size and best-fit (``heuristics``), the
CP-SAT model (``cpsat``, the exact method ``auto`` uses), the MEMO MIP
solved by CBC (``mip``), MEMO's per-layer decomposition (``blocks``) and
OLLA-style operator reordering (``olla``). ``spill`` fits an arena below the
lower bound by moving the fewest bytes to DRAM and back; ``banks`` reads
bank rules from the hardware spec; ``load`` reads a user's buffer list.
``check_plan`` verifies any plan, spills included; ``plan`` is the entry
point that also checks an arena size.
"""

from llmc.passes.memplan.banks import bank_bytes_of, with_banks
from llmc.passes.memplan.blocks import plan_blocks
from llmc.passes.memplan.check import check_plan
from llmc.passes.memplan.cpsat import solve_cpsat
from llmc.passes.memplan.heuristics import best_fit, greedy_by_size
from llmc.passes.memplan.load import load_buffers
from llmc.passes.memplan.mip import SolverTimeoutWarning, solve_mip
from llmc.passes.memplan.olla import choose_order, plan_dag, problem_from_dag
from llmc.passes.memplan.planner import METHODS, plan
from llmc.passes.memplan.plot import plan_png, plot_plan
from llmc.passes.memplan.problem import (
    BANK_RULES,
    Buffer,
    Plan,
    Problem,
    Segment,
    Spills,
    live_at,
    load_profile,
    lower_bound,
    peak_step,
    problem_from_intervals,
)
from llmc.passes.memplan.serialize import plan_to_json, write_plan_json
from llmc.passes.memplan.spill import plan_spills

__all__ = [
    "BANK_RULES", "METHODS", "Buffer", "Plan", "Problem", "Segment", "SolverTimeoutWarning",
    "Spills", "bank_bytes_of", "best_fit", "check_plan", "choose_order", "greedy_by_size",
    "live_at", "load_buffers", "load_profile", "lower_bound", "peak_step", "plan",
    "plan_blocks", "plan_dag", "plan_png", "plan_spills", "plan_to_json", "plot_plan",
    "problem_from_dag", "problem_from_intervals", "solve_cpsat", "solve_mip", "with_banks",
    "write_plan_json",
]
