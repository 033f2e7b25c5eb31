"""Decode attention and RMSNorm nodes of an integer graph, as `AttnSpec`s for
llmc.rtl.hn_attn and `NormSpec`s for llmc.rtl.hn_norm.

The pattern of a decode step (batch 1, one query): k = index_copy(k_cache,
pos, k_new), v = index_copy(v_cache, pos, v_new), int_attention(q, k, v,
mask j <= pos).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmc.ir import Graph, Node
from llmc.ir import dtypes as dt
from llmc.rtl.hn_attn import AttnSpec
from llmc.rtl.hn_norm import NormSpec


@dataclass(frozen=True)
class AttnNode:
    """A matched attention: its spec and the nodes holding its operands."""

    spec: AttnSpec
    node: Node        # int_attention
    q: Node
    k_cache: Node
    k_new: Node
    v_cache: Node
    v_new: Node


def attention_nodes(graph: Graph) -> list[AttnNode]:
    """Every decode int_attention whose K and V come from index_copy into a cache."""
    out = []
    for n in graph.nodes:
        if n.op != "int_attention" or len(n.inputs) < 3:
            continue
        k, v = n.inputs[1].node, n.inputs[2].node
        if k.op != "index_copy" or v.op != "index_copy" or n.inputs[0].type.shape[0] != 1 \
                or n.inputs[0].type.shape[2] != 1:
            continue
        _, heads, _, dim = n.inputs[0].type.shape
        _, kv_heads, slots, _ = n.inputs[1].type.shape
        a = n.attrs
        name = (n.loc or n.name)
        spec = AttnSpec(name, heads, kv_heads, slots, dim, int(a["s_mult"]), int(a["s_shift"]),
                        int(a["frac"]), int(a["prob_bits"]), int(a["o_mult"]),
                        int(a["o_shift"]))
        out.append(AttnNode(spec, n, n.inputs[0].node, k.inputs[0].node, k.inputs[2].node,
                            v.inputs[0].node, v.inputs[2].node))
    return out


def norm_nodes(graph: Graph) -> list[tuple[NormSpec, Node]]:
    """Every int_rms_norm with int8 output over a power-of-two width, as NormSpecs."""
    out = []
    for n in graph.nodes:
        c = n.type.shape[-1] if n.op == "int_rms_norm" else 0
        if not c or c & (c - 1) or n.attrs["dtype"] != dt.i8 or n.type.numel != c:
            continue
        a = n.attrs
        gains = tuple(int(v) for v in np.asarray(graph.params[n.inputs[1].node.attrs["name"]]))
        out.append((NormSpec(n.loc or n.name, int(n.inputs[0].type.dtype.bits), gains,
                             int(a["eps"]), int(a["rbits"]), int(a["shift"])), n))
    return out
