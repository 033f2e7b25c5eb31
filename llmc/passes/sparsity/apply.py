"""Writing a SparsityPlan into the graph, and what it saves.

    linear(x, w[, b])  ->  sparse_linear(x, w.values, w.meta[, b])              2:4
                       ->  sparse_linear(x, w.values, w.indices, w.row_ptr[, b]) unstructured
                       ->  act_sparse_linear(x, w, w.act_threshold[, b])        act
The compressed tensors are new params named after the weight; the dense
weight param goes away when nothing else reads it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from llmc.errors import UsageError
from llmc.ir import dtypes
from llmc.ir.cost import graph_cost, node_cost, param_count
from llmc.ir.graph import Graph, Node, Value
from llmc.ir.ops import get_op
from llmc.ir.ops.sparse import compress_2_4, compress_csr, index_dtype, nnz_of
from llmc.ir.ops.tiled import naive_attention_cost
from llmc.ir.types import TensorType
from llmc.passes.rewrite import RewriteCtx, Rule, rewrite
from llmc.passes.sparsity.calibrate import Samples
from llmc.passes.sparsity.plan import SparsityPlan, plan_sparsity, weight_name
from llmc.passes.sparsity.spec import SparsitySpec, parse_sparsity_spec


def _compressed(ctx: RewriteCtx, name: str, w: TensorType, pruned: np.ndarray | None,
                spec: SparsitySpec) -> tuple[list[Value], float]:
    """(the compressed weight's param values, density) for weight `name`."""
    out, n_in = w.shape
    b = ctx.b
    if spec.pattern == "2:4":
        values, meta = (None, None) if pruned is None else compress_2_4(pruned)
        return [b.param(f"{name}.values", TensorType((out, n_in // 2), w.dtype), values),
                b.param(f"{name}.meta", TensorType((out, n_in // 4), dtypes.u4), meta)], 0.5
    if pruned is None:
        nnz, values, indices, row_ptr = nnz_of(out, n_in, 1 - spec.ratio), None, None, None
    else:
        values, indices, row_ptr = compress_csr(pruned)
        nnz = values.shape[0]
    return [b.param(f"{name}.values", TensorType((nnz,), w.dtype), values),
            b.param(f"{name}.indices", TensorType((nnz,), index_dtype(n_in)), indices),
            b.param(f"{name}.row_ptr", TensorType((out + 1,), dtypes.i32), row_ptr)], \
        nnz / (out * n_in)


def _weight_rule(plan: SparsityPlan) -> Rule:
    made: dict[str, tuple[list[Value], float]] = {}   # a weight read twice is compressed once

    def rule(node: Node, ctx: RewriteCtx) -> Value | None:
        name = weight_name(node) if node.op == "linear" else None
        if name is None or name not in plan.weights:
            return None
        if name not in made:
            made[name] = _compressed(ctx, name, node.inputs[1].type, plan.weights[name],
                                     plan.spec)
        tensors, density = made[name]
        attrs = {"pattern": plan.spec.pattern, "in_features": node.inputs[1].type.shape[1],
                 "density": density, "method": plan.spec.method}
        return ctx.b.add("sparse_linear", [node.inputs[0], *tensors, *node.inputs[2:]], attrs,
                         name=node.name, loc=node.loc).out()

    return rule


def _act_rule(plan: SparsityPlan) -> Rule:
    def rule(node: Node, ctx: RewriteCtx) -> Value | None:
        name = weight_name(node) if node.op == "linear" else None
        if name is None or name not in plan.thresholds:
            return None
        n_in = node.inputs[1].type.shape[1]
        tau = ctx.b.param(f"{name}.act_threshold", TensorType((n_in,), node.inputs[0].type.dtype),
                          plan.thresholds[name])
        x, w, *bias = node.inputs
        return ctx.b.add("act_sparse_linear", [x, w, tau, *bias],
                         {"sparsity": round(plan.act_sparsity[name], 6)},
                         name=node.name, loc=node.loc).out()

    return rule


def apply_plan(graph: Graph, plan: SparsityPlan) -> Graph:
    """The graph with the plan's weights compressed or thresholds inserted;
    linears the plan does not name are left alone."""
    chosen = plan.thresholds if plan.spec.kind == "act" else plan.weights
    if not graph.shape_only and any(v is None for v in chosen.values()):
        raise UsageError("a shape-only sparsity plan cannot be applied to a graph with weights")
    return rewrite(graph, [_act_rule(plan) if plan.spec.kind == "act" else _weight_rule(plan)])


def apply_sparsity(graph: Graph, spec: str | SparsitySpec,
                   calib: Samples | SparsityPlan | None = None) -> Graph:
    """Apply a --sparsity spec (see spec.py). `calib`: calibration inputs (a
    list of input lists for this graph; default: windows of the llmc corpus
    for prefill graphs), or the SparsityPlan made on another phase of the
    same model (e.g. prefill's plan, for the decode graph)."""
    return sparsify(graph, spec, calib)[0]


def sparsify(graph: Graph, spec: str | SparsitySpec,
             calib: Samples | SparsityPlan | None = None) -> tuple[Graph, SparsityPlan]:
    """apply_sparsity, also returning the plan (to reuse on the decode graph)."""
    parsed = parse_sparsity_spec(spec) if isinstance(spec, str) else spec
    if isinstance(calib, SparsityPlan):
        if calib.spec != parsed:
            raise UsageError(f"sparsity plan for {calib.spec} given with spec {parsed}")
        plan = calib
    else:
        plan = plan_sparsity(graph, parsed, calib)
    return apply_plan(graph, plan), plan


def work_saved(before: Graph, after: Graph) -> dict[str, Any]:
    """FLOPs, bytes moved and weight bytes before/after (registry costs), the
    fractions saved, and what was made sparse or tiled: for report.json."""
    cb, ca = graph_cost(before), graph_cost(after)
    wb, wa = param_count(before).nbytes, param_count(after).nbytes

    def saved(x: float, y: float) -> float:
        return round(1 - y / x, 6) if x else 0.0

    sparse = [n for n in after.nodes if n.op in ("sparse_linear", "act_sparse_linear")]
    # an attention, or the first key tile of a tiled one, with a sparse pattern
    heads = [n for n in after.nodes if n.op == "attention"
             or (n.op == "flash_step" and n.attrs["key_start"] == 0)]
    stream = [n for n in heads if any(k in n.attrs for k in ("window", "block_size"))]
    attn_after = [n for n in after.nodes if get_op(n.op).kind == "attention"]
    return {
        "flops_before": cb.flops, "flops_after": ca.flops,
        "flops_saved": saved(cb.flops, ca.flops),
        "bytes_before": cb.bytes, "bytes_after": ca.bytes,
        "bytes_saved": saved(cb.bytes, ca.bytes),
        "weight_bytes_before": wb, "weight_bytes_after": wa,
        "weight_bytes_saved": saved(wb, wa),
        "sparse_linears": sum(n.op == "sparse_linear" for n in sparse),
        "act_sparse_linears": sum(n.op == "act_sparse_linear" for n in sparse),
        "patterns": sorted({n.attrs["pattern"] for n in sparse if "pattern" in n.attrs}),
        "mean_density": round(float(np.mean([n.attrs["density"] for n in sparse
                                             if "density" in n.attrs])), 6)
        if any("density" in n.attrs for n in sparse) else None,
        "mean_act_sparsity": round(float(np.mean([n.attrs["sparsity"] for n in sparse
                                                  if "sparsity" in n.attrs])), 6)
        if any("sparsity" in n.attrs for n in sparse) else None,
        "sparse_attentions": len(stream),
        "tiled_attentions": sum(n.op == "flash_init" for n in after.nodes),
        # attention's HBM bytes: the standard (unfused, N^2 scores in HBM) form of the
        # attentions before, against the attention ops after (FlashAttention's IO analysis;
        # the untiled `attention` op's own cost is an ideal single pass)
        "attention_bytes_standard": sum(naive_attention_cost(n).bytes for n in before.nodes
                                        if n.op == "attention"),
        "attention_bytes_after": sum(node_cost(n).bytes for n in attn_after),
    }
