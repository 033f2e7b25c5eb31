"""Recognise explicit attention and fuse it into one `attention` op.

Matches  matmul(softmax(scale(matmul(q, kᵀ)) [+ mask]), v)  as written by
hand in many models (nanoGPT's slow path, HF's eager attention), where scale
is a multiply or divide by a constant, kᵀ a permute swapping the last two
dims, and the mask an additive float tensor or a `where(mask, s, -inf)`.
"""

from __future__ import annotations

import math

from llmc.ir.graph import Graph, Node, Value
from llmc.passes.rewrite import RewriteCtx, producer, rewrite, scalar_const


def _unscale(s: Value) -> tuple[Value, float]:
    """Strip a constant multiply/divide: (scores before scaling, scale)."""
    n = s.node
    if n.op in ("mul", "div"):
        for a, b in (n.inputs, n.inputs[::-1]):
            c = scalar_const(b)
            if c is not None and (n.op == "mul" or b is n.inputs[1]):
                return a, (c if n.op == "mul" else 1.0 / c)
    return s, 1.0


def _unmask(s: Value) -> tuple[Value, Value | None]:
    n = s.node
    if n.op == "add" and n.inputs[0].type.shape == n.type.shape:
        return n.inputs[0], n.inputs[1]
    if n.op == "where" and scalar_const(n.inputs[2]) == -math.inf:
        return n.inputs[1], n.inputs[0]
    return s, None


def _transposed_key(kt: Value) -> Value | None:
    n = producer(kt, "permute")
    if n is None or n.type.rank != 4 or tuple(n.attrs["perm"]) != (0, 1, 3, 2):
        return None
    return n.inputs[0]


def fuse_attention_rule(node: Node, ctx: RewriteCtx) -> Value | None:
    if node.op != "matmul" or node.type.rank != 4:
        return None
    p, v = node.inputs
    softmax = producer(p, "softmax")
    if softmax is None or softmax.attrs["dim"] != 3:
        return None
    scores, mask = _unmask(softmax.inputs[0])
    scores, scale = _unscale(scores)
    if mask is None:  # the mask may also come after scaling
        scores, mask = _unmask(scores)
    qk = producer(scores, "matmul")
    if qk is None:
        return None
    q, kt = qk.inputs
    k = _transposed_key(kt)
    if k is None or q.type.rank != 4 or k.type.shape[:2] != v.type.shape[:2]:
        return None
    args = [q, k, v] + ([mask] if mask is not None else [])
    return ctx.b.add("attention", args, {"causal": False, "scale": scale},
                     name=node.name, loc=node.loc).out()


def fuse_attention(graph: Graph) -> Graph:
    """The `fuse-attention` pass: every explicit attention as one `attention` op."""
    return rewrite(graph, [fuse_attention_rule])
