"""Recognise a product with a weight written as matmul + add and raise it
into one `linear`, the op every quantizer and backend reads as a layer.

GPT-2's `Conv1D` stores its weight (in, out) and computes `addmm(b, x, W)`,
which converts to

    add(matmul(x, W), b)                     # x (N, in), W (in, out) a param

Two rules: `matmul(x, W)` with W a 2-D param becomes `linear(x, W^T)` (W^T a
param `<W>.T` of shape (out, in), the layout `linear` takes), then a bias
param of the output width added to a bias-free linear becomes its bias.
"""

from __future__ import annotations

import numpy as np

from llmc.ir.graph import Graph, Node, Value
from llmc.passes.rewrite import RewriteCtx, producer, rewrite


def _param(v: Value) -> Node | None:
    return producer(v, "param")


def raise_linear(graph: Graph) -> Graph:
    """The `raise-linear` pass: matmul by a weight (+ bias) as one linear."""
    transposed: dict[str, Value] = {}   # weight name -> its (out, in) param, made once

    def weight_product(node: Node, ctx: RewriteCtx) -> Value | None:
        """matmul(x, W) -> linear(x, W^T), W a 2-D param."""
        if node.op != "matmul" or node.inputs[0].type.rank < 2:
            return None
        w = _param(node.inputs[1])
        if w is None or w.type.rank != 2:
            return None
        name = w.attrs["name"]
        if name not in transposed:
            value = ctx.graph.params.get(name)
            t = w.type.with_shape(w.type.shape[::-1])
            transposed[name] = ctx.b.param(f"{name}.T", t, None if value is None
                                           else np.ascontiguousarray(value.T))
        return ctx.b.add("linear", [node.inputs[0], transposed[name]], {}, name=node.name,
                         loc=node.loc).out()

    def bias(node: Node, ctx: RewriteCtx) -> Value | None:
        """linear(x, W) + b -> linear(x, W, b), b a param of the output width."""
        if node.op != "add":
            return None
        for y, b in (node.inputs, node.inputs[::-1]):
            lin = producer(y, "linear")
            if (lin is None or len(lin.inputs) != 2 or _param(b) is None
                    or b.type.shape != lin.type.shape[-1:] or lin.type != node.type):
                continue
            return ctx.b.add("linear", [*lin.inputs, b], {}, name=lin.name,
                             loc=lin.loc).out()
        return None

    return rewrite(graph, [weight_product, bias])
