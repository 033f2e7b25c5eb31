"""Algebraic tidying that leaves every value unchanged, as small rules.

A traced graph carries steps that compute nothing: a multiply by 1
(transformers' RoPE `attention_scaling`), a reshape to the shape a value
already has or of another reshape, a reshape that only prepends unit dims
to an operand of a broadcasting op, a concat with an empty operand (Phi-3's
partial rotary of the whole head). Removing them lets the raise passes and
the quantizers see the forms they match (llmc's zoo writes none of them).
"""

from __future__ import annotations

from llmc.ir.graph import Graph, Node, Value
from llmc.ir.ops.registry import broadcast_shapes
from llmc.passes.rewrite import RewriteCtx, rewrite, scalar_const

BINARY = ("add", "sub", "mul", "div")
# op -> (the constant that leaves the other operand unchanged, operand positions it may hold)
_IDENTITY = {"mul": (1.0, (0, 1)), "add": (0.0, (0, 1)), "sub": (0.0, (1,)), "div": (1.0, (1,))}


def identity_operand(node: Node, ctx: RewriteCtx) -> Value | None:
    """x * 1, 1 * x, x + 0, 0 + x, x - 0, x / 1 -> x (same type)."""
    if node.op not in _IDENTITY:
        return None
    unit, where = _IDENTITY[node.op]
    for i in where:
        x = node.inputs[1 - i]
        if scalar_const(node.inputs[i]) == unit and x.type == node.type:
            return x
    return None


def reshape_chain(node: Node, ctx: RewriteCtx) -> Value | None:
    """reshape(x) to x's own shape -> x; reshape(reshape(x)) -> reshape(x) (or x)."""
    if node.op != "reshape":
        return None
    src = node.inputs[0]
    if src.type == node.type:
        return src
    if src.node.op == "reshape":
        first = src.node.inputs[0]
        if first.type == node.type:
            return first
        return ctx.b.add("reshape", [src.node.inputs[0]], dict(node.attrs), name=node.name,
                         loc=node.loc).out()
    return None


def _unit_prefix(v: Value) -> Value | None:
    """y when v = reshape(y) only prepends unit dims to y's shape."""
    n = v.node
    if n.op != "reshape":
        return None
    y = n.inputs[0]
    extra = v.type.rank - y.type.rank
    if extra <= 0 or v.type.shape != (1,) * extra + y.type.shape:
        return None
    return y


def broadcast_reshape(node: Node, ctx: RewriteCtx) -> Value | None:
    """op(x, reshape(y)) where the reshape only prepends unit dims -> op(x, y):
    broadcasting aligns trailing dims, so the result is the same."""
    if node.op not in BINARY:
        return None
    ins = list(node.inputs)
    changed = False
    for i, v in enumerate(ins):
        y = _unit_prefix(v)
        other = ins[1 - i]
        if y is not None and broadcast_shapes(other.type.shape, y.type.shape) == node.type.shape:
            ins[i], changed = y, True
    if not changed:
        return None
    return ctx.b.add(node.op, ins, dict(node.attrs), name=node.name, loc=node.loc).out()


def empty_concat(node: Node, ctx: RewriteCtx) -> Value | None:
    """concat(..., empty, ...) -> concat of the rest (or the one left)."""
    if node.op != "concat":
        return None
    kept = [v for v in node.inputs if v.type.numel]
    if len(kept) == len(node.inputs) or not kept:
        return None
    if len(kept) == 1:
        return kept[0] if kept[0].type == node.type else None
    return ctx.b.add("concat", kept, dict(node.attrs), name=node.name, loc=node.loc).out()


RULES = [identity_operand, reshape_chain, broadcast_reshape, empty_concat]


def simplify(graph: Graph) -> Graph:
    """The `simplify` pass: every rule above, once over the graph."""
    return rewrite(graph, RULES)
