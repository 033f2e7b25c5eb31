"""Choosing the order of operations to lower peak memory (after OLLA).

OLLA (Steiner et al., "OLLA: Optimizing the Lifetime and Location of
Arrays to Reduce the Memory Usage of Neural Networks", 2022) solves one ILP
for both the order of operations and the placement of arrays. Here the two
are split: a greedy list scheduler picks a topological order, then any
placement method plans the resulting lifetimes.

The scheduler: among the ops whose inputs are all computed, run the one
that adds the fewest live bytes (its outputs minus the inputs it is the last
reader of); ties go to the op that comes first in a stable topological order
(ordered by node name). Inputs with no producer (placeholders) are thereby
loaded just before they are needed. The candidate orders are the stable one
and the scheduler's; the one with the lower peak of live bytes wins (the
stable one on ties).

The DAG: nodes are ops; a node's attribute ``size`` is the bytes of its one
output (named after the node), or ``outputs`` maps output names to bytes;
``output=True`` keeps its outputs live to the end; optional ``block`` tags
its outputs. An edge u -> v means v reads u's outputs (all of them, unless the
edge has ``buffers``: a list of the names it reads).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import networkx as nx

from llmc.errors import UsageError
from llmc.passes.memplan.problem import Buffer, Plan, Problem, lower_bound


def _outputs(dag: nx.DiGraph, n: Hashable) -> dict[str, int]:
    attrs = dag.nodes[n]
    if "outputs" in attrs:
        return dict(attrs["outputs"])
    return {str(n): int(attrs.get("size", 0))}


def _reads(dag: nx.DiGraph, u: Hashable, v: Hashable) -> list[str]:
    names = dag.edges[u, v].get("buffers")
    return list(names) if names is not None else list(_outputs(dag, u))


def stable_order(dag: nx.DiGraph) -> list[Hashable]:
    """A topological order that breaks ties by node name (deterministic)."""
    if not nx.is_directed_acyclic_graph(dag):
        raise UsageError("the op graph has a cycle; memory planning needs a DAG")
    return list(nx.lexicographical_topological_sort(dag, key=str))


def problem_from_dag(dag: nx.DiGraph, order: Sequence[Hashable] | None = None,
                     alignment: int = 64) -> Problem:
    """Buffers of ``dag`` with lifetimes from running it in ``order``.

    A buffer lives from the step of its producer to the step of its last
    reader (its producer's step if unread; the last step if ``output``).
    """
    order = list(order) if order is not None else stable_order(dag)
    if len(order) != dag.number_of_nodes() or set(order) != set(dag.nodes):
        raise UsageError("the order must list every op of the graph exactly once")
    step = {n: s for s, n in enumerate(order)}
    for u, v in dag.edges:
        if step[u] >= step[v]:
            raise UsageError(f"op {v!r} runs before its input {u!r}; the order is not topological")
    last_step = len(order) - 1
    bufs = []
    for n in order:
        outs = _outputs(dag, n)
        end = {name: step[n] for name in outs}
        for v in dag.successors(n):
            for name in _reads(dag, n, v):
                if name not in outs:
                    raise UsageError(f"edge {n!r} -> {v!r} reads {name!r}, not an output of {n!r}")
                end[name] = max(end[name], step[v])
        keep = bool(dag.nodes[n].get("output", False))
        block = dag.nodes[n].get("block")
        for name, size in outs.items():
            bufs.append(Buffer(name, size, step[n], last_step if keep else end[name], block))
    return Problem(bufs, alignment)


def memory_order(dag: nx.DiGraph) -> list[Hashable]:
    """The greedy list schedule of the module docstring."""
    rank = {n: i for i, n in enumerate(stable_order(dag))}
    waiting = {n: dag.in_degree(n) for n in dag.nodes}
    readers: dict[str, int] = {}
    for u, v in dag.edges:
        for name in _reads(dag, u, v):
            readers[name] = readers.get(name, 0) + 1
    ready = [n for n, k in waiting.items() if k == 0]
    order: list[Hashable] = []
    while ready:
        def delta(n: Hashable) -> tuple[int, int]:
            grow = sum(_outputs(dag, n).values())
            freed = sum(_outputs(dag, u)[name] for u in dag.predecessors(n)
                        for name in set(_reads(dag, u, n)) if readers[name] == 1)
            return grow - freed, rank[n]
        best = min(ready, key=delta)
        ready.remove(best)
        order.append(best)
        for u in dag.predecessors(best):
            for name in set(_reads(dag, u, best)):
                readers[name] -= 1
        for v in dag.successors(best):
            waiting[v] -= 1
            if waiting[v] == 0:
                ready.append(v)
    return order


def choose_order(dag: nx.DiGraph, alignment: int = 64) -> list[Hashable]:
    """The candidate order (stable or memory-greedy) with the lower peak."""
    cands = [stable_order(dag), memory_order(dag)]
    peaks = [lower_bound(problem_from_dag(dag, o, alignment)) for o in cands]
    return cands[min(range(len(cands)), key=lambda i: (peaks[i], i))]


def plan_dag(dag: nx.DiGraph, method: str = "auto", reorder: bool = True,
             arena_bytes: int | None = None, time_limit_s: float = 30.0,
             alignment: int = 64) -> tuple[list[Hashable], Problem, Plan]:
    """Order (OLLA-style if ``reorder``), derive lifetimes, and plan (see :func:`plan`)."""
    from llmc.passes.memplan.planner import plan

    order = choose_order(dag, alignment) if reorder else stable_order(dag)
    problem = problem_from_dag(dag, order, alignment)
    return order, problem, plan(problem, method, arena_bytes, time_limit_s)


__all__ = ["choose_order", "memory_order", "plan_dag", "problem_from_dag", "stable_order"]
