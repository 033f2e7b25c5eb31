"""Graph-level sums of the registry's per-op costs, and parameter counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from llmc.ir.graph import Graph, Node
from llmc.ir.ops import Cost, get_op
from llmc.ir.ops.nn import moe_active_fraction


def node_cost(node: Node) -> Cost:
    return get_op(node.op).cost(node)


def graph_cost(graph: Graph) -> Cost:
    total = Cost()
    for n in graph.nodes:
        total = total + node_cost(n)
    return total


@dataclass(frozen=True)
class ParamCount:
    total: int          # every weight element
    active: int         # elements one token uses (MoE: top_k of E experts)
    nbytes: int         # storage bytes of all weights, at their IR dtypes


def param_count(graph: Graph) -> ParamCount:
    """Count weights once each (a tied weight read twice counts once; buffers
    such as RoPE tables are not weights). Expert
    weights of `moe_ffn` count as active by the op's top_k / E fraction."""
    fraction: dict[str, float] = {}
    for n in graph.nodes:
        if n.op == "moe_ffn":
            for v in n.inputs[2:]:
                if v.node.op == "param":
                    fraction[v.node.attrs["name"]] = moe_active_fraction(n)
    read = {id(v.node) for n in graph.nodes for v in n.inputs}
    total = active = nbytes = 0
    for p in graph.param_nodes:
        if p.attrs.get("buffer") or id(p) not in read:  # tied copies nothing reads
            continue
        numel = p.type.numel
        total += numel
        active += round(numel * fraction.get(p.attrs["name"], 1.0))
        nbytes += p.type.nbytes
    return ParamCount(total, active, nbytes)


def op_counts(graph: Graph) -> dict[str, int]:
    return dict(sorted(Counter(n.op for n in graph.nodes).items()))
