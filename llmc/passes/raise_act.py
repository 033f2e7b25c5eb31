"""Recognise activations written by hand and raise them into one op each.

    x * sigmoid(x)                                               -> silu(x)
    0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))      -> gelu(x){approximate="tanh"}

The second is transformers' `NewGELUActivation` (GPT-2's "gelu_new"),
Hendrycks & Gimpel 2016's tanh approximation; the factor 0.5 may multiply
x or the bracket, and the cube may be `pow(x, 3)` or `x * x * x`.
Constants match to 1e-6 relative (they arrive as float32 or float64).
"""

from __future__ import annotations

import math

from llmc.ir.graph import Graph, Node, Value
from llmc.passes.rewrite import RewriteCtx, producer, rewrite, scalar_const

GELU_CUBIC = 0.044715
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _is(v: Value, c: float) -> bool:
    got = scalar_const(v)
    return got is not None and math.isclose(got, c, rel_tol=1e-6)


def _times(v: Value, c: float) -> Value | None:
    """a of a * c or c * a."""
    m = producer(v, "mul")
    if m is None:
        return None
    for a, b in (m.inputs, m.inputs[::-1]):
        if _is(b, c):
            return a
    return None


def _cube_of(v: Value) -> Value | None:
    n = v.node
    if n.op == "pow" and _is(n.inputs[1], 3.0):
        return n.inputs[0]
    if n.op == "mul":
        for a, b in (n.inputs, n.inputs[::-1]):
            sq = producer(b, "mul")
            if sq is not None and sq.inputs[0] == sq.inputs[1] == a:
                return a
    return None


def _tanh_bracket(v: Value) -> Value | None:
    """x of 1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))."""
    add = producer(v, "add")
    if add is None:
        return None
    for one, t in (add.inputs, add.inputs[::-1]):
        tanh = producer(t, "tanh")
        if not _is(one, 1.0) or tanh is None:
            continue
        scaled = _times(tanh.inputs[0], SQRT_2_OVER_PI)
        inner = producer(scaled, "add") if scaled is not None else None
        if inner is None:
            continue
        for x, cubic in (inner.inputs, inner.inputs[::-1]):
            c = _times(cubic, GELU_CUBIC)
            if c is not None and _cube_of(c) == x:
                return x
    return None


def gelu_tanh(node: Node, ctx: RewriteCtx) -> Value | None:
    """(0.5 * x) * bracket or x * (0.5 * bracket) -> gelu(x){approximate="tanh"}."""
    if node.op != "mul":
        return None
    for a, b in (node.inputs, node.inputs[::-1]):
        half_x, half_bracket = _times(a, 0.5), _times(b, 0.5)
        x = (_tanh_bracket(b) if half_x is not None else None) or \
            (_tanh_bracket(half_bracket) if half_bracket is not None else None)
        if x is not None and x in (half_x, a) and x.type == node.type:
            return ctx.b.add("gelu", [x], {"approximate": "tanh"}, name=node.name,
                             loc=node.loc).out()
    return None


def silu(node: Node, ctx: RewriteCtx) -> Value | None:
    """x * sigmoid(x) -> silu(x)."""
    if node.op != "mul":
        return None
    for x, s in (node.inputs, node.inputs[::-1]):
        sig = producer(s, "sigmoid")
        if sig is not None and sig.inputs[0] == x and x.type == node.type:
            return ctx.b.add("silu", [x], {}, name=node.name, loc=node.loc).out()
    return None


def raise_act(graph: Graph) -> Graph:
    """The `raise-act` pass: hand-written SiLU and tanh-GELU as one op each."""
    return rewrite(graph, [silu, gelu_tanh])
