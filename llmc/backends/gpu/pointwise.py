"""LayerNorm and the float elementwise ops no GEMM epilogue absorbed: their
steps (`step`, called by llmc/backends/gpu/lower.py for a node no rule took)
and their launches (`run_layer_norm`, `run_pointwise`, called by the
runtime). Kernels: templates/layer_norm.py, templates/pointwise.py.

GELU after a linear in the same fusion group is the GEMM's epilogue
(llmc/backends/gpu/gemm.py, ops "gelu" and "gelu_tanh"); what is left here
is a GELU on its own and adds such as GPT-2's token + position embeddings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from llmc.backends.gpu.runtime import pow2
from llmc.ir.graph import Node

BINARY = frozenset({"add", "sub", "mul"})


def gelu_name(n: Node) -> str:
    """gelu's kernel op: "gelu_tanh" for approximate="tanh", else "gelu" (erf)."""
    return "gelu_tanh" if n.attrs.get("approximate") == "tanh" else "gelu"


def step(n: Node, ins: list[str]) -> dict[str, Any] | None:
    """The step of a layer_norm or a float add / sub / mul / gelu node, or None."""
    if n.op == "layer_norm":
        return {"op": "layer_norm", "x": ins[0], "w": ins[1] if len(ins) > 1 else None,
                "b": ins[2] if len(ins) > 2 else None, "eps": float(n.attrs["eps"])}
    if not n.type.dtype.is_float or any(i.type.dtype.kind == "block" for i in n.inputs):
        return None
    if n.op == "gelu":
        return {"op": "pointwise", "fn": gelu_name(n), "in": ins,
                "shape": list(n.type.shape)}
    if n.op in BINARY and len(ins) == 2:
        return {"op": "pointwise", "fn": n.op, "in": ins, "shape": list(n.type.shape)}
    return None


def run_layer_norm(rt: Any, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
    x, x2, out = rt.norm_rows(s, vals, types)
    R, D = x2.shape
    w = vals[s["w"]] if s["w"] else x2
    b = vals[s["b"]] if s["b"] else x2
    br = pow2(min(R, 256 if rt.where.interpret else 4), 1)
    rt.k["layer_norm"][(math.ceil(R / br),)](
        x2, w, b, out, R, D, s["eps"], x2.stride(0), HAS_W=s["w"] is not None,
        HAS_B=s["b"] is not None, BLOCK_R=br, BLOCK_D=pow2(D, 1))
    return out.reshape(x.shape)


def _repeated_rows(t: Any, shape: tuple[int, ...]) -> int | None:
    """RB when t broadcast to `shape` is its own RB rows repeated over the
    leading dims (t's shape, left-padded with 1s, is 1s then a suffix of
    `shape` ending in the last dim), else None."""
    dims = (1,) * (len(shape) - t.dim()) + tuple(t.shape)
    for k in range(len(shape)):
        if all(d == 1 for d in dims[:k]) and dims[k:] == shape[k:]:
            return math.prod(shape[k:-1])
    return None


def run_pointwise(rt: Any, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
    import torch

    shape = tuple(s["shape"])
    C = shape[-1] if shape else 1
    R = math.prod(shape) // max(C, 1)
    out = rt.empty((R, C), types[s["out"]][0])
    br, bc = pow2(min(R, 256 if rt.where.interpret else 16), 1), pow2(min(C, 1024), 1)
    grid = (math.ceil(R / br),)
    xs = [vals[i] for i in s["in"]]
    if s["fn"] in BINARY:
        a, b, fn = xs[0], xs[1], s["fn"]
        if tuple(a.shape) != shape and fn in ("add", "mul"):
            a, b = b, a                          # the full-size operand first
        if tuple(a.shape) != shape:
            a = torch.broadcast_to(a, shape)
        rb = _repeated_rows(b, shape)
        if rb is None:                           # any other broadcast: materialised
            b, rb = torch.broadcast_to(b, shape), R
        a2 = rt.rows(a.reshape(shape) if a.dim() != len(shape) else a, C)
        b2 = rt.rows(b, C)
        rt.k["binary"][grid](a2, b2, out, R, C, rb, a2.stride(0), b2.stride(0),
                             OP=fn, BLOCK_R=br, BLOCK_C=bc)
    else:
        x2 = rt.rows(xs[0], C)
        rt.k["unary"][grid](x2, out, R, C, x2.stride(0), OP=s["fn"], BLOCK_R=br, BLOCK_C=bc)
    return out.reshape(shape)
