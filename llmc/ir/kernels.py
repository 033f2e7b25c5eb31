"""Reading a graph's kernels from its ``fusion`` annotations.

`llmc.passes.fusion` decides which ops run together in one kernel and writes
each computing op's kernel id into attribute ``fusion``; this module only
reads those ids back, so the cost model, the simulator, the memory planner
and the backends see the same kernels without depending on the pass. A value
produced and consumed inside one kernel never goes to memory, and one read
by no op outside its kernel is not written either (`Kernel.internal`).
"""

from __future__ import annotations

from dataclasses import dataclass

from llmc.ir.alias import alias_root
from llmc.ir.graph import Graph, Node, Value
from llmc.ir.ops import get_op

# Op kinds that do no work and belong to no kernel: inputs, params and views.
NO_WORK = ("source", "view")


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


def annotations(graph: Graph) -> dict[Node, int] | None:
    """The graph's kernel ids, if every computing node has one (a pass that
    ran after `fuse` leaves new nodes without: the ids are then stale)."""
    work = [n for n in graph.nodes if get_op(n.op).kind not in NO_WORK]
    if not work or any("fusion" not in n.attrs for n in work):
        return None
    return {n: n.attrs["fusion"] for n in work}


def kernels(graph: Graph, plan: dict[Node, int] | None = None) -> list[Kernel]:
    """The kernels of `graph` under `plan` (node -> kernel id; default: the
    graph's ``fusion`` annotations when they are complete), in order of their
    first op. A computing node without an id is a kernel of its own.
    (`llmc.passes.fusion.planned_kernels` plans an unfused graph first.)"""
    plan = dict(plan if plan is not None else annotations(graph) or {})
    members: dict[int, list[Node]] = {}
    loose = max(plan.values(), default=-1) + 1
    for n in graph.nodes:
        if get_op(n.op).kind in NO_WORK:
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
