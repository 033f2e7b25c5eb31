"""OLLA-style ordering: a topological order with a lower peak, then a plan."""

from __future__ import annotations

import networkx as nx
import pytest

from llmc.errors import UsageError
from llmc.passes.memplan import check_plan, choose_order, lower_bound, plan_dag, problem_from_dag
from llmc.passes.memplan.olla import memory_order, stable_order


def loads_then_uses(n: int = 4) -> nx.DiGraph:
    """Big loads each read by one small op; name order runs every load first."""
    g = nx.DiGraph()
    for i in range(n):
        g.add_node(f"load{i}", size=6400)
        g.add_node(f"use{i}", size=640)
        g.add_edge(f"load{i}", f"use{i}")
    g.add_node("sum", size=64, output=True)
    for i in range(n):
        g.add_edge(f"use{i}", "sum")
    return g


def test_reordering_lowers_the_peak():
    g = loads_then_uses()
    stable = problem_from_dag(g, stable_order(g))
    greedy = problem_from_dag(g, memory_order(g))
    assert lower_bound(stable) == 4 * 6400 + 640
    assert lower_bound(greedy) == 6400 + 4 * 640
    assert choose_order(g) == memory_order(g)


def test_plan_dag_is_valid_and_topological():
    g = loads_then_uses()
    order, problem, plan = plan_dag(g)
    check_plan(problem, plan)
    pos = {n: i for i, n in enumerate(order)}
    assert all(pos[u] < pos[v] for u, v in g.edges)
    assert plan.arena_bytes == lower_bound(problem)
    _, _, unordered = plan_dag(g, reorder=False)
    assert unordered.arena_bytes > plan.arena_bytes


def test_lifetimes_multi_output_and_graph_outputs():
    g = nx.DiGraph()
    g.add_node("split", outputs={"lo": 128, "hi": 256})
    g.add_node("f", size=64)
    g.add_node("h", size=64, output=True)
    g.add_edge("split", "f", buffers=["lo"])
    g.add_edge("split", "h", buffers=["hi"])
    g.add_edge("f", "h")
    p = problem_from_dag(g, ["split", "f", "h"])
    life = {b.name: (b.start, b.end) for b in p.buffers}
    assert life == {"lo": (0, 1), "hi": (0, 2), "f": (1, 2), "h": (2, 2)}


def test_bad_graphs_and_orders():
    g = nx.DiGraph([("a", "b"), ("b", "a")])
    with pytest.raises(UsageError, match="cycle"):
        stable_order(g)
    g = nx.DiGraph([("a", "b")])
    with pytest.raises(UsageError, match="not topological"):
        problem_from_dag(g, ["b", "a"])
    with pytest.raises(UsageError, match="every op"):
        problem_from_dag(g, ["a"])
