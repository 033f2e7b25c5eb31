"""Reading an IR graph as a simulator schedule.

Matrix work maps to GEMM steps on the array: every op that multiplies
matrices says which products it performs (`OpDef.gemms`: a linear's, whatever
its weight's format, attention's two products and the softmax between them,
routed experts, FlashAttention's key-tile steps). Everything else that moves
or computes maps to vector or DMA steps whose work and bytes come from the op
registry's cost rules, so the simulator and the cost model read the same
numbers.
"""

from __future__ import annotations

from llmc.ir.alias import alias_root
from llmc.ir.cost import node_cost
from llmc.ir.graph import Graph, Node, Value
from llmc.ir.kernels import annotations, kernels
from llmc.ir.ops import Gemm, get_op
from llmc.sim.steps import DmaStep, GemmStep, Step, VectorStep


def _label(node: Node) -> str:
    return f"{node.loc}:{node.op}" if node.loc else node.name


def _gemms(node: Node) -> list[Step]:
    """The GEMM steps (and the vector work between them) of an op that
    multiplies matrices, from the registry (`OpDef.gemms`); [] for any other
    op, or when this node has no product to run."""
    gemms = get_op(node.op).gemms
    if gemms is None:
        return []
    name, steps = _label(node), []
    for w in gemms(node):
        if isinstance(w, Gemm):
            if min(w.m, w.n, w.k, w.count) > 0:
                steps.append(GemmStep(w.m, w.n, w.k, name + w.label, count=w.count))
        elif w.elements > 0:
            steps.append(VectorStep(w.elements, w.ops_per_element, w.read_bytes,
                                    w.write_bytes, name + w.label))
    return steps


def _on_chip(graph: Graph) -> tuple[dict[Node, set[Node]], set[Value]]:
    """For a fused graph (llmc.passes.fusion annotations): each node's kernel
    mates, and the values that never leave their kernel. Empty otherwise."""
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
