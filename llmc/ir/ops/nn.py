"""Reductions, normalisations and the heavy ops: linear, matmul, embedding,
attention and routed experts."""

from __future__ import annotations

import math

import numpy as np

from llmc.errors import IRError
from llmc.ir.ops.registry import (
    Cost,
    Gemm,
    VectorWork,
    define,
    io_bytes,
    linear_gemms,
    norm_dim,
    streaming_cost,
)
from llmc.ir.types import TensorType

# ---- reductions --------------------------------------------------------------


def _reduce_type(types, attrs):  # noqa: ANN001, ANN202
    x = types[0]
    dims = {norm_dim(d, x.rank) for d in attrs["dims"]}
    if attrs["keepdim"]:
        shape = tuple(1 if i in dims else s for i, s in enumerate(x.shape))
    else:
        shape = tuple(s for i, s in enumerate(x.shape) if i not in dims)
    return (x.with_shape(shape),)


for _name, _fn in {"sum": np.sum, "mean": np.mean, "amax": np.max, "amin": np.min}.items():
    define(_name, infer=_reduce_type,
           run=lambda xs, a, fn=_fn: fn(xs[0], axis=tuple(a["dims"]), keepdims=a["keepdim"]),
           cost=lambda n: Cost(n.inputs[0].type.numel, *io_bytes(n)), arity=(1, 1),
           kind="reduce", doc=f"{_name} over dims", attrs=("dims", "keepdim"))


def _softmax(xs, attrs):  # noqa: ANN001, ANN202
    x = xs[0]
    e = np.exp(x - np.max(x, axis=attrs["dim"], keepdims=True))
    return e / np.sum(e, axis=attrs["dim"], keepdims=True)


define("softmax", infer=lambda t, a: (t[0],), run=_softmax, cost=streaming_cost(5),
       arity=(1, 1), kind="reduce", doc="exp(x - max) / sum, along dim", attrs=("dim",))

# ---- normalisation -----------------------------------------------------------


def _norm_type(types, attrs):  # noqa: ANN001, ANN202
    x = types[0]
    for w in types[1:]:
        if w.shape != x.shape[-1:]:
            raise IRError(f"norm: weight/bias {w} must have shape [{x.shape[-1]}]")
    return (x,)


def _layer_norm(xs, attrs):  # noqa: ANN001, ANN202
    x = xs[0]
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + np.asarray(attrs["eps"], x.dtype))
    if len(xs) > 1:
        y = y * xs[1]
    if len(xs) > 2:
        y = y + xs[2]
    return y


def _rms_norm(xs, attrs):  # noqa: ANN001, ANN202
    x = xs[0]
    y = x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + np.asarray(attrs["eps"], x.dtype))
    return y * xs[1] if len(xs) > 1 else y


define("layer_norm", infer=_norm_type, run=_layer_norm, cost=streaming_cost(8),
       arity=(1, 3), kind="norm", doc="(x - mean) / sqrt(var + eps) * w + b over the last dim",
       attrs=("eps",))
define("rms_norm", infer=_norm_type, run=_rms_norm, cost=streaming_cost(4), arity=(1, 2),
       kind="norm", doc="x / sqrt(mean(x^2) + eps) * w over the last dim (Zhang & Sennrich 2019)",
       attrs=("eps",))

# ---- linear algebra ----------------------------------------------------------


def _linear_type(types, attrs):  # noqa: ANN001, ANN202
    x, w = types[0], types[1]
    if w.rank != 2 or x.shape[-1] != w.shape[1]:
        raise IRError(f"linear: x {x} and weight {w} (out, in) do not match")
    if len(types) > 2 and types[2].shape != (w.shape[0],):
        raise IRError(f"linear: bias {types[2]} must have shape [{w.shape[0]}]")
    return (TensorType(x.shape[:-1] + (w.shape[0],), x.dtype),)


def _linear(xs, attrs):  # noqa: ANN001, ANN202
    y = xs[0] @ xs[1].T
    return y + xs[2] if len(xs) > 2 else y


def _linear_cost(node) -> Cost:  # noqa: ANN001
    out = node.type
    k = node.inputs[0].type.shape[-1]
    flops = 2 * out.numel * k + (out.numel if len(node.inputs) > 2 else 0)
    return Cost(flops, *io_bytes(node))


define("linear", infer=_linear_type, run=_linear, cost=_linear_cost, arity=(2, 3),
       kind="linalg", gemms=linear_gemms, doc="x @ w.T + b; w is (out_features, in_features)")


def _matmul_type(types, attrs):  # noqa: ANN001, ANN202
    a, b = types
    if a.rank < 2 or b.rank < 2 or a.shape[-1] != b.shape[-2]:
        raise IRError(f"matmul: {a} and {b} do not chain")
    batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    return (TensorType(batch + (a.shape[-2], b.shape[-1]), a.dtype),)


def _matmul_gemms(node) -> tuple[Gemm, ...]:  # noqa: ANN001
    *batch, m, n = node.type.shape
    return (Gemm(m, n, node.inputs[0].type.shape[-1], math.prod(batch)),)


define("matmul", infer=_matmul_type, run=lambda xs, a: xs[0] @ xs[1],
       cost=lambda n: Cost(2 * n.type.numel * n.inputs[0].type.shape[-1], *io_bytes(n)),
       arity=(2, 2), kind="linalg", gemms=_matmul_gemms,
       doc="batched a @ b with broadcasting batch dims")


def _embedding_type(types, attrs):  # noqa: ANN001, ANN202
    w, idx = types
    if w.rank != 2 or not idx.dtype.is_int:
        raise IRError(f"embedding: table {w} must be 2-D and indices {idx} integer")
    return (TensorType(idx.shape + (w.shape[1],), w.dtype),)


def _embedding(xs, attrs):  # noqa: ANN001, ANN202
    w, idx = xs
    if idx.size and (idx.min() < 0 or idx.max() >= w.shape[0]):
        raise IRError(f"embedding: index out of range 0..{w.shape[0] - 1}")
    return w[idx]


def _embedding_cost(node) -> Cost:  # noqa: ANN001
    rows = node.type.nbytes  # only the gathered rows are read
    return Cost(0, rows + node.inputs[1].type.nbytes, rows)


define("embedding", infer=_embedding_type, run=_embedding, cost=_embedding_cost,
       arity=(2, 2), kind="movement", doc="rows of table w (V, C) at integer indices")

# ---- attention ---------------------------------------------------------------


def _attention_type(types, attrs):  # noqa: ANN001, ANN202
    q, k, v = types[:3]
    if not (q.rank == k.rank == v.rank == 4):
        raise IRError(f"attention: q, k, v must be (B, H, T, D), got {q}, {k}, {v}")
    (B, H, Tq, D), (Bk, G, Tk, Dk) = q.shape, k.shape
    if Bk != B or Dk != D or v.shape[:3] != k.shape[:3] or H % G:
        raise IRError(f"attention: q {q}, k {k}, v {v} do not match "
                      f"(query heads must be a multiple of KV heads)")
    if attrs["causal"] and Tq > Tk:
        raise IRError(f"attention: causal with more queries ({Tq}) than keys ({Tk})")
    if _is_sparse(attrs):
        from llmc.ir.ops.tiled import check_sparse_attrs
        check_sparse_attrs(attrs)
    return (TensorType((B, H, Tq, v.shape[3]), q.dtype),)


# Sparse attention (streaming sinks + window, block-sparse): llmc/ir/ops/tiled.py.
_SPARSE_ATTRS = ("window", "sinks", "block_size", "block_topk")


def _is_sparse(attrs) -> bool:  # noqa: ANN001
    return any(a in attrs for a in _SPARSE_ATTRS)


def attention_pairs(tq: int, tk: int, causal: bool) -> int:
    """(query, key) pairs scored per head. Causal is bottom-right aligned:
    query i sees keys j <= i + (tk - tq)."""
    if not causal:
        return tq * tk
    return tq * (tk - tq) + tq * (tq + 1) // 2


def _attention(xs, attrs):  # noqa: ANN001, ANN202
    q, k, v = xs[:3]
    group = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    s = (q @ np.swapaxes(k, -1, -2)) * np.asarray(attrs["scale"], q.dtype)
    tq, tk = q.shape[2], k.shape[2]
    if attrs["causal"]:
        visible = np.arange(tk)[None, :] <= np.arange(tq)[:, None] + (tk - tq)
        s = np.where(visible, s, -np.inf)
    if len(xs) > 3:
        mask = xs[3]
        s = np.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + mask
    if _is_sparse(attrs):
        from llmc.ir.ops.tiled import sparse_keep
        s = np.where(sparse_keep(q, k, attrs, xs[3] if len(xs) > 3 else None), s, -np.inf)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    return (p / p.sum(axis=-1, keepdims=True)) @ v


def _attention_cost(node) -> Cost:  # noqa: ANN001
    if _is_sparse(node.attrs):
        from llmc.ir.ops.tiled import sparse_attention_cost
        return sparse_attention_cost(node)
    B, H, Tq, D = node.inputs[0].type.shape
    Tk = node.inputs[1].type.shape[2]
    pairs = attention_pairs(Tq, Tk, node.attrs["causal"])
    # QK^T and PV: 2*D each per pair (FlashAttention's 4*N^2*d count); softmax
    # adds ~5 per pair. Bytes: q, k, v (and mask) read once, out written once.
    return Cost(B * H * pairs * (4 * D + 5), *io_bytes(node))


def attention_gemms(node, softmax_ops: float) -> tuple[Gemm | VectorWork, ...]:  # noqa: ANN001
    """GemmsFn of an attention over q (B, H, Tq, D), k (B, G, Tk, D), v (B, G, Tk, Dv):
    per query head S = q k^T (Tq, Tk, D), the softmax over S on the vector
    unit (`softmax_ops` per score), then O = P v (Tq, Dv, Tk). Every score of
    the (Tq, Tk) block is computed: a causal or sparse kernel that skips
    masked tiles does less."""
    B, H, tq, d = node.inputs[0].type.shape
    tk, dv = node.inputs[2].type.shape[2:]
    heads = B * H
    return (Gemm(tq, tk, d, heads, ".qk"),
            VectorWork(heads * tq * tk, softmax_ops, ".softmax"),
            Gemm(tq, dv, tk, heads, ".pv"))


define("attention", infer=_attention_type, run=_attention, cost=_attention_cost, arity=(3, 4),
       kind="attention", gemms=lambda n: attention_gemms(n, 5.0),
       doc="softmax(q k^T * scale [causal, mask]) v with grouped KV heads; "
           "q (B,H,Tq,D), k/v (B,G,Tk,D), optional mask broadcastable to (B,H,Tq,Tk): "
           "bool keeps True, float is added; optional sparse attention: window/sinks "
           "(streaming), block_size/block_topk (block-sparse), see llmc/ir/ops/tiled.py",
       attrs=("causal", "scale"), optional_attrs=_SPARSE_ATTRS)

# ---- routed experts ----------------------------------------------------------


def _moe_type(types, attrs):  # noqa: ANN001, ANN202
    x, router, wg, wu, wd = types
    N, d = x.shape
    E, f = wg.shape[0], wg.shape[1]
    if (router.shape != (E, d) or wg.shape != (E, f, d) or wu.shape != (E, f, d)
            or wd.shape != (E, d, f) or not 0 < attrs["top_k"] <= E):
        raise IRError(f"moe_ffn: shapes x {x}, router {router}, gate {wg}, up {wu}, "
                      f"down {wd} or top_k {attrs['top_k']} do not match")
    return (x,)


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def _moe(xs, attrs):  # noqa: ANN001, ANN202
    x, router, wg, wu, wd = xs
    k = attrs["top_k"]
    logits = x @ router.T                                        # (N, E)
    idx = np.argsort(-logits, axis=-1, kind="stable")[:, :k]     # (N, k)
    if attrs.get("norm_topk", True):  # softmax over the top-k logits
        top = np.take_along_axis(logits, idx, axis=-1)
        gates = np.exp(top - top.max(axis=-1, keepdims=True))
        gates = gates / gates.sum(axis=-1, keepdims=True)
    else:  # softmax over all E logits, the top k of them kept as they are
        probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
        gates = np.take_along_axis(probs / probs.sum(axis=-1, keepdims=True), idx, axis=-1)
    out = np.zeros_like(x)
    for e in range(router.shape[0]):
        rows, slot = np.nonzero(idx == e)
        if rows.size == 0:
            continue
        xe = x[rows]
        h = _silu(xe @ wg[e].T) * (xe @ wu[e].T)
        np.add.at(out, rows, (h @ wd[e].T) * gates[rows, slot, None])
    return out


def expected_active_experts(tokens: int, experts: int, top_k: int) -> float:
    """Expected distinct experts hit by `tokens` tokens routing to top_k of
    `experts` each, with uniform routing: E * (1 - (1 - k/E)^N)."""
    return experts * (1.0 - (1.0 - top_k / experts) ** tokens)


def moe_active_fraction(node) -> float:  # noqa: ANN001
    """Fraction of a moe_ffn's expert weights one token uses: top_k / E."""
    return node.attrs["top_k"] / node.inputs[2].type.shape[0]


def _moe_cost(node) -> Cost:  # noqa: ANN001
    x, router, wg, wu, wd = (v.type for v in node.inputs)
    N, d = x.shape
    E, f = wg.shape[0], wg.shape[1]
    k = node.attrs["top_k"]
    flops = 2 * N * d * E + N * k * (3 * 2 * d * f + 4 * f + d)
    hit = expected_active_experts(N, E, k) / E
    weights = router.nbytes + hit * (wg.nbytes + wu.nbytes + wd.nbytes)
    return Cost(flops, int(x.nbytes + weights), node.type.nbytes)


def _moe_gemms(node) -> tuple[Gemm, ...]:  # noqa: ANN001
    """The router's (N, E, d) product, then per routed expert hit (expected
    distinct experts, uniform routing) the fused gate+up (rows, 2f, d) and the
    down (rows, d, f) products, rows = the tokens an expert gets, balanced."""
    N, d = node.inputs[0].type.shape
    E, f = node.inputs[2].type.shape[:2]
    k = node.attrs["top_k"]
    active = max(1, round(expected_active_experts(N, E, k)))
    rows = max(1, math.ceil(N * k / active))
    return (Gemm(N, E, d, 1, ".router"),
            Gemm(rows, 2 * f, d, active, ".gate_up"),
            Gemm(rows, d, f, active, ".down"))


define("moe_ffn", infer=_moe_type, run=_moe, cost=_moe_cost, arity=(5, 5), kind="moe",
       gemms=_moe_gemms,
       doc="top-k routed SwiGLU experts: x (N,d), router (E,d), gate/up (E,f,d), "
           "down (E,d,f); gates = softmax over the top-k router logits (the softmax over "
           "all E renormalised over the top k); norm_topk=false: the softmax over all E, "
           "not renormalised (Qwen3-MoE's norm_topk_prob)",
       attrs=("top_k",), optional_attrs=("norm_topk",))
