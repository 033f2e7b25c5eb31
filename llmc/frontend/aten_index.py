"""Mapping-table entries (see aten.py) for indexing, masks, scans, sorts,
splits and tensor factories: what attention masks, position ids and MoE
dispatch decompose to. Each entry builds IR ops of llmc/ir/ops (index.py,
routing.py, shape.py, elementwise.py, nn.py); none keeps semantics of its
own."""

from __future__ import annotations

from typing import Any

import torch

from llmc.errors import IRError
from llmc.frontend.aten import TABLE, Converter, Ctx, aten
from llmc.ir import dtypes
from llmc.ir.graph import Value

# ---- advanced indexing, gather, scatter -------------------------------------


def _indices(c: Ctx, indices: list[Any]) -> tuple[tuple[int, ...], list[Value]]:
    """(dims, index values) of an ATen index list with None for whole dims."""
    dims, vals = [], []
    for d, i in enumerate(indices):
        if i is None:
            continue
        v = c.v(i)
        if v.type.dtype.kind == "bool":
            raise IRError("indexing with a boolean mask has a data-dependent shape; "
                          "use torch.where instead")
        dims.append(d)
        vals.append(v)
    if not vals:
        raise IRError("index with no index tensor")
    return tuple(dims), vals


@aten("aten.index.Tensor")
def _index(c: Ctx, x: Any, indices: list[Any]) -> Value:
    dims, vals = _indices(c, indices)
    return c.op("index", c.v(x), *vals, dims=dims)


@aten("aten.index_select.default")
def _index_select(c: Ctx, x: Any, dim: int, index: Any) -> Value:
    v = c.v(x)
    return c.op("index", v, c.v(index), dims=(dim % v.type.rank,))


@aten("aten.select.int")
def _select(c: Ctx, x: Any, dim: int, i: int) -> Value:
    v = c.v(x)
    d = dim % v.type.rank
    i = i % v.type.shape[d]
    s = c.op("slice", v, dim=d, start=i, end=i + 1, step=1)
    return c.op("reshape", s, shape=c.meta_shape)


@aten("aten.gather.default")
def _gather(c: Ctx, x: Any, dim: int, index: Any, sparse_grad: bool = False) -> Value:
    v = c.v(x)
    return c.op("gather", v, c.v(index), dim=dim % v.type.rank)


def _scatter(reduce: str) -> Converter:
    def convert(c: Ctx, x: Any, dim: int, index: Any, src: Any, *rest: Any, **kw: Any) -> Value:
        v, idx = c.v(x), c.v(index)
        how = kw.get("reduce", rest[0] if rest else reduce)
        if how not in ("none", "add", "sum") or not kw.get("include_self", True):
            raise IRError(f"scatter with reduce={how!r} is not supported (none, add, sum)")
        if isinstance(src, torch.fx.Node):
            s = _cast(c, c.v(src), v.type.dtype)
        else:  # scatter.value: one scalar at every index
            s = c.op("const", value=float(src) if v.type.dtype.is_float else int(src),
                     shape=idx.type.shape, dtype=v.type.dtype, name="c")
        return c.op("scatter", v, idx, s, dim=dim % v.type.rank,
                    reduce="none" if how == "none" else "add")
    return convert


TABLE["aten.scatter.src"] = TABLE["aten.scatter.value"] = _scatter("none")
TABLE["aten.scatter_add.default"] = _scatter("add")
TABLE["aten.scatter_reduce.two"] = _scatter("none")


@aten("aten.index_put.default")
def _index_put(c: Ctx, x: Any, indices: list[Any], src: Any, accumulate: bool = False) -> Value:
    v = c.v(x)
    dims, vals = _indices(c, indices)
    s = _cast(c, c.v(src, like=v), v.type.dtype)
    if not accumulate and len(vals) == 1 and vals[0].type.rank == 1:
        # one 1-D index along one dim (a KV-cache write): index_copy, costed in place
        want = list(v.type.shape)
        want[dims[0]] = vals[0].type.shape[0]
        if list(s.type.shape) != want:
            if s.type.rank < len(want):
                s = c.op("reshape", s, shape=(1,) * (len(want) - s.type.rank) + s.type.shape,
                         name="index_put_rank")
            s = c.op("expand", s, shape=tuple(want), name="index_put_src")
        return c.op("index_copy", v, vals[0], s, dim=dims[0])
    return c.op("index_put", v, s, *vals, dims=dims, accumulate=bool(accumulate))


# ---- scans, sorts, histograms, grouped products -----------------------------


@aten("aten.cumsum.default")
def _cumsum(c: Ctx, x: Any, dim: int, dtype: Any = None) -> Value:
    v = c.v(x)
    return c.op("cumsum", v, dim=dim % max(v.type.rank, 1), dtype=c.meta_type.dtype)


@aten("aten.sort.default", "aten.sort.stable")
def _sort(c: Ctx, x: Any, dim: int = -1, descending: bool = False, *,
          stable: bool | None = None) -> tuple[Value, Value]:
    """Always stable (sort.default promises no order of equal values)."""
    v = c.v(x)
    node = c.b.add("sort", (v,), {"dim": dim % max(v.type.rank, 1), "descending": bool(descending)},
                   c.fx.name, loc=c.loc)
    return node.out(0), node.out(1)


@aten("aten.histc.default")
def _histc(c: Ctx, x: Any, bins: int = 100, min: float = 0, max: float = 0) -> Value:
    return c.op("histc", c.v(x), bins=int(bins), min=float(min), max=float(max))


@aten("transformers.grouped_mm_fallback.default")
def _grouped_mm(c: Ctx, x: Any, w: Any, offs: Any) -> Value:
    return c.op("grouped_mm", c.v(x), c.v(w), c.v(offs))


@aten("aten._grouped_mm.default")
def _aten_grouped_mm(c: Ctx, x: Any, w: Any, offs: Any = None, bias: Any = None,
                     out_dtype: Any = None) -> Value:
    """torch._grouped_mm, 2-D x 3-D with offsets (transformers' bf16 path)."""
    if offs is None or bias is not None or c.v(x).type.rank != 2 or c.v(w).type.rank != 3:
        raise IRError("_grouped_mm is supported as 2-D x 3-D with offsets, without bias")
    out = c.op("grouped_mm", c.v(x), c.v(w), c.v(offs))
    return _cast(c, out, c.meta_type.dtype)


def _topk1(c: Ctx, x: Value, dim: int | None, keepdim: bool, smallest: bool
           ) -> tuple[Value, Value]:
    """max/min along dim (all dims flattened when None) as a top-1."""
    if dim is None:
        x, dim = c.op("reshape", x, shape=(x.type.numel,), name="flat"), 0
    if smallest:
        x = c.op("neg", x)
    d = dim % max(x.type.rank, 1)
    node = c.b.add("topk", (x,), {"k": 1, "dim": d}, c.fx.name, loc=c.loc)
    values, idx = node.out(0), node.out(1)
    if smallest:
        values = c.op("neg", values)
    if not keepdim:
        shape = tuple(s for i, s in enumerate(x.type.shape) if i != d)
        values, idx = c.op("reshape", values, shape=shape), c.op("reshape", idx, shape=shape)
    return values, idx


TABLE["aten.max.dim"] = lambda c, x, dim, keepdim=False: _topk1(c, c.v(x), dim, keepdim, False)
TABLE["aten.min.dim"] = lambda c, x, dim, keepdim=False: _topk1(c, c.v(x), dim, keepdim, True)
TABLE["aten.argmax.default"] = lambda c, x, dim=None, keepdim=False: _topk1(
    c, c.v(x), dim, keepdim, False)[1]
TABLE["aten.argmin.default"] = lambda c, x, dim=None, keepdim=False: _topk1(
    c, c.v(x), dim, keepdim, True)[1]


# ---- splits, repeats, flips ------------------------------------------------------


def _pieces(c: Ctx, v: Value, sizes: list[int], dim: int) -> tuple[Value, ...]:
    d, start, out = dim % v.type.rank, 0, []
    for i, n in enumerate(sizes):
        out.append(c.op("slice", v, dim=d, start=start, end=start + n, step=1,
                        name=f"{c.fx.name}_{i}"))
        start += n
    return tuple(out)


@aten("aten.split_with_sizes.default")
def _split_with_sizes(c: Ctx, x: Any, sizes: list[int], dim: int = 0) -> tuple[Value, ...]:
    return _pieces(c, c.v(x), list(sizes), dim)


@aten("aten.repeat.default")
def _repeat(c: Ctx, x: Any, repeats: list[int]) -> Value:
    """Tile: (s0, s1) -> (1, s0, 1, s1) -> expand (r0, s0, r1, s1) -> reshape."""
    v = c.v(x)
    shape = (1,) * (len(repeats) - v.type.rank) + v.type.shape
    spread = tuple(x for s in shape for x in (1, s))
    big = tuple(x for r, s in zip(repeats, shape, strict=True) for x in (r, s))
    v = c.op("reshape", v, shape=spread, name="repeat_spread")
    v = c.op("expand", v, shape=big, name="repeat_expand")
    return c.op("reshape", v, shape=c.meta_shape)


@aten("aten.flip.default")
def _flip(c: Ctx, x: Any, dims: list[int]) -> Value:
    v = c.v(x)
    for dim in dims:
        d = dim % v.type.rank
        n = v.type.shape[d]
        rev = c.op("arange", start=n - 1, end=-1, step=-1, dtype=dtypes.i64, name="flip_index")
        v = c.op("index", v, rev, dims=(d,))
    return v


# ---- masks: logic, clamps, any / all ---------------------------------------------


def _cast(c: Ctx, v: Value, dtype: dtypes.DType) -> Value:
    return v if v.type.dtype == dtype else c.op("cast", v, dtype=dtype)


def _logical(ir_op: str) -> Converter:
    def convert(c: Ctx, a: Any, b: Any) -> Value:
        va = _cast(c, c.v(a), dtypes.boolean)
        return c.op(ir_op, va, _cast(c, c.v(b, like=va), dtypes.boolean))
    return convert


TABLE["aten.logical_and.default"] = _logical("bitwise_and")
TABLE["aten.logical_or.default"] = _logical("bitwise_or")
TABLE["aten.logical_xor.default"] = _logical("ne")


@aten("aten.logical_not.default")
def _logical_not(c: Ctx, x: Any) -> Value:
    return c.op("logical_not", _cast(c, c.v(x), dtypes.boolean))


@aten("aten.bitwise_not.default")
def _bitwise_not(c: Ctx, x: Any) -> Value:
    v = c.v(x)
    if v.type.dtype.kind != "bool":
        raise IRError(f"bitwise_not of {v.type} (only booleans are supported)")
    return c.op("logical_not", v)


@aten("aten.bitwise_xor.Tensor", "aten.bitwise_xor.Scalar")
def _bitwise_xor(c: Ctx, a: Any, b: Any) -> Value:
    va = c.v(a)
    if va.type.dtype.kind != "bool":
        raise IRError(f"bitwise_xor of {va.type} (only booleans are supported)")
    return c.op("ne", va, c.v(b, like=va))


@aten("aten.any.default", "aten.any.dim", "aten.any.dims")  # all() decomposes to not(any(not))
def _any(c: Ctx, x: Any, dim: Any = None, keepdim: bool = False) -> Value:
    v = _cast(c, c.v(x), dtypes.boolean)
    dims = range(v.type.rank) if dim is None else [dim] if isinstance(dim, int) else dim
    return c.op("amax", v, dims=tuple(d % max(v.type.rank, 1) for d in dims),
                keepdim=bool(keepdim))


def _clamp(c: Ctx, x: Any, lo: Any = None, hi: Any = None) -> Value:
    v = c.v(x)
    if lo is not None:
        v = c.op("maximum", v, c.v(lo, like=v))
    if hi is not None:
        v = c.op("minimum", v, c.v(hi, like=v))
    return _cast(c, v, c.meta_type.dtype)


TABLE["aten.clamp.default"] = TABLE["aten.clamp.Tensor"] = _clamp


@aten("aten._log_softmax.default")
def _log_softmax(c: Ctx, x: Any, dim: int, *rest: Any) -> Value:
    """x - max - log(sum(exp(x - max))), along dim."""
    v = c.v(x)
    dims = (dim % v.type.rank,)
    shifted = c.op("sub", v, c.op("amax", v, dims=dims, keepdim=True))
    total = c.op("sum", c.op("exp", shifted), dims=dims, keepdim=True)
    return c.op("sub", shifted, c.op("log", total))


@aten("aten.remainder.Scalar", "aten.remainder.Tensor")
def _remainder(c: Ctx, a: Any, b: Any) -> Value:
    """a - floor(a / b) * b, for integers (Python's sign rule, like torch)."""
    va = c.v(a)
    vb = c.v(b, like=va)
    if va.type.dtype.is_float or vb.type.dtype.is_float:
        raise IRError("remainder of floats is not supported")
    return c.op("sub", va, c.op("mul", c.op("div", va, vb), vb))


# ---- factories: the values are the recorded shape and dtype, filled -----------


def _fill(c: Ctx, *args: Any, **kw: Any) -> Value:
    """A const of the node's recorded type: full_like's fill value, or zeros
    for `empty` (whose contents are undefined; what reads them overwrites)."""
    t = c.meta_type
    value = kw.get("fill_value", args[1] if c.fx.target is torch.ops.aten.full_like.default else 0)
    if isinstance(value, torch.fx.Node):
        raise IRError("a fill value computed by the graph is not supported")
    return c.op("const", value=float(value) if t.dtype.is_float else int(value),
                shape=t.shape, dtype=t.dtype)


for _n in ("empty_permuted.default", "empty.memory_format", "empty_strided.default",
           "full_like.default"):
    TABLE[f"aten.{_n}"] = _fill


@aten("aten.copy.default")
def _copy(c: Ctx, x: Any, src: Any, non_blocking: bool = False) -> Value:
    """copy(x, src): src's values in x's shape and dtype."""
    v, s = c.v(x), c.v(src)
    s = _cast(c, s, v.type.dtype)
    if s.type.shape != v.type.shape:
        if s.type.rank < v.type.rank:
            s = c.op("reshape", s, shape=(1,) * (v.type.rank - s.type.rank) + s.type.shape)
        s = c.op("expand", s, shape=v.type.shape)
    return s
