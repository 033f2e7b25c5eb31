"""Recognise RMSNorm written by hand and raise it into one `rms_norm` op.

transformers writes RMSNorm (Zhang & Sennrich 2019) in its modules, so a
traced graph holds it decomposed (LlamaRMSNorm and its copies):

    x32 = cast(x, f32)                      # absent when x is f32
    y = x32 * rsqrt(mean(x32^2, -1, keepdim) + eps)
    out = w * cast(y, x.dtype)              # Gemma: y * (1 + w)

Two rules: the normalisation itself becomes `rms_norm(x32){eps}`, then a
gain of the last dim's width multiplied in becomes its weight,
`rms_norm(x32, w){eps}` (cast back where the source casts). Gemma's `1 + w`
is a gain like any other; fold-constants stores it as one param. The square
may be `pow(x, 2)` or `x * x`, the inverse root `rsqrt(v)` or `1 / sqrt(v)`.
"""

from __future__ import annotations

from llmc.ir.graph import Graph, Node, Value
from llmc.passes.rewrite import RewriteCtx, producer, rewrite, scalar_const


def _mean_square(v: Value) -> Value | None:
    """x of mean(x^2) over the last dim, keepdim."""
    m = producer(v, "mean")
    if m is None or not m.attrs["keepdim"] \
            or tuple(m.attrs["dims"]) not in ((m.type.rank - 1,), (-1,)):
        return None
    sq = m.inputs[0].node
    if sq.op == "pow" and scalar_const(sq.inputs[1]) == 2.0:
        return sq.inputs[0]
    if sq.op == "mul" and sq.inputs[0] == sq.inputs[1]:
        return sq.inputs[0]
    return None


def _plus_eps(v: Value) -> tuple[Value, float] | None:
    """(x, eps) of mean(x^2) + eps."""
    add = producer(v, "add")
    if add is None:
        return None
    for a, b in (add.inputs, add.inputs[::-1]):
        eps, x = scalar_const(b), _mean_square(a)
        if eps is not None and x is not None:
            return x, eps
    return None


def _norm(node: Node, ctx: RewriteCtx, x: Value, eps: float, *gain: Value) -> Value:
    return ctx.b.add("rms_norm", [x, *gain], {"eps": eps}, name=node.name, loc=node.loc).out()


def rms_core(node: Node, ctx: RewriteCtx) -> Value | None:
    """x * rsqrt(mean(x^2) + eps), or x / sqrt(mean(x^2) + eps) -> rms_norm(x)."""
    if node.op == "mul":
        pairs = (node.inputs, node.inputs[::-1])
        inv = [(x, producer(r, "rsqrt")) for x, r in pairs]
    elif node.op == "div":
        inv = [(node.inputs[0], producer(node.inputs[1], "sqrt"))]
    else:
        return None
    for x, root in inv:
        found = _plus_eps(root.inputs[0]) if root is not None else None
        if found is not None and found[0] == x and x.type == node.type:
            return _norm(node, ctx, x, found[1])
    return None


def rms_gain(node: Node, ctx: RewriteCtx) -> Value | None:
    """w * rms_norm(x) (a cast between allowed), w of the last dim's width ->
    rms_norm(x, w), cast to the product's dtype."""
    if node.op != "mul":
        return None
    for y, w in (node.inputs, node.inputs[::-1]):
        src = y.node.inputs[0] if y.node.op == "cast" else y
        norm = producer(src, "rms_norm")
        if norm is None or len(norm.inputs) != 1 or w.type.shape != norm.type.shape[-1:]:
            continue
        out = _norm(node, ctx, norm.inputs[0], norm.attrs["eps"], w)
        if out.type.dtype != node.type.dtype:
            out = ctx.b.op("cast", out, dtype=node.type.dtype)
        if out.type == node.type:
            return out
    return None


def raise_norm(graph: Graph) -> Graph:
    """The `raise-norm` pass: every hand-written RMSNorm as one rms_norm."""
    return rewrite(graph, [rms_core, rms_gain])
