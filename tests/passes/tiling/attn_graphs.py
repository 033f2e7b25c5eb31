"""Small hand-built attention graphs and seeded inputs for the tiling tests
(imported by the test modules of this directory)."""

from __future__ import annotations

import numpy as np

from llmc.ir import dtypes
from llmc.ir.graph import Builder, Graph
from llmc.ir.types import TensorType


def attention_graph(B: int, H: int, G: int, tq: int, tk: int, d: int, causal: bool,
                    mask: tuple[int, ...] | None = None, mask_dtype: str = "bool",
                    dtype: dtypes.DType = dtypes.f32, **sparse: int) -> Graph:
    """inputs q (B,H,tq,d), k/v (B,G,tk,d)[, mask]; one attention node."""
    g = Graph("attn")
    b = Builder(g)
    ins = [b.input("q", TensorType((B, H, tq, d), dtype)),
           b.input("k", TensorType((B, G, tk, d), dtype)),
           b.input("v", TensorType((B, G, tk, d), dtype))]
    if mask is not None:
        ins.append(b.input("mask", TensorType(mask, dtypes.parse_dtype(mask_dtype))))
    g.outputs = [b.add("attention", ins, {"causal": causal, "scale": d ** -0.5, **sparse},
                       name="attn").out()]
    return g


def random_inputs(g: Graph, seed: int = 0) -> list[np.ndarray]:
    """Normal q/k/v; a bool mask keeping about 80 % of keys (every row keeps
    key 0); a float mask of small values with some -inf."""
    rng = np.random.default_rng(seed)
    out = []
    for n in g.inputs:
        t = n.type
        if n.name != "mask":
            out.append(rng.standard_normal(t.shape).astype(np.float32))
        elif t.dtype == dtypes.boolean:
            m = rng.random(t.shape) < 0.8
            m[..., 0] = True
            out.append(m)
        else:
            m = rng.standard_normal(t.shape).astype(np.float32)
            m[rng.random(t.shape) < 0.2] = -np.inf
            m[..., 0] = 0.0
            out.append(m)
    return out
