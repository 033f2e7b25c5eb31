"""Sparse weights and sparse activations as explicit ops.

`sparse_linear` holds a pruned weight in a compressed form, as graph tensors
(params), never in attributes:

  pattern "2:4" (the pattern GPU sparse tensor cores run, Mishra et al. 2021,
  arXiv 2104.08378; NVIDIA cuSPARSELt's layout): in every group of 4
  consecutive input columns of a row, 2 weights are kept.
      values (out, in/2)  the kept weights, group by group, in column order
      meta   (out, in/4)  u4: one nibble per group = i0 | i1 << 2, the 2-bit
                          positions (i0 < i1) of the kept weights in the group
  pattern "unstructured" (CSR, row-major):
      values  (nnz,)      the kept weights, row by row, in column order
      indices (nnz,)      their columns (i16 when in_features <= 32768, else i32)
      row_ptr (out + 1,)  i32: row r's weights are values[row_ptr[r]:row_ptr[r+1]]

The interpreter decompresses and runs the dense product, so a sparse_linear
gives exactly the result of `linear` with the pruned dense weight. Its cost
counts only the kept multiply-adds and the compressed bytes. Its matrix
product (`gemms`) is the dense (tokens, out, in) one: a dense systolic array
multiplies the zeros too (the weight is expanded from values and metadata on
the way in), so a 2:4 or CSR weight runs at the dense shape unless a device
declares a sparse matrix unit; the simulator models none yet.

`act_sparse_linear` is a linear whose input channels below a per-channel
threshold are zeroed (CHESS, Zhang et al. 2024, arXiv 2409.01366; the
FATReLU thresholds of ProSparse, Song et al. 2024, arXiv 2402.13516), so a
kernel can skip the weight columns of inactive channels. Its `sparsity`
attribute is the expected fraction of zeroed channels (calibrated), which
its cost uses. Its product, likewise, is the dense one: an array cannot
skip the columns of channels that are zero in some rows only.
"""

from __future__ import annotations

import numpy as np

from llmc.errors import IRError
from llmc.ir import dtypes
from llmc.ir.ops.registry import Cost, define, io_bytes, linear_gemms
from llmc.ir.types import TensorType

PATTERNS = ("2:4", "unstructured")

# ---- the compressed formats (numpy; the passes build them, the op reads them)


def compress_2_4(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values (out, in/2), meta (out, in/4) uint8 nibbles) of a weight with
    at most 2 nonzeros per group of 4; where a group has fewer, the first
    zero positions are kept (as stored zeros)."""
    out, n = w.shape
    if n % 4:
        raise IRError(f"2:4 needs in_features divisible by 4, got {n}")
    g = w.reshape(out, n // 4, 4)
    # rank positions: nonzeros first (stable, so ties keep column order)
    order = np.argsort(g == 0, axis=-1, kind="stable")[..., :2]
    if np.count_nonzero(g, axis=-1).max(initial=0) > 2:
        raise IRError("2:4: a group of 4 has more than 2 nonzeros")
    idx = np.sort(order, axis=-1)                                   # (out, in/4, 2)
    values = np.take_along_axis(g, idx, axis=-1).reshape(out, n // 2)
    meta = (idx[..., 0] | (idx[..., 1] << 2)).astype(np.uint8)
    return values, meta


def decompress_2_4(values: np.ndarray, meta: np.ndarray) -> np.ndarray:
    """The dense (out, in) weight of a 2:4 (values, meta) pair."""
    out, groups = meta.shape
    m = meta.astype(np.int64)
    idx = np.stack([m & 3, m >> 2], axis=-1)                        # (out, groups, 2)
    dense = np.zeros((out, groups, 4), dtype=values.dtype)
    np.put_along_axis(dense, idx, values.reshape(out, groups, 2), axis=-1)
    return dense.reshape(out, groups * 4)


def index_dtype(in_features: int) -> dtypes.DType:
    """Column-index dtype of the CSR form: 2 bytes when the width allows."""
    return dtypes.i16 if in_features <= 2 ** 15 else dtypes.i32


def compress_csr(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, column indices, row_ptr) of the nonzeros of w, row-major."""
    rows, cols = np.nonzero(w)
    counts = np.bincount(rows, minlength=w.shape[0])
    row_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return w[rows, cols], cols.astype(index_dtype(w.shape[1]).np), row_ptr


def decompress_csr(values: np.ndarray, indices: np.ndarray, row_ptr: np.ndarray,
                   in_features: int) -> np.ndarray:
    out = row_ptr.shape[0] - 1
    if row_ptr[-1] != values.shape[0] or np.any(np.diff(row_ptr) < 0):
        raise IRError(f"sparse_linear: row_ptr does not describe {values.shape[0]} values")
    if indices.size and (indices.min() < 0 or indices.max() >= in_features):
        raise IRError(f"sparse_linear: column index out of range 0..{in_features - 1}")
    dense = np.zeros((out, in_features), dtype=values.dtype)
    rows = np.repeat(np.arange(out), np.diff(row_ptr))
    dense[rows, indices.astype(np.int64)] = values
    return dense


def nnz_of(out: int, in_features: int, density: float) -> int:
    """Kept weights of an (out, in) matrix at `density` (shape-only graphs)."""
    return int(round(density * out * in_features))


# ---- sparse_linear -------------------------------------------------------------


def _weight_inputs(attrs) -> int:  # noqa: ANN001
    """How many inputs after x hold the compressed weight (bias follows)."""
    return 2 if attrs["pattern"] == "2:4" else 3


def _sparse_linear_type(types, attrs):  # noqa: ANN001, ANN202
    pattern, n_in = attrs["pattern"], attrs["in_features"]
    if pattern not in PATTERNS:
        raise IRError(f"sparse_linear: pattern {pattern!r} is not one of {PATTERNS}")
    nw = _weight_inputs(attrs)
    if len(types) not in (1 + nw, 2 + nw):
        raise IRError(f"sparse_linear {pattern}: takes x, {nw} weight tensors and an optional "
                      f"bias, got {len(types)} inputs")
    x, values = types[0], types[1]
    if x.shape[-1] != n_in or not 0 < attrs["density"] <= 1:
        raise IRError(f"sparse_linear: x {x} does not have in_features={n_in} "
                      f"or density {attrs['density']} is not in (0, 1]")
    if pattern == "2:4":
        meta = types[2]
        out = meta.shape[0]
        if (n_in % 4 or meta.shape != (out, n_in // 4) or meta.dtype != dtypes.u4
                or values.shape != (out, n_in // 2)):
            raise IRError(f"sparse_linear 2:4: values {values} / meta {meta} do not fit "
                          f"in_features {n_in} (want (out, {n_in // 2}) and u4 (out, {n_in // 4}))")
    else:
        indices, row_ptr = types[2], types[3]
        out = row_ptr.shape[0] - 1
        if (values.rank != 1 or indices.shape != values.shape or not indices.dtype.is_int
                or row_ptr.rank != 1 or row_ptr.dtype != dtypes.i32):
            raise IRError(f"sparse_linear unstructured: values {values}, indices {indices}, "
                          f"row_ptr {row_ptr} are not a CSR matrix")
        if abs(values.shape[0] - attrs["density"] * out * n_in) > 1:
            raise IRError(f"sparse_linear: {values.shape[0]} values but density "
                          f"{attrs['density']} of ({out}, {n_in})")
    if len(types) == 2 + nw and types[-1].shape != (out,):
        raise IRError(f"sparse_linear: bias {types[-1]} must have shape [{out}]")
    return (TensorType(x.shape[:-1] + (out,), x.dtype),)


def dense_weight(xs: list[np.ndarray], attrs) -> np.ndarray:  # noqa: ANN001
    """The dense (out, in) weight a sparse_linear's inputs encode."""
    if attrs["pattern"] == "2:4":
        return decompress_2_4(xs[1], xs[2])
    return decompress_csr(xs[1], xs[2], xs[3], attrs["in_features"])


def _sparse_linear(xs, attrs):  # noqa: ANN001, ANN202
    y = xs[0] @ dense_weight(xs, attrs).T
    return y + xs[-1] if len(xs) == 2 + _weight_inputs(attrs) else y


def _sparse_linear_cost(node) -> Cost:  # noqa: ANN001
    out = node.type
    tokens = out.numel // out.shape[-1]
    nnz = node.inputs[1].type.numel
    has_bias = len(node.inputs) == 2 + _weight_inputs(node.attrs)
    flops = 2 * tokens * nnz + (out.numel if has_bias else 0)
    return Cost(flops, *io_bytes(node))  # the compressed tensors' bytes, as stored


def _sparse_linear_weights(node) -> dict[int, int]:  # noqa: ANN001
    """The values encode the dense (out, in) matrix; metadata/indices are format data."""
    nw = _weight_inputs(node.attrs)
    return {1: node.type.shape[-1] * node.attrs["in_features"],
            **dict.fromkeys(range(2, 1 + nw), 0)}


define("sparse_linear", infer=_sparse_linear_type, run=_sparse_linear, cost=_sparse_linear_cost,
       arity=(3, 5), kind="linalg", weights=_sparse_linear_weights, gemms=linear_gemms,
       doc="x @ W.T + b with W pruned and compressed: pattern '2:4' takes (x, values, meta"
           "[, bias]), 'unstructured' (CSR) takes (x, values, indices, row_ptr[, bias]); "
           "density = kept fraction; method = how the weights were chosen (informative)",
       attrs=("pattern", "in_features", "density"), optional_attrs=("method",))

# ---- act_sparse_linear ---------------------------------------------------------


def _act_sparse_type(types, attrs):  # noqa: ANN001, ANN202
    x, w, tau = types[:3]
    if w.rank != 2 or x.shape[-1] != w.shape[1] or tau.shape != (w.shape[1],):
        raise IRError(f"act_sparse_linear: x {x}, weight {w} (out, in) and thresholds {tau} "
                      f"(in,) do not match")
    if len(types) > 3 and types[3].shape != (w.shape[0],):
        raise IRError(f"act_sparse_linear: bias {types[3]} must have shape [{w.shape[0]}]")
    if not 0 <= attrs["sparsity"] < 1:
        raise IRError(f"act_sparse_linear: sparsity {attrs['sparsity']} is not in [0, 1)")
    return (TensorType(x.shape[:-1] + (w.shape[0],), x.dtype),)


def threshold_channels(x: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """x with every entry below its channel's threshold in magnitude set to 0."""
    return np.where(np.abs(x) >= tau, x, np.zeros((), x.dtype))


def _act_sparse_linear(xs, attrs):  # noqa: ANN001, ANN202
    y = threshold_channels(xs[0], xs[2]) @ xs[1].T
    return y + xs[3] if len(xs) > 3 else y


def weight_fraction_read(sparsity: float, tokens: int) -> float:
    """Expected fraction of weight columns a batch of `tokens` rows needs:
    a column is skipped only when its channel is inactive in every row
    (channels taken as independent: 1 - sparsity ** tokens)."""
    return 1.0 - sparsity ** tokens


def _act_sparse_cost(node) -> Cost:  # noqa: ANN001
    x, w = node.inputs[0].type, node.inputs[1].type
    out = node.type
    tokens = x.numel // x.shape[-1]
    s = node.attrs["sparsity"]
    flops = 2 * out.numel * x.shape[-1] * (1 - s) + x.numel  # kept MACs + one compare per entry
    if len(node.inputs) > 3:
        flops += out.numel
    others = sum(v.type.nbytes for i, v in enumerate(node.inputs) if i != 1)
    read = others + w.nbytes * weight_fraction_read(s, tokens)
    return Cost(flops, int(round(read)), out.nbytes)


define("act_sparse_linear", infer=_act_sparse_type, run=_act_sparse_linear,
       cost=_act_sparse_cost, arity=(3, 4), kind="linalg", gemms=linear_gemms,
       doc="linear(where(|x| >= tau[c], x, 0), w[, b]): channel-wise activation thresholds "
           "tau (in,) (CHESS); sparsity = expected fraction of zeroed input channels, whose "
           "multiply-adds and weight columns a kernel skips",
       attrs=("sparsity",))
