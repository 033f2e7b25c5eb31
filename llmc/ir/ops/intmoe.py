"""`int_moe_ffn`: top-k routed SwiGLU experts in integer arithmetic only (the
integer twin of `moe_ffn`, llmc/ir/ops/nn.py; kernels of llmc/ir/ops/intops.py).

Routing is data dependent: which rows each expert multiplies is decided at run
time by the router's top-k. The existing integer ops are dense, so expressing
the layer with them would run every expert on every token (E / k times the
work, and a cost that says so); one op, like `moe_ffn`, keeps the routed work
and the routed cost.

Per token (x i8 (N, d), real x = x_int * s_x), with the dense FFN's kernels:

  logits  = rshift(x @ router^T * rq_expert[:, 0], router_shift)    fixed point, `frac` bits
  top-k   = the k largest logits, ties to the lower expert index (stable)
  gates   = I-BERT i-softmax (intops.int_softmax, `prob_bits` unsigned) over the
            k kept logits (norm_topk) or over all E, read at the k kept (not)
  expert e, for the rows routed to it:
    g   = rq16(x @ w_gate[e]^T, rq_gate[e], gate_shift)          i16
    u   = rq16(x @ w_up[e]^T,   rq_up[e],   up_shift)            i16
    s   = int_silu(g; rq_expert[e, 1], silu_in_shift, frac,
                      rq_expert[e, 2], silu_out_shift)           i16
    p   = rq8(s * u, rq_expert[e, 3], prod_shift)                i8
    y_e = rq32(p @ w_down[e]^T, rq_down[e], down_shift)          i32 at the output scale
  out  += rshift(y_e * gate, prob_bits)                          summed over the k slots

where rqB(a, m, s) = clamp(rshift(a * m, s)) to the symmetric B-bit range. The
output is i32 at one per-tensor scale (the residual stream's format). Weights:
router i8 (E, d); experts i8 or int4 packed two per byte along their last dim
(u8 (E, f, d/2), u8 (E, d, f/2) @int4x2_lane32, reduction dim zero-padded) with
u8 group scales as `int_linear`'s (docs/quant_layouts.md section 3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from llmc.errors import IRError
from llmc.ir import dtypes
from llmc.ir.ops.intops import (
    INT32_MAX,
    int_matmul,
    int_sigmoid,
    int_softmax,
    qrange,
    rshift,
)
from llmc.ir.ops.nn import _moe_gemms, expected_active_experts
from llmc.ir.ops.quant import INT4_LAYOUT
from llmc.ir.ops.registry import Cost, define
from llmc.ir.types import TensorType

# attribute names of the requantization shifts, in dataflow order
SHIFTS = ("router_shift", "gate_shift", "up_shift", "silu_in_shift", "silu_out_shift",
          "prod_shift", "down_shift")
RQ_EXPERT_COLS = ("router", "silu_in", "silu_out", "prod")  # columns of rq_expert (E, 4)


def _expert_k(w: TensorType) -> int:
    """Reduction length of a stacked expert weight (E, rows, K | K/2 packed)."""
    return 2 * w.shape[2] if w.layout == INT4_LAYOUT else w.shape[2]


def _check_expert_weight(w: TensorType, rows: int, k: int, what: str, packed: bool) -> int:
    ok_dtype = (w.dtype == dtypes.u8 and w.layout == INT4_LAYOUT) if packed else \
        (w.dtype == dtypes.i8 and w.layout is None)
    if w.rank != 3 or w.shape[1] != rows or not ok_dtype or _expert_k(w) < k:
        form = f"u8 (E, {rows}, K/2)@{INT4_LAYOUT}" if packed else f"i8 (E, {rows}, {k})"
        raise IRError(f"int_moe_ffn: {what} {w} must be {form} with K >= {k}")
    return _expert_k(w)


def _int_moe_type(types, attrs):  # noqa: ANN001, ANN202
    x, router, wg, wu, wd, rq_e, rq_g, rq_u, rq_d = types[:9]
    if x.dtype != dtypes.i8 or x.rank != 2:
        raise IRError(f"int_moe_ffn: x {x} must be i8 (N, d)")
    N, d = x.shape
    E, f = wg.shape[0], wg.shape[1]
    packed = wg.layout == INT4_LAYOUT
    if router.dtype != dtypes.i8 or router.shape != (E, d):
        raise IRError(f"int_moe_ffn: router {router} must be i8 ({E}, {d})")
    kg = _check_expert_weight(wg, f, d, "w_gate", packed)
    if wu.shape != wg.shape or wu.dtype != wg.dtype or wu.layout != wg.layout:
        raise IRError(f"int_moe_ffn: w_up {wu} must match w_gate {wg}")
    if wd.shape[0] != E:
        raise IRError(f"int_moe_ffn: w_down {wd} must hold {E} experts")
    kd = _check_expert_weight(wd, d, f, "w_down", packed)
    for t, shape, what in ((rq_e, (E, len(RQ_EXPERT_COLS)), "rq_expert"),
                           (rq_g, (E, f), "rq_gate"), (rq_u, (E, f), "rq_up"),
                           (rq_d, (E, d), "rq_down")):
        if t.dtype != dtypes.i32 or t.shape != shape:
            raise IRError(f"int_moe_ffn: {what} {t} must be i32 {list(shape)}")
    if not 0 < attrs["top_k"] <= E:
        raise IRError(f"int_moe_ffn: top_k {attrs['top_k']} must lie in 1..{E}")
    g = attrs.get("group", 0)
    if len(types) > 9:
        want = ((E, f, kg // g), (E, f, kg // g), (E, d, kd // g)) if g else ()
        got = tuple(t.shape for t in types[9:])
        if not g or kg % g or kd % g or got != want or \
                any(t.dtype != dtypes.u8 for t in types[9:]):
            raise IRError(f"int_moe_ffn: group scales {', '.join(map(str, types[9:]))} must "
                          f"be u8 {want} with a `group` attribute dividing {kg} and {kd}")
    elif g:
        raise IRError("int_moe_ffn: `group` needs the three group-scale inputs")
    return (TensorType((N, d), dtypes.i32),)


def _rq(a: np.ndarray, m: np.ndarray | int, shift: int, dtype: dtypes.DType) -> np.ndarray:
    """clamp(rshift(a * m, shift)) to dtype's symmetric range (requant's rule)."""
    y = rshift(np.asarray(a, np.int64) * np.asarray(m, np.int64), shift)
    return np.clip(y, *qrange(dtype))


def moe_route(x: np.ndarray, router: np.ndarray, rq_router: np.ndarray,
              attrs: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fixed-point logits (N, E), chosen experts (N, k), gates (N, k) unsigned
    prob_bits) of int_moe_ffn's router."""
    acc = int_matmul(np.asarray(x, np.int64), router, what="int_moe_ffn router")
    logits = rshift(acc.astype(np.int64) * np.asarray(rq_router, np.int64),
                    attrs["router_shift"])
    if logits.size and np.abs(logits).max() > INT32_MAX:
        raise IRError("int_moe_ffn: router logits overflow int32 at this fixed point")
    idx = np.argsort(-logits, axis=-1, kind="stable")[:, :attrs["top_k"]]
    frac, pb = attrs["frac"], attrs["prob_bits"]
    if attrs["norm_topk"]:
        top = np.take_along_axis(logits, idx, axis=-1)
        gates = int_softmax(top, np.ones(top.shape, bool), frac, pb)
    else:
        probs = int_softmax(logits, np.ones(logits.shape, bool), frac, pb)
        gates = np.take_along_axis(probs, idx, axis=-1)
    return logits, idx, gates


def _int_moe(xs, attrs):  # noqa: ANN001, ANN202
    x, router, wg, wu, wd, rq_e, rq_g, rq_u, rq_d = xs[:9]
    gs = xs[9:12] if len(xs) > 9 else (None, None, None)
    group = attrs.get("group", 0)
    x = np.asarray(x, np.int64)
    rq_e = np.asarray(rq_e, np.int64)
    _, idx, gates = moe_route(x, router, rq_e[:, 0], attrs)
    frac, sh = attrs["frac"], {k: attrs[k] for k in SHIFTS}
    out = np.zeros(x.shape, np.int64)
    for e in range(router.shape[0]):
        rows, slot = np.nonzero(idx == e)
        if rows.size == 0:
            continue
        xe = x[rows]

        def lin(a: np.ndarray, w: np.ndarray, s: np.ndarray | None, e: int = e) -> np.ndarray:
            return int_matmul(a, w[e], None if s is None else s[e], group, "int_moe_ffn")

        g = _rq(lin(xe, wg, gs[0]), rq_g[e], sh["gate_shift"], dtypes.i16)
        u = _rq(lin(xe, wu, gs[1]), rq_u[e], sh["up_shift"], dtypes.i16)
        xf = rshift(g * rq_e[e, 1], sh["silu_in_shift"])      # fixed point, frac bits
        s = _rq(g * int_sigmoid(xf, frac), rq_e[e, 2], sh["silu_out_shift"], dtypes.i16)
        p = _rq(s * u, rq_e[e, 3], sh["prod_shift"], dtypes.i8)
        y = _rq(lin(p, wd, gs[2]), rq_d[e], sh["down_shift"], dtypes.i32)
        np.add.at(out, rows, rshift(y * gates[rows, slot, None], attrs["prob_bits"]))
    return np.clip(out, *qrange(dtypes.i32)).astype(np.int32)


def _hit(node) -> float:  # noqa: ANN001
    """Expected fraction of the experts a call reads (moe_ffn's uniform-routing rule)."""
    N = node.inputs[0].type.shape[0]
    E = node.inputs[2].type.shape[0]
    return expected_active_experts(N, E, node.attrs["top_k"]) / E


def _int_moe_cost(node) -> Cost:  # noqa: ANN001
    """FLOPs of the router, its i-softmax (~8 integer ops per logit) and the k
    routed experts per token: the three products (6 d f), ~19 f for the
    requantizations, SiLU (int_silu's 12) and the gate-up product, ~5 d for the
    down requantization and the gated sum. Bytes: x, the router and rq_expert
    whole, every per-expert tensor (weights, group scales, requant tables) at the
    expected fraction of experts hit (as moe_ffn), the output once."""
    t = [v.type for v in node.inputs]
    N, d = t[0].shape
    E, f = t[2].shape[:2]
    k = node.attrs["top_k"]
    flops = 2 * N * d * E + 8 * N * E + N * k * (6 * d * f + 19 * f + 5 * d)
    per_expert = sum(v.nbytes for i, v in enumerate(t) if i in (2, 3, 4, 6, 7, 8) or i > 8)
    read = t[0].nbytes + t[1].nbytes + t[5].nbytes + _hit(node) * per_expert
    return Cost(flops, int(read), node.type.nbytes)


def _int_moe_weights(node) -> dict[int, int]:  # noqa: ANN001
    """Logical weight elements: the router's own; each expert matrix E x rows x
    the unpadded reduction length; requant tables and group scales are format data."""
    N, d = node.inputs[0].type.shape
    E, f = node.inputs[2].type.shape[:2]
    fmt = dict.fromkeys(range(5, len(node.inputs)), 0)
    return {2: E * f * d, 3: E * f * d, 4: E * d * f, **fmt}


define("int_moe_ffn", infer=_int_moe_type, run=_int_moe, cost=_int_moe_cost, arity=(9, 12),
       kind="moe", weights=_int_moe_weights, gemms=_moe_gemms,
       attrs=("top_k", "norm_topk", "frac", "prob_bits", *SHIFTS), optional_attrs=("group",),
       doc="integer top-k routed SwiGLU experts -> i32 (N, d): x i8 (N, d), router i8 "
           "(E, d), w_gate/w_up i8 (E, f, d) | int4 u8 (E, f, d/2)@int4x2_lane32, w_down "
           "(E, d, f) likewise, rq_expert i32 (E, 4) [router, silu_in, silu_out, prod], "
           "rq_gate/rq_up i32 (E, f), rq_down i32 (E, d), optional u8 group scales; "
           "logits = rshift(x router^T * rq_expert[:, 0], router_shift) (frac bits); top_k "
           "largest, ties to the lower index; gates = i-softmax (prob_bits) over the top k "
           "(norm_topk) or over all E at the top k; per expert g, u = rq16(x w^T * rq, "
           "shift), s = int_silu(g) (mults rq_expert[e, 1:3]), p = rq8(s u * "
           "rq_expert[e, 3]), y = rq32(p w_down^T * rq_down, down_shift); "
           "out = sum over slots of rshift(y * gate, prob_bits), saturated to i32")
