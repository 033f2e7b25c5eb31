"""SwiGLU blocks of a w4a8 integer graph, as `FfnSpec`s for llmc.rtl.hn_ffn.

The pattern (llmc.passes.quant's integer lowering of a gated MLP):
int_linear(gate) -> requant(i16) -> int_silu(i16) -> cast -> mul <- cast <-
requant(i16) <- int_linear(up); mul -> requant(i8) -> int_linear(down).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmc.backends.hnlpu.layers import layer_of
from llmc.ir import Graph, Node
from llmc.ir import dtypes as dt
from llmc.rtl.hn_ffn import FfnSpec


@dataclass(frozen=True)
class FfnBlock:
    """A matched block: its spec and the nodes whose values check it."""

    spec: FfnSpec
    x: Node      # the gate/up projections' input (i8)
    h: Node      # the requantized SwiGLU output (i8), the down projection's input
    y: Node      # the down projection (i32)


def _users(graph: Graph) -> dict[str, list[Node]]:
    out: dict[str, list[Node]] = {}
    for n in graph.nodes:
        for v in n.inputs:
            out.setdefault(v.node.name, []).append(n)
    return out


def ffn_blocks(graph: Graph) -> list[FfnBlock]:
    """Every SwiGLU block of the graph that has exactly the pattern above."""
    users = _users(graph)
    blocks = []
    for silu in (n for n in graph.nodes if n.op == "int_silu"):
        rq_g = silu.inputs[0].node
        lin_g = rq_g.inputs[0].node if rq_g.op == "requant" else None
        casts = users.get(silu.name, [])
        muls = [m for c in casts if c.op == "cast" for m in users.get(c.name, []) if m.op == "mul"]
        if lin_g is None or lin_g.op != "int_linear" or len(muls) != 1:
            continue
        mul = muls[0]
        other = [v.node for v in mul.inputs if v.node not in casts]
        rq_u = other[0].inputs[0].node if other and other[0].op == "cast" else None
        lin_u = rq_u.inputs[0].node if rq_u is not None and rq_u.op == "requant" else None
        rq_h = next((n for n in users.get(mul.name, []) if n.op == "requant"), None)
        lin_d = next((n for n in users.get(rq_h.name, []) if n.op == "int_linear"), None) \
            if rq_h is not None else None
        if lin_u is None or lin_u.op != "int_linear" or lin_d is None or \
                len(rq_g.inputs) < 2 or len(rq_u.inputs) < 2 or "mult" not in rq_h.attrs or \
                (rq_g.attrs["dtype"], rq_u.attrs["dtype"], silu.attrs["dtype"],
                 rq_h.attrs["dtype"]) != (dt.i16, dt.i16, dt.i16, dt.i8):
            continue

        def mults(rq: Node) -> tuple[int, ...]:
            m = np.asarray(graph.params[rq.inputs[1].node.attrs["name"]]).reshape(-1)
            n = rq.type.shape[-1]
            return tuple(int(v) for v in (np.broadcast_to(m, (n,)) if m.size == 1 else m))

        name = (lin_d.loc or lin_d.name).rsplit(".", 1)[0]
        a = silu.attrs
        spec = FfnSpec(name, layer_of(graph, lin_g), layer_of(graph, lin_u),
                       layer_of(graph, lin_d), mults(rq_g), int(rq_g.attrs["shift"]),
                       mults(rq_u), int(rq_u.attrs["shift"]), int(a["in_mult"]),
                       int(a["in_shift"]), int(a["frac"]), int(a["out_mult"]),
                       int(a["out_shift"]), int(rq_h.attrs["mult"]), int(rq_h.attrs["shift"]))
        blocks.append(FfnBlock(spec, lin_g.inputs[0].node, rq_h, lin_d))
    return blocks
