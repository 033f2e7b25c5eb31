"""Quantization ops for block formats (BFP, OCP MX) and weight-only int4/int8.

A block-format tensor is held as float32 values exactly representable in its
format (dtypes.py), so `quantize` rounds and `dequantize` is exact. The
rounding itself is defined once, in llmc.ir.formats; int4 packing in
llmc.ir.pack (layout: docs/quant_layouts.md). Costs count bytes at
the quantized dtype's bits, so the cost model sees what a scheme saves.
"""

from __future__ import annotations

import numpy as np

from llmc.errors import IRError
from llmc.ir import dtypes
from llmc.ir.formats import quantize_block
from llmc.ir.ops.registry import (
    Cost,
    define,
    io_bytes,
    linear_gemms,
    quantized_weight,
    streaming_cost,
)
from llmc.ir.pack import LAYOUT as INT4_LAYOUT
from llmc.ir.pack import unpack_int4
from llmc.ir.types import TensorType


def _quantize_type(types, attrs):  # noqa: ANN001, ANN202
    x, to = types[0], attrs["dtype"]
    if to.kind != "block":
        raise IRError(f"quantize: {to} is not a block format (bfp*/mx*)")
    if not x.dtype.is_float or x.dtype.kind == "block":
        raise IRError(f"quantize: input {x} must be a plain float tensor")
    if x.rank == 0 or x.shape[-1] % to.block:
        raise IRError(f"quantize: last dim of {x} is not a multiple of block {to.block} "
                      f"(pad the layer or pick a smaller block)")
    return (TensorType(x.shape, to),)


def _quantize(xs, attrs):  # noqa: ANN001, ANN202
    return quantize_block(xs[0], attrs["dtype"])


define("quantize", infer=_quantize_type, run=_quantize, cost=streaming_cost(3),
       arity=(1, 1), kind="elementwise", attrs=("dtype",),
       doc="round a float tensor to block format `dtype` (bfp*/mx*) in blocks along the "
           "last dim: shared exponent per block, RNE, saturating; NaN poisons its block, "
           "Inf saturates (llmc.ir.formats)")


def _dequantize_type(types, attrs):  # noqa: ANN001, ANN202
    x = types[0]
    if x.dtype.kind != "block":
        raise IRError(f"dequantize: {x} is not block-format")
    return (TensorType(x.shape, dtypes.f32),)


define("dequantize", infer=_dequantize_type, run=lambda xs, a: xs[0].astype(np.float32),
       cost=streaming_cost(1), arity=(1, 1), kind="elementwise",
       doc="block format -> f32 (exact: the values are already representable)")


def _float_like(t: TensorType) -> bool:
    return t.dtype.is_float


def _qlinear_type(types, attrs):  # noqa: ANN001, ANN202
    x, w = types[0], types[1]
    if not (_float_like(x) and _float_like(w)) or w.rank != 2 or x.shape[-1] != w.shape[1]:
        raise IRError(f"qlinear: x {x} and weight {w} (out, in) must be float/block and match")
    if len(types) > 2 and types[2].shape != (w.shape[0],):
        raise IRError(f"qlinear: bias {types[2]} must have shape [{w.shape[0]}]")
    return (TensorType(x.shape[:-1] + (w.shape[0],), dtypes.f32),)


def _qlinear(xs, attrs):  # noqa: ANN001, ANN202
    y = xs[0].astype(np.float32) @ xs[1].astype(np.float32).T
    return y + xs[2] if len(xs) > 2 else y


def _linear_cost(node) -> Cost:  # noqa: ANN001
    out = node.type
    k = node.inputs[0].type.shape[-1]
    return Cost(2 * out.numel * k, *io_bytes(node))


define("qlinear", infer=_qlinear_type, run=_qlinear, cost=_linear_cost, arity=(2, 3),
       kind="linalg", weights=quantized_weight(), gemms=linear_gemms,
       doc="x @ w.T (+ b) where x and/or w are block-format (bfp*/mx*): products of block "
           "values, f32 accumulation, f32 out; w is (out_features, in_features)")


# ---- weight-only integer weights with per-group scales (w4a16, w8a16) --------------


def weight_k(w: TensorType) -> int:
    """Elements per row of an integer weight: packed int4 holds two per byte."""
    return 2 * w.shape[1] if w.layout == INT4_LAYOUT else w.shape[1]


def unpack_weight(w: np.ndarray, t: TensorType) -> np.ndarray:
    """Integer weight values (N, K) of a stored weight, int8."""
    if t.layout == INT4_LAYOUT:
        return unpack_int4(w)
    return w.astype(np.int8)


def _check_int_weight(op: str, w: TensorType) -> None:
    packed = w.layout == INT4_LAYOUT and w.dtype == dtypes.u8
    if w.rank != 2 or not (packed or (w.dtype in (dtypes.i8, dtypes.i4) and w.layout is None)):
        raise IRError(f"{op}: weight {w} must be i8/i4 (N, K) or u8 (N, K/2)@{INT4_LAYOUT}")


def _wq_linear_type(types, attrs):  # noqa: ANN001, ANN202
    x, w, s = types
    _check_int_weight("wq_linear", w)
    k_pad, g = weight_k(w), attrs["group"]
    if not x.dtype.is_float or x.dtype.kind == "block":
        raise IRError(f"wq_linear: activation {x} must be a plain float tensor")
    if x.shape[-1] > k_pad or k_pad % g or s.shape != (w.shape[0], k_pad // g):
        raise IRError(f"wq_linear: x {x}, weight {w} (K padded {k_pad}), group {g} and "
                      f"scales {s} do not match (scales must be (N, K_padded / group))")
    return (TensorType(x.shape[:-1] + (w.shape[0],), x.dtype),)


def _wq_linear(xs, attrs):  # noqa: ANN001, ANN202
    x, w, s = xs
    q = _unpacked(w, xs)
    g = attrs["group"]
    n, k_pad = q.shape
    wf = (q.reshape(n, k_pad // g, g).astype(np.float32) * s[..., None]).reshape(n, k_pad)
    return x @ wf[:, : x.shape[-1]].T


def _unpacked(w: np.ndarray, xs) -> np.ndarray:  # noqa: ANN001
    # The run function sees arrays only; a packed weight is uint8 (always int4x2 here).
    if w.dtype == np.uint8:
        return unpack_int4(w)
    return w.astype(np.int8)


def _wq_cost(node) -> Cost:  # noqa: ANN001
    out = node.type
    k = node.inputs[0].type.shape[-1]
    # dequantizing the weight costs one multiply per weight element (per call)
    return Cost(2 * out.numel * k + node.inputs[1].type.numel, *io_bytes(node))


define("wq_linear", infer=_wq_linear_type, run=_wq_linear, cost=_wq_cost, arity=(3, 3),
       kind="linalg", attrs=("group",), weights=quantized_weight((2,)), gemms=linear_gemms,
       doc="weight-only quantized x @ w.T: w int (N, K) i8, or int4 packed two per byte "
           "u8 (N, K/2)@int4x2_lane32 (docs/quant_layouts.md); scales (N, K/group) float; "
           "w_real[n, k] = q[n, k] * scales[n, k // group]; the reduction dim may be "
           "zero-padded past x's K; float accumulation, out in x's dtype")
