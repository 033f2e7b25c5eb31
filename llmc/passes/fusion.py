"""Kernel fusion: which ops run together in one kernel (the `fuse` pass).

Every computing op is given a kernel id (attribute ``fusion``, an
annotation the interpreter ignores). A kernel starts at an *anchor*: any op
that is not elementwise (a matmul, an attention, a norm, a reduction, a
gather); an elementwise op (or a concat) joins the kernel of one of its
inputs as an epilogue, so the value between them stays on chip:

- the input it joins is the largest one (the main data stream rather than a
  broadcast table), the earliest on ties;
- never if that would make a cycle between kernels: another input of the op
  depending on the kernel it joins (a residual add after a matmul that
  itself read the residual joins the matmul, not the residual's kernel);
- only with a kernel of its own layer (``loc`` "layers.N"), so a kernel
  never spans layers and every layer fuses alike;
- views (reshape, permute, slice, expand) are no work: a consumer reads
  through them, so an epilogue may follow a view of its producer.

The result is the kernel list backends emit (a GEMM with a SiLU or a
residual-add epilogue, a projection with its RoPE) and what the cost model
charges: a value produced and consumed inside one kernel never goes to
memory, and one read by no op outside its kernel is not written either.
Reading the kernels back from the annotations is the IR's
(`llmc.ir.kernels`); this pass decides them and rewrites the graph.
"""

from __future__ import annotations

import heapq

from llmc.errors import IRError
from llmc.ir.alias import alias_root, layer_of
from llmc.ir.graph import Graph, Node, Value
from llmc.ir.kernels import NO_WORK, Kernel, annotations, kernels
from llmc.ir.ops import get_op
from llmc.passes.rewrite import annotate


def fusible(node: Node) -> bool:
    """May join its input's kernel as an epilogue."""
    return get_op(node.op).kind == "elementwise" or node.op == "concat"


def plan_fusion(graph: Graph) -> dict[Node, int]:
    """Kernel id of every computing node (module docstring), ids in order."""
    kernel: dict[Node, int] = {}
    deps: dict[Node, int] = {}  # bit k: the node's value depends on kernel k
    anchor: dict[int, Node] = {}
    count = 0
    for n in graph.nodes:
        below = 0
        for x in n.inputs:
            below |= deps.get(x.node, 0)
        if get_op(n.op).kind in NO_WORK:
            deps[n] = below
            continue
        chosen = None
        if fusible(n):
            cands = sorted(((-x.type.nbytes, i, kernel[alias_root(x).node])
                            for i, x in enumerate(n.inputs) if alias_root(x).node in kernel))
            for _, _, k in cands:
                if layer_of(anchor[k]) != layer_of(n):
                    continue  # a kernel stays inside one layer (or outside all)
                others = (x for x in n.inputs if kernel.get(alias_root(x).node) != k)
                if not any(deps.get(x.node, 0) >> k & 1 for x in others):
                    chosen = k
                    break
        if chosen is None:
            chosen, count = count, count + 1
            anchor[chosen] = n
        kernel[n] = chosen
        deps[n] = below | 1 << chosen
    return kernel


def fuse(graph: Graph) -> Graph:
    """`graph` with every computing node annotated with its kernel id, and its
    nodes reordered so each kernel's ops are contiguous (`contiguous`)."""
    plan = plan_fusion(graph)
    return contiguous(annotate(graph, {n: {"fusion": k} for n, k in plan.items()}))


def contiguous(graph: Graph) -> Graph:
    """`graph` in a topological order where each kernel's nodes are adjacent,
    as a backend launches them: kernels (with the views of their values) are
    ordered by a topological sort of the kernel graph, earliest first node
    first; inputs and params stay in front, in their order."""
    pos = {n: i for i, n in enumerate(graph.nodes)}
    unit: dict[Node, int] = {}  # a kernel's units are -1 - id; other nodes their position
    for n in graph.nodes:
        if "fusion" in n.attrs:
            unit[n] = -1 - n.attrs["fusion"]
        elif get_op(n.op).kind == "view" and alias_root(Value(n, 0)).node in unit:
            unit[n] = unit[alias_root(Value(n, 0)).node]
        else:
            unit[n] = pos[n]
    members: dict[int, list[Node]] = {}
    for n in graph.nodes:
        members.setdefault(unit[n], []).append(n)
    succ: dict[int, set[int]] = {u: set() for u in members}
    indeg = dict.fromkeys(members, 0)
    for n in graph.nodes:
        for x in n.inputs:
            a, b = unit[x.node], unit[n]
            if a != b and b not in succ[a]:
                succ[a].add(b)
                indeg[b] += 1
    ready = [(pos[members[u][0]], u) for u, d in indeg.items() if d == 0]
    heapq.heapify(ready)
    order: list[Node] = []
    while ready:
        _, u = heapq.heappop(ready)
        order += members[u]
        for v in succ[u]:
            indeg[v] -= 1
            if indeg[v] == 0:
                heapq.heappush(ready, (pos[members[v][0]], v))
    if len(order) != len(graph.nodes):
        raise IRError(f"{graph.name}: the kernels depend on each other in a cycle")
    front = [n for n in graph.nodes if n.op in ("input", "param")]
    order = front + [n for n in order if n.op not in ("input", "param")]
    return graph if order == graph.nodes else Graph(graph.name, order, list(graph.outputs),
                                                    graph.params)


def planned_kernels(graph: Graph) -> list[Kernel]:
    """The kernels of `graph`: from its ``fusion`` annotations, else as `fuse`
    would plan them (without changing the graph), for costing an unfused graph
    as it would compile."""
    return kernels(graph, annotations(graph) or plan_fusion(graph))
