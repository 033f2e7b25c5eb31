"""Deciding what to prune: a `SparsityPlan` maps weight names to pruned
weights (weight sparsity) or to channel thresholds (activation sparsity).

Plans are keyed by param name, so a plan calibrated on the prefill graph
applies unchanged to the decode graph of the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from llmc.errors import UsageError
from llmc.ir.graph import Graph, Node
from llmc.passes.sparsity import prune
from llmc.passes.sparsity.calibrate import Samples, default_calibration, run_with_hooks
from llmc.passes.sparsity.spec import SparsitySpec

ACTIVATION_OPS = ("mul", "silu", "gelu", "relu")  # what feeds an FFN down projection


@dataclass
class SparsityPlan:
    """spec; weights: param name -> pruned dense weight (None: shape-only);
    thresholds: down-projection weight name -> channel thresholds (in,);
    act_sparsity: the zero fraction the thresholds give on the calibration data."""

    spec: SparsitySpec
    weights: dict[str, np.ndarray | None] = field(default_factory=dict)
    thresholds: dict[str, np.ndarray | None] = field(default_factory=dict)
    act_sparsity: dict[str, float] = field(default_factory=dict)


def weight_name(node: Node) -> str | None:
    """The param name of a linear's weight, or None."""
    w = node.inputs[1].node
    return w.attrs["name"] if w.op == "param" and not w.attrs.get("buffer") else None


def weight_targets(graph: Graph) -> list[Node]:
    """Linears whose weight is pruned: not an output head, not tied to an embedding."""
    outputs = {v.node for v in graph.outputs}
    users = graph.users()
    found = []
    for n in graph.nodes:
        if n.op != "linear" or weight_name(n) is None or n in outputs:
            continue
        if any(u.op != "linear" for u in users[n.inputs[1].node]):
            continue
        found.append(n)
    return found


def act_targets(graph: Graph) -> list[Node]:
    """FFN down projections: linears reading an activation (mul of a gated
    activation, or silu/gelu/relu directly)."""
    return [n for n in graph.nodes if n.op == "linear" and weight_name(n) is not None
            and n.inputs[0].node.op in ACTIVATION_OPS]


def plan_sparsity(graph: Graph, spec: SparsitySpec, calib: Samples | None = None,
                  n_calib: int = 16) -> SparsityPlan:
    """Choose the pruned weights or thresholds for `graph` (calibrating on
    `calib`, a list of input lists, when the method needs data)."""
    plan = SparsityPlan(spec)
    targets = act_targets(graph) if spec.kind == "act" else weight_targets(graph)
    if not targets:
        raise UsageError(f"--sparsity {spec}: graph @{graph.name} has no "
                         f"{'FFN down projection' if spec.kind == 'act' else 'linear layer'} "
                         "to sparsify")
    if spec.pattern == "2:4":
        bad = [f"{weight_name(n)} (in_features {n.inputs[1].type.shape[1]})" for n in targets
               if n.inputs[1].type.shape[1] % 4]
        if bad:
            raise UsageError(f"--sparsity 2:4 needs input widths divisible by 4; not: "
                             f"{', '.join(bad)}")
    if graph.shape_only:
        for n in targets:
            name = weight_name(n)
            if spec.kind == "act":
                plan.thresholds[name], plan.act_sparsity[name] = None, spec.ratio
            else:
                plan.weights[name] = None
        return plan
    if not spec.needs_calibration:
        for n in targets:
            name = weight_name(n)
            plan.weights[name] = prune.magnitude(graph.params[name], spec.pattern, spec.ratio)
        return plan
    samples = calib if calib is not None else default_calibration(graph, n_calib)
    hook = _act_hook(plan) if spec.kind == "act" else _prune_hook(plan)
    run_with_hooks(graph, samples, {n.name: hook for n in targets})
    return plan


def _tokens(xs: list[np.ndarray]) -> np.ndarray:
    """All calibration rows of a linear's input, (tokens, in) float64."""
    return np.concatenate([x.reshape(-1, x.shape[-1]) for x in xs]).astype(np.float64)


def _prune_hook(plan: SparsityPlan):  # noqa: ANN202
    spec = plan.spec

    def hook(node: Node, args: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
        name = weight_name(node)
        if name not in plan.weights:
            w = args[0][1]
            X = _tokens([a[0] for a in args])
            if spec.method == "wanda":
                pruned = prune.wanda(w, np.sqrt((X ** 2).sum(axis=0)), spec.pattern, spec.ratio)
            else:
                hessian = 2.0 / len(X) * (X.T @ X)
                pruned = prune.sparsegpt(w, hessian, spec.pattern, spec.ratio)
            plan.weights[name] = pruned
        return [[a[0], plan.weights[name], *a[2:]] for a in args]

    return hook


def _act_hook(plan: SparsityPlan):  # noqa: ANN202
    from llmc.ir.ops.sparse import threshold_channels

    def hook(node: Node, args: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
        name = weight_name(node)
        xs = [a[0] for a in args]
        if name not in plan.thresholds:
            mags = np.abs(_tokens(xs))
            # CHESS: per channel, the magnitude below which `ratio` of its values fall
            tau = np.quantile(mags, plan.spec.ratio, axis=0).astype(xs[0].dtype)
            plan.thresholds[name] = tau
            plan.act_sparsity[name] = float(np.mean(mags < tau))
        tau = plan.thresholds[name]
        return [[threshold_channels(a[0], tau), *a[1:]] for a in args]

    return hook
