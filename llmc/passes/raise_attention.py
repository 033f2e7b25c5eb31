"""Recognise what transformers computes around attention and raise it into
the `attention` op's own inputs and attributes.

- grouped-query KV heads: transformers repeats each KV head for its query
  heads before attention (`repeat_kv`),

      reshape(expand(reshape(k, (B, G, 1, T, D)), (B, G, r, T, D)), (B, G*r, T, D))

  and `attention` takes k and v with G heads as they are (head h reads KV
  head h // r, the same order);
- a mask computed from shapes alone (transformers builds its causal mask
  from `arange`s, `cumsum` and compares at run time) is evaluated here:
  keeping exactly the causal pairs it becomes `causal=true`, keeping every
  pair it is dropped, keeping the causal pairs of a sliding window of W keys
  it becomes `causal=true, window=W` (the attribute llmc's zoo and
  `--attention window:W` set). Any other mask stays an input. A mask that
  reads an input (a decode step's positions) is never touched.
"""

from __future__ import annotations

import numpy as np

from llmc.ir.graph import Graph, Node, Value
from llmc.passes.fold_constants import constant_nodes, evaluate_constants
from llmc.passes.rewrite import RewriteCtx, producer, rewrite


def unrepeated(v: Value) -> Value | None:
    """k when v is repeat_kv(k): k (B, G, T, D) repeated r times per head."""
    out = producer(v, "reshape")
    rep = producer(out.inputs[0], "expand") if out is not None else None
    one = producer(rep.inputs[0], "reshape") if rep is not None else None
    if one is None or one.inputs[0].type.rank != 4:
        return None
    k = one.inputs[0]
    b, g, t, d = k.type.shape
    r = rep.type.shape[2] if rep.type.rank == 5 else 0
    if (one.type.shape, rep.type.shape, out.type.shape) != (
            (b, g, 1, t, d), (b, g, r, t, d), (b, g * r, t, d)) or r < 1:
        return None
    return k


def mask_attrs(mask: np.ndarray) -> dict | None:
    """The attributes that keep the pairs `mask` (..., Tq, Tk) keeps (bool:
    True keeps; float: 0 keeps, -inf hides), or None when none says it."""
    tq, tk = mask.shape[-2:]
    if mask.dtype == np.bool_:
        keep = mask
    elif np.all((mask == 0) | (mask == -np.inf)):
        keep = mask == 0
    else:
        return None
    keep = keep.reshape((-1, tq, tk))
    if keep.all():
        return {}
    i, j = np.arange(tq)[:, None] + (tk - tq), np.arange(tk)[None, :]
    causal = j <= i
    if (keep == causal).all():
        return {"causal": True}
    window = int(keep[:, -1].sum(axis=-1).max())
    if 0 < window < tk and (keep == (causal & (j > i - window))).all():
        return {"causal": True, "window": window}
    return None


def _plan(graph: Graph) -> dict[str, dict]:
    """attention node name -> the attributes its constant mask is."""
    const = constant_nodes(graph)
    masked = [n for n in graph.nodes if n.op == "attention" and len(n.inputs) == 4
              and n.inputs[3].node in const and not n.attrs["causal"]
              and not any(a in n.attrs for a in ("window", "sinks", "block_size"))]
    if not masked:
        return {}
    values = evaluate_constants(graph, [n.inputs[3] for n in masked])
    if values is None:
        return {}
    plan = {}
    for n, m in zip(masked, values, strict=True):
        attrs = mask_attrs(np.broadcast_to(m, n.type.shape[:3] + n.inputs[1].type.shape[2:3]))
        if attrs is not None:
            plan[n.name] = attrs
    return plan


def raise_attention(graph: Graph) -> Graph:
    """The `raise-attention` pass (see the module docstring)."""
    masks = _plan(graph)

    def attention(node: Node, ctx: RewriteCtx) -> Value | None:
        if node.op != "attention":
            return None
        q, k, v, *mask = node.inputs
        attrs = dict(node.attrs)
        k0, v0 = unrepeated(k), unrepeated(v)
        changed = k0 is not None and v0 is not None and k0.type.shape[:3] == v0.type.shape[:3]
        if changed:
            k, v = k0, v0
        if node.name in masks:
            attrs.update(masks[node.name])
            mask, changed = [], True
        if not changed:
            return None
        return ctx.b.add("attention", [q, k, v, *mask], attrs, name=node.name,
                         loc=node.loc).out()

    return rewrite(graph, [attention])
