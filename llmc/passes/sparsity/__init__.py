"""Weight and activation sparsity passes.

    apply_sparsity(graph, "2:4:sparsegpt", calib=None) -> Graph
    sparsify(graph, spec, calib) -> (Graph, SparsityPlan)   plan reusable on decode
    parse_sparsity_spec("0.5:wanda") -> SparsitySpec          (UsageError if malformed)
    work_saved(before, after) -> dict                         registry costs, for reports

`sparsity_stage` is the pass manager's `sparsity:<spec>`: the first phase it
meets (the prefill) plans the pruning, later phases reuse that plan.
"""

from typing import Any

from llmc.ir import Graph
from llmc.passes.sparsity.apply import apply_plan, apply_sparsity, sparsify, work_saved
from llmc.passes.sparsity.calibrate import default_calibration, run_with_hooks
from llmc.passes.sparsity.plan import (
    SparsityPlan,
    act_targets,
    plan_sparsity,
    weight_targets,
)
from llmc.passes.sparsity.spec import SparsitySpec, parse_sparsity_spec


def sparsity_stage(spec: str) -> Any:
    """The pipeline stage `sparsity:<spec>`: `stage(graph, ctx)`, planning on
    the first phase and reusing that plan (kept in `ctx.shared`) on the others."""
    parsed = parse_sparsity_spec(spec)
    key = f"sparsity:{spec}"

    def stage(graph: Graph, ctx: Any) -> Graph:
        g, plan = sparsify(graph, parsed, ctx.shared.get(key))
        ctx.shared.setdefault(key, plan)
        return g
    return stage


__all__ = ["SparsityPlan", "SparsitySpec", "act_targets", "apply_plan", "apply_sparsity",
           "default_calibration", "parse_sparsity_spec", "plan_sparsity", "run_with_hooks",
           "sparsify", "sparsity_stage", "weight_targets", "work_saved"]
