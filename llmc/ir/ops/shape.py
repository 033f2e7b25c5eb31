"""Sources (graph inputs, weights, constants, iota) and data-movement ops."""

from __future__ import annotations

import math

import numpy as np

from llmc.errors import IRError
from llmc.ir.ops.registry import Cost, define, free, io_bytes, norm_dim, streaming_cost
from llmc.ir.types import TensorType


def _no_infer(types, attrs):  # noqa: ANN001, ANN202
    raise IRError("input/param nodes take their type from the graph, not a rule")


def _no_run(xs, attrs):  # noqa: ANN001, ANN202
    raise IRError("input/param nodes are bound by the interpreter, not run")


define("input", infer=_no_infer, run=_no_run, cost=free, arity=(0, 0), kind="source",
       doc="a graph argument; its SSA name is the argument's name")
define("param", infer=_no_infer, run=_no_run, cost=free, arity=(0, 0), kind="source",
       doc="a named weight (buffer=true: a non-trainable table such as RoPE's); "
           "values live in Graph.params", attrs=("name",), optional_attrs=("buffer",))


def _const_type(types, attrs):  # noqa: ANN001, ANN202
    return (TensorType(attrs["shape"], attrs["dtype"]),)


define("const", infer=_const_type,
       run=lambda xs, a: np.full(a["shape"], a["value"], dtype=a["dtype"].np),
       cost=free, arity=(0, 0), kind="source",
       doc="a tensor filled with one scalar value", attrs=("value", "shape", "dtype"))


def _arange_type(types, attrs):  # noqa: ANN001, ANN202
    n = max(0, math.ceil((attrs["end"] - attrs["start"]) / attrs["step"]))
    return (TensorType((n,), attrs["dtype"]),)


define("arange", infer=_arange_type,
       run=lambda xs, a: np.arange(a["start"], a["end"], a["step"], dtype=a["dtype"].np),
       cost=free, arity=(0, 0), kind="source", doc="start, start+step, ... < end",
       attrs=("start", "end", "step", "dtype"))


def _reshape_type(types, attrs):  # noqa: ANN001, ANN202
    x, shape = types[0], tuple(attrs["shape"])
    if math.prod(shape) != x.numel or any(s < 0 for s in shape):
        raise IRError(f"reshape: {x} cannot become shape {list(shape)}")
    return (x.with_shape(shape),)


define("reshape", infer=_reshape_type, run=lambda xs, a: xs[0].reshape(a["shape"]),
       cost=free, arity=(1, 1), kind="view", doc="same elements, new shape (row-major)",
       attrs=("shape",))


def _permute_type(types, attrs):  # noqa: ANN001, ANN202
    x, perm = types[0], tuple(attrs["perm"])
    if sorted(perm) != list(range(x.rank)):
        raise IRError(f"permute: {list(perm)} is not a permutation of {x.rank} dims")
    return (x.with_shape(tuple(x.shape[p] for p in perm)),)


define("permute", infer=_permute_type, run=lambda xs, a: np.transpose(xs[0], a["perm"]),
       cost=free, arity=(1, 1), kind="view", doc="reorder dims", attrs=("perm",))


def _expand_type(types, attrs):  # noqa: ANN001, ANN202
    x, shape = types[0], tuple(attrs["shape"])
    try:
        np.broadcast_shapes(x.shape, shape)
    except ValueError:
        raise IRError(f"expand: {x} cannot broadcast to {list(shape)}") from None
    if tuple(np.broadcast_shapes(x.shape, shape)) != shape:
        raise IRError(f"expand: {x} cannot broadcast to {list(shape)}")
    return (x.with_shape(shape),)


define("expand", infer=_expand_type, run=lambda xs, a: np.broadcast_to(xs[0], a["shape"]),
       cost=free, arity=(1, 1), kind="view", doc="broadcast to a larger shape",
       attrs=("shape",))


def _slice_bounds(size: int, attrs) -> range:  # noqa: ANN001
    return range(size)[slice(attrs["start"], attrs["end"], attrs["step"])]


def _slice_type(types, attrs):  # noqa: ANN001, ANN202
    x = types[0]
    d = norm_dim(attrs["dim"], x.rank)
    shape = list(x.shape)
    shape[d] = len(_slice_bounds(x.shape[d], attrs))
    return (x.with_shape(tuple(shape)),)


def _slice(xs, attrs):  # noqa: ANN001, ANN202
    x = xs[0]
    d = norm_dim(attrs["dim"], x.ndim)
    r = _slice_bounds(x.shape[d], attrs)
    index = [slice(None)] * x.ndim
    index[d] = slice(r.start, r.stop, r.step)
    return x[tuple(index)]


define("slice", infer=_slice_type, run=_slice, cost=free, arity=(1, 1), kind="view",
       doc="x[start:end:step] along dim (Python slice rules)",
       attrs=("dim", "start", "end", "step"))


def _concat_type(types, attrs):  # noqa: ANN001, ANN202
    first = types[0]
    d = norm_dim(attrs["dim"], first.rank)
    for t in types[1:]:
        if t.rank != first.rank or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape, strict=False))
                                       if i != d) or t.dtype != first.dtype:
            raise IRError(f"concat: {t} does not match {first} outside dim {d}")
    shape = list(first.shape)
    shape[d] = sum(t.shape[d] for t in types)
    return (first.with_shape(tuple(shape)),)


define("concat", infer=_concat_type,
       run=lambda xs, a: np.concatenate(xs, axis=a["dim"]),
       cost=streaming_cost(0), arity=(1, 1 << 16), kind="movement",
       doc="join tensors along dim", attrs=("dim",))


def _index_copy_type(types, attrs):  # noqa: ANN001, ANN202
    x, index, src = types
    d = norm_dim(attrs["dim"], x.rank)
    if not index.dtype.is_int or index.rank != 1:
        raise IRError(f"index_copy: index must be a 1-D integer tensor, got {index}")
    want = list(x.shape)
    want[d] = index.shape[0]
    if list(src.shape) != want:
        raise IRError(f"index_copy: src {src} must have shape {want}")
    return (x,)


def _index_copy(xs, attrs):  # noqa: ANN001, ANN202
    x, index, src = xs
    out = x.copy()
    d = norm_dim(attrs["dim"], x.ndim)
    if index.size and (index.min() < 0 or index.max() >= x.shape[d]):
        raise IRError(f"index_copy: index {index.tolist()} out of range 0..{x.shape[d] - 1}")
    np.moveaxis(out, d, 0)[index] = np.moveaxis(src, d, 0)
    return out


def _index_copy_cost(node) -> Cost:  # noqa: ANN001
    # Done in place on hardware (a KV-cache write): read the source rows and
    # the index, write the rows; the untouched rest of x is not moved.
    src, index = node.inputs[2].type, node.inputs[1].type
    return Cost(0, src.nbytes + index.nbytes, src.nbytes)


define("index_copy", infer=_index_copy_type, run=_index_copy, cost=_index_copy_cost,
       arity=(3, 3), kind="movement",
       doc="x with the slices at `index` along dim replaced by src (KV-cache write)",
       attrs=("dim",))


def _topk_type(types, attrs):  # noqa: ANN001, ANN202
    x = types[0]
    d = norm_dim(attrs["dim"], x.rank)
    shape = list(x.shape)
    if not 0 < attrs["k"] <= shape[d]:
        raise IRError(f"topk: k={attrs['k']} out of range for {x} dim {d}")
    shape[d] = attrs["k"]
    from llmc.ir.dtypes import i64

    return (x.with_shape(tuple(shape)), TensorType(tuple(shape), i64))


def _topk(xs, attrs):  # noqa: ANN001, ANN202
    x = xs[0]
    d = norm_dim(attrs["dim"], x.ndim)
    order = np.argsort(-x, axis=d, kind="stable")
    idx = np.take(order, np.arange(attrs["k"]), axis=d)
    return np.take_along_axis(x, idx, axis=d), idx.astype(np.int64)


define("topk", infer=_topk_type, run=_topk,
       cost=lambda n: Cost(n.inputs[0].type.numel, *io_bytes(n)), arity=(1, 1),
       kind="reduce", doc="k largest values along dim (descending) and their indices",
       attrs=("k", "dim"))
