"""Scans, sorts, histograms and grouped products: what position ids, masks
and data-dependent expert dispatch are computed with (transformers' MoE
layers sort token-expert pairs by expert, count them with a histogram, take
running sums as group offsets and run one grouped product per projection).

A recognised MoE dispatch is rewritten into one `moe_ffn`
(llmc/passes/moe_routing.py); these ops are its pieces, with their own
semantics so that a graph can be checked before and after that rewrite.
"""

from __future__ import annotations

import math

import numpy as np

from llmc.errors import IRError
from llmc.ir.dtypes import i64
from llmc.ir.ops.registry import Cost, Gemm, define, io_bytes, norm_dim, streaming_cost
from llmc.ir.types import TensorType


def _cumsum_type(types, attrs):  # noqa: ANN001, ANN202
    x = types[0]
    norm_dim(attrs["dim"], x.rank)
    return (x.with_dtype(attrs["dtype"]),)


define("cumsum", infer=_cumsum_type,
       run=lambda xs, a: np.cumsum(xs[0], axis=norm_dim(a["dim"], xs[0].ndim), dtype=a["dtype"].np),
       cost=streaming_cost(1), arity=(1, 1), kind="reduce", attrs=("dim", "dtype"),
       doc="running sum along dim, accumulated and returned in attribute dtype "
           "(torch.cumsum; booleans count as 0/1)")


def _sort_type(types, attrs):  # noqa: ANN001, ANN202
    x = types[0]
    norm_dim(attrs["dim"], x.rank)
    return (x, x.with_dtype(i64))


def _sort(xs, attrs):  # noqa: ANN001, ANN202
    x = xs[0]
    d = norm_dim(attrs["dim"], x.ndim)
    keys = x.astype(np.int64) if x.dtype == np.bool_ else x
    if attrs["descending"]:  # stable descending: equal keys keep their order
        flipped = np.flip(keys, axis=d)
        order = np.flip(np.argsort(flipped, axis=d, kind="stable"), axis=d)
        order = x.shape[d] - 1 - order
    else:
        order = np.argsort(keys, axis=d, kind="stable")
    return np.take_along_axis(x, order, axis=d), order.astype(np.int64)


def _sort_cost(node) -> Cost:  # noqa: ANN001
    x = node.inputs[0].type
    n = x.shape[norm_dim(node.attrs["dim"], x.rank)] if x.rank else 1
    return Cost(x.numel * max(1, math.ceil(math.log2(max(n, 2)))), *io_bytes(node))


define("sort", infer=_sort_type, run=_sort, cost=_sort_cost, arity=(1, 1), kind="reduce",
       attrs=("dim", "descending"),
       doc="values sorted along dim and the int64 positions they came from; stable (equal "
           "values keep their order); cost n log2 n comparisons per row")


def _histc_type(types, attrs):  # noqa: ANN001, ANN202
    x = types[0]
    if not x.dtype.is_float or attrs["bins"] <= 0:
        raise IRError(f"histc: needs a float tensor and bins > 0, got {x}, bins={attrs['bins']}")
    return (TensorType((attrs["bins"],), x.dtype),)


def _histc(xs, attrs):  # noqa: ANN001, ANN202
    x = xs[0].ravel()
    bins = attrs["bins"]
    lo, hi = x.dtype.type(attrs["min"]), x.dtype.type(attrs["max"])
    if lo == hi and x.size:  # torch: the data's own range
        lo, hi = x.min(), x.max()
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    inside = x[(x >= lo) & (x <= hi)]
    pos = ((inside - lo) / (hi - lo) * x.dtype.type(bins)).astype(np.int64)
    pos = np.minimum(pos, bins - 1)  # x == max falls in the last bin
    return np.bincount(pos, minlength=bins).astype(x.dtype)


define("histc", infer=_histc_type, run=_histc,
       cost=lambda n: Cost(3 * n.inputs[0].type.numel, *io_bytes(n)), arity=(1, 1),
       kind="reduce", attrs=("bins", "min", "max"),
       doc="counts of x in `bins` equal bins over [min, max] (values outside are dropped, "
           "max falls in the last bin; min == max: the data's range), as x's dtype (torch.histc)")


def _grouped_mm_type(types, attrs):  # noqa: ANN001, ANN202
    x, w, offs = types
    if x.rank != 2 or w.rank != 3 or x.shape[1] != w.shape[1] or offs.shape != (w.shape[0],) \
            or not offs.dtype.is_int:
        raise IRError(f"grouped_mm: x {x} (S, K), w {w} (G, K, N) and offsets {offs} (G,) "
                      "do not match")
    return (TensorType((x.shape[0], w.shape[2]), x.dtype),)


def _grouped_mm(xs, attrs):  # noqa: ANN001, ANN202
    x, w, offs = xs
    out = np.zeros((x.shape[0], w.shape[2]), dtype=x.dtype)
    start = 0
    for g, end in enumerate(offs.tolist()):
        if not start <= end <= x.shape[0]:
            raise IRError(f"grouped_mm: offsets {offs.tolist()} are not increasing within "
                          f"0..{x.shape[0]}")
        out[start:end] = x[start:end] @ w[g]
        start = end
    return out


def _grouped_mm_gemms(node) -> tuple[Gemm, ...]:  # noqa: ANN001
    """One (rows, N, K) product per group; the rows each group gets are data,
    so they are taken as balanced: ceil(S / G)."""
    (s, k), (g, _, n) = node.inputs[0].type.shape, node.inputs[1].type.shape
    return (Gemm(max(1, math.ceil(s / g)), n, k, g),)


define("grouped_mm", infer=_grouped_mm_type, run=_grouped_mm,
       cost=lambda n: Cost(2 * n.type.numel * n.inputs[0].type.shape[1], *io_bytes(n)),
       arity=(3, 3), kind="linalg", gemms=_grouped_mm_gemms,
       doc="ragged grouped product: rows offs[g-1]:offs[g] of x (S, K) times w[g] (K, N), "
           "offs (G,) running row counts; rows past offs[-1] are zero "
           "(torch._grouped_mm, transformers' grouped_mm_fallback)")
