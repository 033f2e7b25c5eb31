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
    total: int          # every logical weight element (see param_count)
    active: int         # elements one token uses (MoE: top_k of E experts)
    nbytes: int         # storage bytes of all weights, at their IR dtypes


def _logical(graph: Graph) -> dict[int, int]:
    """Params stored in another shape than the weight they encode -> logical
    elements (0 for format data), keyed by node id, from the ops' `weights`
    rules in the registry."""
    out: dict[int, int] = {}
    for n in graph.nodes:
        rule = get_op(n.op).weights
        if rule is None:
            continue
        for i, elems in rule(n).items():
            if i < len(n.inputs) and n.inputs[i].node.op == "param":
                out[id(n.inputs[i].node)] = elems
    return out


def param_count(graph: Graph) -> ParamCount:
    """Count weights once each (a tied weight read twice counts once; buffers
    such as RoPE tables are not weights). Counts are of logical weights, so a
    quantized or pruned graph has the float model's count: packed int4 counts
    two per byte, a compressed sparse weight counts its dense matrix, group
    scales and sparse indices count none (``nbytes`` has all of them, as
    stored). Expert weights of `moe_ffn` (and `int_moe_ffn`) count as active by the op's
    top_k / E fraction."""
    fraction: dict[str, float] = {}
    for n in graph.nodes:
        if get_op(n.op).kind == "moe":  # moe_ffn and its integer twin
            for v in n.inputs[2:]:
                if v.node.op == "param":
                    fraction[v.node.attrs["name"]] = moe_active_fraction(n)
    read = {id(v.node) for n in graph.nodes for v in n.inputs}
    logical = _logical(graph)
    total = active = nbytes = 0
    for p in graph.param_nodes:
        if p.attrs.get("buffer") or id(p) not in read:  # tied copies nothing reads
            continue
        numel = logical.get(id(p), p.type.numel)
        total += numel
        active += round(numel * fraction.get(p.attrs["name"], 1.0))
        nbytes += p.type.nbytes
    return ParamCount(total, active, nbytes)


def op_counts(graph: Graph) -> dict[str, int]:
    return dict(sorted(Counter(n.op for n in graph.nodes).items()))
