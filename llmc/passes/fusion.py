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
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from llmc.errors import IRError
from llmc.ir.alias import alias_root, layer_of
from llmc.ir.graph import Graph, Node, Value
from llmc.ir.ops import get_op
from llmc.passes.rewrite import annotate

_NO_WORK = ("source", "view")


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
        if get_op(n.op).kind in _NO_WORK:
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


def kernel_spans(graph: Graph) -> dict[Node, tuple[int, int]] | None:
    """(first, last) step of the kernel each node runs in, for a graph whose
    computing nodes all carry kernel ids (None otherwise): a kernel reads its
    inputs and writes its outputs anywhere in its span (after `fuse` the
    spans are contiguous, so kernels do not interleave)."""
    ids = annotations(graph)
    if ids is None:
        return None
    span: dict[int, tuple[int, int]] = {}
    for i, n in enumerate(graph.nodes):
        if n in ids:
            a, _ = span.get(ids[n], (i, i))
            span[ids[n]] = (a, i)
    return {n: span[k] for n, k in ids.items()}


@dataclass(frozen=True)
class Kernel:
    """One kernel: its ops in execution order and the traffic fusion saves."""

    id: int
    nodes: tuple[Node, ...]
    saved_bytes: int  # reads of in-kernel values, and writes of values read only inside
    internal: frozenset[Value]  # values that never leave the kernel (not written out)

    @property
    def anchor(self) -> Node:
        """The op the kernel is built around (its first op)."""
        return self.nodes[0]


def kernels(graph: Graph, plan: dict[Node, int] | None = None) -> list[Kernel]:
    """The kernels of `graph`: from its ``fusion`` annotations, else planned
    now (without changing the graph). A node without an id is a kernel of
    its own."""
    if plan is None:
        plan = annotations(graph) or plan_fusion(graph)
    members: dict[int, list[Node]] = {}
    loose = max(plan.values(), default=-1) + 1
    for n in graph.nodes:
        if get_op(n.op).kind in _NO_WORK:
            continue
        if n not in plan:
            plan[n], loose = loose, loose + 1
        members.setdefault(plan[n], []).append(n)
    outside: set[Value] = {alias_root(v) for v in graph.outputs}  # read beyond a kernel
    for n in graph.nodes:
        if n in plan:
            outside.update(alias_root(x) for x in n.inputs
                           if alias_root(x).node in plan and plan[alias_root(x).node] != plan[n])
    out = []
    for k in sorted(members, key=lambda k: graph.nodes.index(members[k][0])):
        inner = set(members[k])
        saved = 0
        read: set[Value] = set()
        for n in members[k]:
            for x in n.inputs:
                root = alias_root(x)
                if root.node in inner and root.node is not n:
                    saved += x.type.nbytes                 # read from registers
                    read.add(root)
        internal = frozenset(v for v in read if v not in outside)
        saved += sum(v.type.nbytes for v in internal)      # never written out
        out.append(Kernel(k, tuple(members[k]), saved, internal))
    return out


def annotations(graph: Graph) -> dict[Node, int] | None:
    """The graph's kernel ids, if every computing node has one (a pass that
    ran after `fuse` leaves new nodes without: the ids are then stale)."""
    work = [n for n in graph.nodes if get_op(n.op).kind not in _NO_WORK]
    if not work or any("fusion" not in n.attrs for n in work):
        return None
    return {n: n.attrs["fusion"] for n in work}
