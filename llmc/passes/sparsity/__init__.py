"""Weight and activation sparsity passes.

    apply_sparsity(graph, "2:4:sparsegpt", calib=None) -> Graph
    sparsify(graph, spec, calib) -> (Graph, SparsityPlan)   plan reusable on decode
    parse_sparsity_spec("0.5:wanda") -> SparsitySpec          (UsageError if malformed)
    work_saved(before, after) -> dict                         registry costs, for reports

Registered passes (magnitude pruning, no data needed): `sparsity:2:4`,
`sparsity:0.5`.
"""

from llmc.passes.manager import register_pass
from llmc.passes.sparsity.apply import apply_plan, apply_sparsity, sparsify, work_saved
from llmc.passes.sparsity.calibrate import default_calibration, run_with_hooks
from llmc.passes.sparsity.plan import (
    SparsityPlan,
    act_targets,
    plan_sparsity,
    weight_targets,
)
from llmc.passes.sparsity.spec import SparsitySpec, parse_sparsity_spec

for _spec in ("2:4", "0.5"):
    register_pass(f"sparsity:{_spec}")(lambda graph, spec=_spec: apply_sparsity(graph, spec))

__all__ = ["SparsityPlan", "SparsitySpec", "act_targets", "apply_plan", "apply_sparsity",
           "default_calibration", "parse_sparsity_spec", "plan_sparsity", "run_with_hooks",
           "sparsify", "weight_targets", "work_saved"]
