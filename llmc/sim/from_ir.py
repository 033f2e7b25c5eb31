"""Reading an IR graph as a simulator schedule.

Matrix work (linear, matmul, attention's two products, routed experts) maps to
GEMM steps on the array; everything else that moves or computes maps to vector
or DMA steps whose work and bytes come from the op registry's cost rules, so
the simulator and the cost model read the same numbers.
"""

from __future__ import annotations

import math

from llmc.ir.alias import alias_root
from llmc.ir.cost import node_cost
from llmc.ir.graph import Graph, Node, Value
from llmc.ir.ops import get_op
from llmc.ir.ops.nn import expected_active_experts
from llmc.sim.steps import DmaStep, GemmStep, Step, VectorStep


def _label(node: Node) -> str:
    return f"{node.loc}:{node.op}" if node.loc else node.name


def _gemms(node: Node) -> list[Step]:
    name = _label(node)
    if node.op == "linear":
        k = node.inputs[0].type.shape[-1]
        n = node.type.shape[-1]
        return [GemmStep(node.type.numel // n, n, k, name)]
    if node.op == "matmul":
        *batch, m, n = node.type.shape
        return [GemmStep(m, n, node.inputs[0].type.shape[-1], name, count=math.prod(batch))]
    if node.op == "attention":
        B, H, Tq, D = node.inputs[0].type.shape
        Tk = node.inputs[1].type.shape[2]
        heads = B * H
        return [GemmStep(Tq, Tk, D, f"{name}.qk", count=heads),
                VectorStep(heads * Tq * Tk, 5.0, name=f"{name}.softmax"),
                GemmStep(Tq, D, Tk, f"{name}.pv", count=heads)]
    if node.op == "moe_ffn":
        N, d = node.inputs[0].type.shape
        E, f = node.inputs[2].type.shape[:2]
        k = node.attrs["top_k"]
        active = max(1, round(expected_active_experts(N, E, k)))
        rows = max(1, math.ceil(N * k / active))  # tokens per routed expert, balanced
        return [GemmStep(N, E, d, f"{name}.router"),
                GemmStep(rows, 2 * f, d, f"{name}.gate_up", count=active),
                GemmStep(rows, d, f, f"{name}.down", count=active)]
    return []


def _on_chip(graph: Graph) -> tuple[dict[Node, set[Node]], set[Value]]:
    """For a fused graph (llmc.passes.fusion annotations): each node's kernel
    mates, and the values that never leave their kernel. Empty otherwise."""
    from llmc.passes.fusion import annotations, kernels

    if annotations(graph) is None:
        return {}, set()
    mates: dict[Node, set[Node]] = {}
    internal: set[Value] = set()
    for k in kernels(graph):
        members = set(k.nodes)
        mates.update(dict.fromkeys(k.nodes, members))
        internal |= k.internal
    return mates, internal


def schedule_from_graph(graph: Graph) -> list[Step]:
    """One step list for the whole graph, in execution order. In a fused
    graph an epilogue op reads its kernel mates' values from on-chip and
    writes nothing that stays inside the kernel: its vector step streams only
    the rest."""
    steps: list[Step] = []
    mates, internal = _on_chip(graph)
    for node in graph.nodes:
        kind = get_op(node.op).kind
        if kind in ("source", "view"):
            continue
        gemms = _gemms(node)
        if gemms:
            steps += gemms
            continue
        cost = node_cost(node)
        if cost.bytes == 0 and cost.flops == 0:
            continue
        if kind == "movement" or cost.flops == 0:
            steps.append(DmaStep(cost.bytes_read, cost.bytes_written, _label(node)))
        else:
            numel = max(1, sum(t.numel for t in node.types))
            read, written = cost.bytes_read, cost.bytes_written
            if node in mates:
                read -= sum(x.type.nbytes for x in node.inputs
                            if alias_root(x).node in mates[node] and alias_root(x).node is not node)
                written -= sum(t.nbytes for i, t in enumerate(node.types)
                               if Value(node, i) in internal)
            steps.append(VectorStep(numel, cost.flops / numel, max(0, read), max(0, written),
                                    _label(node)))
    return steps
