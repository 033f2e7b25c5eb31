"""OLLA-style operator reordering for IR graphs: the `memory-order` pass.

The graph's nodes become a DAG for :mod:`llmc.passes.memplan.olla` (one DAG
node per IR node, keyed by its position so that the stable order is the
graph's own; a node's outputs are its planned buffers, none for views and
external values; an edge reads the buffers its consumer reads, through any
views), :func:`~llmc.passes.memplan.olla.choose_order` picks the order with
the lower peak of live bytes (the graph's own on ties), and the graph is
rebuilt in that order. Inputs and params keep their places in front, so the
graph's signature does not change. The values are SSA, so any topological
order computes the same results.
"""

from __future__ import annotations

import networkx as nx

from llmc.ir.alias import alias_root
from llmc.ir.graph import Graph, Value
from llmc.ir.ops import get_op
from llmc.passes.memplan.liveness import buffer_name, is_external, kv_outputs
from llmc.passes.memplan.olla import choose_order


def _key(i: int) -> str:
    return f"{i:09d}"  # lexicographic = numeric, so the stable order is the graph's


def ir_dag(graph: Graph) -> nx.DiGraph:
    """The DAG of :mod:`olla` for `graph` (see the module docstring)."""
    pos = {n: i for i, n in enumerate(graph.nodes)}
    dag = nx.DiGraph()
    roots = {alias_root(v).node for v in graph.outputs}
    kv = kv_outputs(graph)
    for n in graph.nodes:
        planned = get_op(n.op).kind != "view" and not is_external(n)
        outs = {}
        if planned:
            outs = {buffer_name(Value(n, i)): t.nbytes for i, t in enumerate(n.types)
                    if Value(n, i) not in kv}
        dag.add_node(_key(pos[n]), outputs=outs, output=n in roots)
    for n in graph.nodes:
        v_key = _key(pos[n])
        for x in n.inputs:
            u_key = _key(pos[x.node])
            if not dag.has_edge(u_key, v_key):
                dag.add_edge(u_key, v_key, buffers=[])  # order only
            root = alias_root(x)
            name = buffer_name(root)
            r_key = _key(pos[root.node])
            if name in dag.nodes[r_key]["outputs"]:
                if not dag.has_edge(r_key, v_key):
                    dag.add_edge(r_key, v_key, buffers=[])
                reads = dag.edges[r_key, v_key]["buffers"]
                if name not in reads:
                    reads.append(name)
    return dag


def memory_order(graph: Graph, alignment: int = 64) -> Graph:
    """`graph` with its nodes in the order of lower peak activation memory."""
    order = choose_order(ir_dag(graph), alignment)
    nodes = graph.nodes
    front = [n for n in nodes if n.op in ("input", "param")]
    rest = [nodes[int(k)] for k in order if nodes[int(k)].op not in ("input", "param")]
    if front + rest == nodes:
        return graph
    return Graph(graph.name, front + rest, list(graph.outputs), graph.params)
