"""Indexing by integer tensors: numpy advanced indexing (torch's
`x[i, :, j]`), gather / scatter along one dim, and the general functional
`index_put`. What masks, position ids and MoE dispatch are built from.

Indices may be negative (counted from the end, as in torch and numpy); one
out of range is an error. Costs count only the elements moved: a gather
reads the rows it picks (plus its indices) and writes them; a scatter into
`x` is done in place on hardware, like `index_copy`.
"""

from __future__ import annotations

import numpy as np

from llmc.errors import IRError
from llmc.ir.ops.registry import Cost, broadcast_shapes, define, norm_dim
from llmc.ir.types import TensorType


def _check_int(op: str, t: TensorType) -> None:
    if not t.dtype.is_int or t.dtype.kind == "bool":
        raise IRError(f"{op}: indices must be an integer tensor, got {t}")


def _check_bounds(op: str, index: np.ndarray, size: int) -> None:
    if index.size and (index.min() < -size or index.max() >= size):
        raise IRError(f"{op}: index out of range {-size}..{size - 1}")


def _index_dims(attrs, rank: int, n: int) -> tuple[int, ...]:  # noqa: ANN001
    dims = tuple(norm_dim(d, rank) for d in attrs["dims"])
    if len(dims) != n or list(dims) != sorted(set(dims)):
        raise IRError(f"index: dims {list(attrs['dims'])} must be {n} increasing dims of rank {rank}")
    return dims


def _key(x: np.ndarray, indices: list[np.ndarray], dims: tuple[int, ...], op: str) -> tuple:
    """The numpy index tuple: a full slice for every dim not indexed."""
    key: list = [slice(None)] * x.ndim
    for d, i in zip(dims, indices, strict=True):
        _check_bounds(op, i, x.shape[d])
        key[d] = i.astype(np.int64, copy=False)
    return tuple(key)


def index_shape(x: tuple[int, ...], dims: tuple[int, ...], idx: tuple[int, ...]) -> tuple[int, ...]:
    """numpy's rule: the broadcast index shape replaces the indexed dims in
    place when they are adjacent, else it leads and the other dims follow."""
    if dims[-1] - dims[0] == len(dims) - 1:
        return x[:dims[0]] + idx + x[dims[-1] + 1:]
    return idx + tuple(s for d, s in enumerate(x) if d not in dims)


def _index_type(types, attrs):  # noqa: ANN001, ANN202
    x, indices = types[0], types[1:]
    for t in indices:
        _check_int("index", t)
    dims = _index_dims(attrs, x.rank, len(indices))
    idx = broadcast_shapes(*(t.shape for t in indices))
    return (x.with_shape(index_shape(x.shape, dims, idx)),)


def _index(xs, attrs):  # noqa: ANN001, ANN202
    x = xs[0]
    return x[_key(x, xs[1:], _index_dims(attrs, x.ndim, len(xs) - 1), "index")]


def _gather_cost(node) -> Cost:  # noqa: ANN001
    # a gather reads the elements it picks and its indices, writes them once
    out = node.type.nbytes
    return Cost(0, out + sum(v.type.nbytes for v in node.inputs[1:]), out)


define("index", infer=_index_type, run=_index, cost=_gather_cost, arity=(2, 1 << 8),
       kind="movement", attrs=("dims",),
       doc="advanced indexing x[..., i0, ..., i1, ...]: one integer tensor per dim in "
           "`dims` (increasing), the other dims taken whole; the index tensors broadcast, "
           "and their shape replaces the indexed dims in place when those are adjacent, "
           "else leads (numpy's rule)")


# ---- gather / scatter along one dim -----------------------------------------


def _along_type(op: str, x: TensorType, index: TensorType, dim: int) -> int:
    _check_int(op, index)
    d = norm_dim(dim, x.rank)
    if index.rank != x.rank or any(i > s for k, (i, s) in enumerate(zip(index.shape, x.shape, strict=True))
                                   if k != d):
        raise IRError(f"{op}: index {index} must have x's rank and fit in {x} outside dim {d}")
    return d


def _coords(index: np.ndarray, d: int) -> tuple[np.ndarray, ...]:
    """Full coordinates of every index element, with dim d taken from index."""
    grid = list(np.indices(index.shape, sparse=True))
    grid[d] = index.astype(np.int64, copy=False)
    return tuple(grid)


def _gather_type(types, attrs):  # noqa: ANN001, ANN202
    x, index = types
    _along_type("gather", x, index, attrs["dim"])
    return (x.with_shape(index.shape),)


def _gather(xs, attrs):  # noqa: ANN001, ANN202
    x, index = xs
    d = norm_dim(attrs["dim"], x.ndim)
    _check_bounds("gather", index, x.shape[d])
    return x[_coords(index, d)]


define("gather", infer=_gather_type, run=_gather, cost=_gather_cost, arity=(2, 2),
       kind="movement", attrs=("dim",),
       doc="out[p] = x[p with dim d replaced by index[p]] for every position p of index "
           "(torch.gather; index has x's rank, no larger outside dim)")


def _scatter_type(types, attrs):  # noqa: ANN001, ANN202
    x, index, src = types
    _along_type("scatter", x, index, attrs["dim"])
    if src.rank != x.rank or any(i > s for i, s in zip(index.shape, src.shape, strict=True)):
        raise IRError(f"scatter: src {src} must cover index {index}")
    if attrs["reduce"] not in ("none", "add"):
        raise IRError(f"scatter: reduce must be none or add, got {attrs['reduce']!r}")
    return (x,)


def _scatter(xs, attrs):  # noqa: ANN001, ANN202
    x, index, src = xs
    d = norm_dim(attrs["dim"], x.ndim)
    _check_bounds("scatter", index, x.shape[d])
    out = x.copy()
    where = _coords(index, d)
    values = src[tuple(slice(0, s) for s in index.shape)]
    if attrs["reduce"] == "add":
        np.add.at(out, where, values)
    else:
        out[where] = values
    return out


def _scatter_cost(node) -> Cost:  # noqa: ANN001
    # in place: read the index and the values it places, write those elements
    index = node.inputs[1].type
    moved = node.type.dtype.nbytes(index.numel)
    adds = index.numel if node.attrs.get("reduce") == "add" else 0
    return Cost(adds, index.nbytes + moved * (2 if adds else 1), moved)


define("scatter", infer=_scatter_type, run=_scatter, cost=_scatter_cost, arity=(3, 3),
       kind="movement", attrs=("dim", "reduce"),
       doc="x with x[p with dim d replaced by index[p]] = src[p] (reduce='none'; the last "
           "write wins on repeats) or += src[p] (reduce='add') for every position p of index "
           "(torch.scatter / scatter_add)")


# ---- index_put ----------------------------------------------------------------


def _index_put_type(types, attrs):  # noqa: ANN001, ANN202
    x, values, indices = types[0], types[1], types[2:]
    for t in indices:
        _check_int("index_put", t)
    dims = _index_dims(attrs, x.rank, len(indices))
    target = index_shape(x.shape, dims, broadcast_shapes(*(t.shape for t in indices)))
    if broadcast_shapes(values.shape, target) != target:
        raise IRError(f"index_put: values {values} do not broadcast to the indexed {list(target)}")
    return (x,)


def _index_put(xs, attrs):  # noqa: ANN001, ANN202
    x, values = xs[0], xs[1]
    out = x.copy()
    key = _key(x, xs[2:], _index_dims(attrs, x.ndim, len(xs) - 2), "index_put")
    if attrs["accumulate"]:
        np.add.at(out, key, np.broadcast_to(values, out[key].shape))
    else:
        out[key] = values
    return out


def _index_put_cost(node) -> Cost:  # noqa: ANN001
    x, indices = node.inputs[0].type, node.inputs[2:]
    dims = tuple(norm_dim(d, x.rank) for d in node.attrs["dims"])
    target = index_shape(x.shape, dims, broadcast_shapes(*(v.type.shape for v in indices)))
    moved = x.dtype.nbytes(int(np.prod(target)))
    adds = int(np.prod(target)) if node.attrs["accumulate"] else 0
    read = node.inputs[1].type.nbytes + sum(v.type.nbytes for v in indices)
    return Cost(adds, read + (moved if adds else 0), moved)


define("index_put", infer=_index_put_type, run=_index_put, cost=_index_put_cost,
       arity=(3, 1 << 8), kind="movement", attrs=("dims", "accumulate"),
       doc="x with x[key] = values (or += values when accumulate), key being index's "
           "advanced index (one integer tensor per dim in `dims`), values broadcast to the "
           "indexed shape; inputs x, values, indices... (torch.index_put)")
