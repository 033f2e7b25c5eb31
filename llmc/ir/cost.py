"""Graph-level sums of the registry's per-op costs, and parameter counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from llmc.ir.graph import Graph, Node
from llmc.ir.ops import Cost, get_op
from llmc.ir.ops.nn import moe_active_fraction
from llmc.ir.ops.quant import INT4_LAYOUT


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


# Inputs that hold a weight's format data, not weights: group scales of
# quantized linears, requantization multipliers and output scales of integer
# graphs (a sparse weight's 2:4 metadata or CSR indices: see _logical).
_METADATA_INPUTS = {"wq_linear": (2,), "int_linear": (2,), "requant": (1,),
                    "dequantize_int": (1,)}
# Ops whose input 1 is a (possibly packed and K-padded) quantized weight.
_QUANT_WEIGHT_OPS = ("wq_linear", "int_linear", "qlinear")


def _logical(graph: Graph) -> dict[int, int]:
    """Params whose stored shape is not their logical one -> logical elements
    (0 for format data), keyed by node id."""
    out: dict[int, int] = {}
    for n in graph.nodes:
        meta = _METADATA_INPUTS.get(n.op, ())
        if n.op == "sparse_linear":
            nw = 2 if n.attrs["pattern"] == "2:4" else 3
            meta = tuple(range(2, 1 + nw))
            values = n.inputs[1].node
            if values.op == "param":  # the dense matrix it encodes
                out[id(values)] = n.type.shape[-1] * n.attrs["in_features"]
        elif n.op in _QUANT_WEIGHT_OPS and n.inputs[1].node.op == "param":
            # out x in of the float weight: no int4 packing, no K padding
            out[id(n.inputs[1].node)] = n.type.shape[-1] * n.inputs[0].type.shape[-1]
        for i in meta:
            if i < len(n.inputs) and n.inputs[i].node.op == "param":
                out[id(n.inputs[i].node)] = 0
    for p in graph.param_nodes:
        if id(p) not in out and INT4_LAYOUT in (p.type.layout or ""):
            out[id(p)] = 2 * p.type.numel  # two 4-bit weights per stored byte
    return out


def param_count(graph: Graph) -> ParamCount:
    """Count weights once each (a tied weight read twice counts once; buffers
    such as RoPE tables are not weights). Counts are of logical weights, so a
    quantized or pruned graph has the float model's count: packed int4 counts
    two per byte, a compressed sparse weight counts its dense matrix, group
    scales and sparse indices count none (``nbytes`` has all of them, as
    stored). Expert weights of `moe_ffn` count as active by the op's
    top_k / E fraction."""
    fraction: dict[str, float] = {}
    for n in graph.nodes:
        if n.op == "moe_ffn":
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
