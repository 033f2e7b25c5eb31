"""The one mapping table from core-ATen operators to llmc IR ops.

Each entry converts one FX node of an exported program into IR nodes through
a `Ctx`; `TABLE` is keyed by the ATen overload's name ("aten.linear.default").
Its keys are what core-ATen lowering leaves plus the composites kept whole
(export.py states the rule; a test checks it). This file holds arithmetic,
views, products, norms and attention; aten_index.py adds indexing, masks,
scans, sorts, splits and factories. Operators with no entry are collected
and reported all at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from llmc.errors import IRError
from llmc.ir import dtypes
from llmc.ir.graph import Builder, Value
from llmc.ir.types import TensorType


class Ctx:
    """What a converter sees: the IR builder, the value of each FX node, and
    the FX node being converted (for its example value and source location)."""

    def __init__(self, builder: Builder) -> None:
        self.b = builder
        self.env: dict[Any, Any] = {}
        self.fx: Any = None
        self.loc = ""

    def v(self, arg: Any, like: Value | None = None) -> Value:
        """The IR value of an FX argument; Python scalars become consts of
        `like`'s dtype (torch's scalar promotion)."""
        if isinstance(arg, torch.fx.Node):
            return self.env[arg]
        if isinstance(arg, bool | int | float):
            dtype = like.type.dtype if like is not None else (
                dtypes.f32 if isinstance(arg, float) else dtypes.i64)
            if isinstance(arg, float) and not dtype.is_float:
                dtype = dtypes.f32
            value = float(arg) if dtype.is_float else int(arg)
            return self.op("const", value=value, shape=(), dtype=dtype, name="c")
        raise IRError(f"cannot convert argument {arg!r}")

    def op(self, op: str, *inputs: Value, name: str | None = None, **attrs: Any) -> Value:
        node = self.b.add(op, inputs, attrs, name or (self.fx.name if self.fx is not None else op),
                          loc=self.loc)
        return node.out()

    @property
    def meta_type(self) -> TensorType:
        """The type torch's tracer recorded for the current node's output."""
        val = self.fx.meta["val"]
        return TensorType(tuple(int(s) for s in val.shape), dtypes.from_torch(val.dtype))

    @property
    def meta_shape(self) -> tuple[int, ...]:
        return self.meta_type.shape


Converter = Callable[..., Any]
TABLE: dict[str, Converter] = {}


def aten(*names: str) -> Callable[[Converter], Converter]:
    def register(fn: Converter) -> Converter:
        for n in names:
            TABLE[n] = fn
        return fn
    return register


def _same(c: Ctx, x: Any, *rest: Any, **kw: Any) -> Value:
    return c.v(x)


for _n in ("aten.clone.default", "aten.alias.default", "aten.contiguous.default",
           "aten.lift_fresh_copy.default", "aten.dropout.default"):
    TABLE[_n] = _same

_UNARY = {"neg": "neg", "exp": "exp", "log": "log", "sqrt": "sqrt", "rsqrt": "rsqrt",
          "tanh": "tanh", "sigmoid": "sigmoid", "silu": "silu", "relu": "relu", "sin": "sin",
          "cos": "cos", "abs": "abs", "reciprocal": "reciprocal"}
for _a, _ir in _UNARY.items():
    TABLE[f"aten.{_a}.default"] = lambda c, x, _ir=_ir: c.op(_ir, c.v(x))

_BINARY = {"add": "add", "sub": "sub", "mul": "mul", "div": "div", "pow": "pow",
           "maximum": "maximum", "minimum": "minimum", "eq": "eq", "ne": "ne", "lt": "lt",
           "le": "le", "gt": "gt", "ge": "ge", "bitwise_and": "bitwise_and",
           "bitwise_or": "bitwise_or"}


def _binary(ir_op: str) -> Converter:
    def convert(c: Ctx, a: Any, b: Any, alpha: Any = 1, rounding_mode: Any = None) -> Value:
        va = c.v(a) if isinstance(a, torch.fx.Node) else None
        vb = c.v(b, like=va) if isinstance(b, torch.fx.Node) or va is not None else None
        if va is None:
            va = c.v(a, like=vb)
        if alpha != 1:
            vb = c.op("mul", vb, c.v(alpha, like=vb))
        if rounding_mode not in (None, "floor"):
            raise IRError(f"div rounding_mode={rounding_mode!r} is not supported")
        out = c.op(ir_op, va, vb)
        want = c.meta_type.dtype
        return out if out.type.dtype == want else c.op("cast", out, dtype=want)
    return convert


for _a, _ir in _BINARY.items():
    for _ov in ("Tensor", "Scalar", "Tensor_Scalar", "Tensor_Tensor", "default", "Tensor_mode"):
        TABLE[f"aten.{_a}.{_ov}"] = _binary(_ir)


@aten("aten.gelu.default")
def _gelu(c: Ctx, x: Any, approximate: str = "none") -> Value:
    return c.op("gelu", c.v(x), approximate=approximate)


@aten("aten.where.self")
def _where(c: Ctx, cond: Any, a: Any, b: Any) -> Value:
    va = c.v(a) if isinstance(a, torch.fx.Node) else None
    vb = c.v(b, like=va)
    return c.op("where", c.v(cond), va if va is not None else c.v(a, like=vb), vb)


@aten("aten._to_copy.default", "aten.to.dtype")
def _to_copy(c: Ctx, x: Any, *args: Any, dtype: Any = None, **kw: Any) -> Value:
    v = c.v(x)
    want = c.meta_type.dtype
    return v if v.type.dtype == want else c.op("cast", v, dtype=want)


@aten("aten.view.default", "aten.reshape.default", "aten.unsqueeze.default",
      "aten.squeeze.dims", "aten.flatten.using_ints")
def _reshape(c: Ctx, x: Any, *args: Any) -> Value:
    v = c.v(x)
    shape = c.meta_shape
    return v if v.type.shape == shape else c.op("reshape", v, shape=shape)


@aten("aten.permute.default")
def _permute(c: Ctx, x: Any, dims: list[int]) -> Value:
    v = c.v(x)
    return c.op("permute", v, perm=tuple(d % max(v.type.rank, 1) for d in dims))


@aten("aten.expand.default")
def _expand(c: Ctx, x: Any, size: list[int], implicit: bool = False) -> Value:
    v = c.v(x)
    shape = c.meta_shape
    if len(shape) > v.type.rank:
        v = c.op("reshape", v, shape=(1,) * (len(shape) - v.type.rank) + v.type.shape,
                 name="expand_rank")
    return v if v.type.shape == shape else c.op("expand", v, shape=shape)


@aten("aten.slice.Tensor")
def _slice(c: Ctx, x: Any, dim: int = 0, start: Any = None, end: Any = None,
           step: int = 1) -> Value:
    v = c.v(x)
    d = dim % v.type.rank
    size = v.type.shape[d]
    r = range(size)[slice(start, end, step)]
    if r.start == 0 and r.stop == size and r.step == 1:
        return v
    return c.op("slice", v, dim=d, start=r.start, end=r.stop, step=r.step)


@aten("aten.cat.default")
def _cat(c: Ctx, xs: list[Any], dim: int = 0) -> Value:
    vals = [c.v(x) for x in xs]
    return c.op("concat", *vals, dim=dim % vals[0].type.rank)


@aten("aten.arange.start_step")
def _arange(c: Ctx, *args: Any, **kw: Any) -> Value:
    nums = [a for a in args if isinstance(a, int | float)]
    start, end, step = (0, nums[0], 1) if len(nums) == 1 else (*nums, 1)[:3]
    return c.op("arange", start=start, end=end, step=step, dtype=c.meta_type.dtype)


@aten("aten.full.default", "aten.scalar_tensor.default")
def _full(c: Ctx, *args: Any, **kw: Any) -> Value:
    t = c.meta_type
    value = args[1] if len(args) > 1 else args[0]
    return c.op("const", value=float(value) if t.dtype.is_float else int(value),
                shape=t.shape, dtype=t.dtype)


@aten("aten.embedding.default")
def _embedding(c: Ctx, weight: Any, indices: Any, *args: Any) -> Value:
    return c.op("embedding", c.v(weight), c.v(indices))


@aten("aten.linear.default")
def _linear(c: Ctx, x: Any, w: Any, b: Any = None) -> Value:
    args = [c.v(x), c.v(w)] + ([c.v(b)] if b is not None else [])
    return c.op("linear", *args)


@aten("aten.mm.default", "aten.bmm.default", "aten.matmul.default")
def _matmul(c: Ctx, a: Any, b: Any) -> Value:
    return c.op("matmul", c.v(a), c.v(b))


@aten("aten.addmm.default")
def _addmm(c: Ctx, bias: Any, a: Any, b: Any, beta: Any = 1, alpha: Any = 1) -> Value:
    if beta != 1 or alpha != 1:
        raise IRError("addmm with beta/alpha other than 1 is not supported")
    return c.op("add", c.op("matmul", c.v(a), c.v(b)), c.v(bias))


@aten("aten.layer_norm.default")
def _layer_norm(c: Ctx, x: Any, shape: list[int], w: Any = None, b: Any = None,
                eps: float = 1e-5, *rest: Any) -> Value:
    if len(shape) != 1:
        raise IRError(f"layer_norm over {len(shape)} dims is not supported (last dim only)")
    args = [c.v(x)] + [c.v(t) for t in (w, b) if t is not None]
    if w is None and b is not None:
        raise IRError("layer_norm with a bias but no weight is not supported")
    return c.op("layer_norm", *args, eps=float(eps))


@aten("aten.rms_norm.default")
def _rms_norm(c: Ctx, x: Any, shape: list[int], w: Any = None, eps: Any = None) -> Value:
    if len(shape) != 1:
        raise IRError(f"rms_norm over {len(shape)} dims is not supported (last dim only)")
    v = c.v(x)
    if eps is None:  # torch's default: the dtype's machine epsilon
        eps = float(torch.finfo(torch.float32 if v.type.dtype == dtypes.f32 else
                                torch.bfloat16 if v.type.dtype == dtypes.bf16 else
                                torch.float16).eps)
    args = [v] + ([c.v(w)] if w is not None else [])
    return c.op("rms_norm", *args, eps=float(eps))


def _reduce(ir_op: str) -> Converter:
    def convert(c: Ctx, x: Any, dims: Any = None, keepdim: bool = False, **kw: Any) -> Value:
        v = c.v(x)
        if dims is None or dims == []:
            dims = list(range(v.type.rank))
        dims = [dims] if isinstance(dims, int) else dims
        want = c.meta_type.dtype  # sum of booleans/ints: int64; dtype= given
        if v.type.dtype != want:
            v = c.op("cast", v, dtype=want)
        return c.op(ir_op, v, dims=tuple(d % v.type.rank for d in dims), keepdim=bool(keepdim))
    return convert


TABLE["aten.mean.dim"] = TABLE["aten.mean.default"] = _reduce("mean")
TABLE["aten.sum.dim_IntList"] = _reduce("sum")
TABLE["aten.amax.default"] = _reduce("amax")
TABLE["aten.amin.default"] = _reduce("amin")


@aten("aten._softmax.default")
def _softmax(c: Ctx, x: Any, dim: int, *rest: Any) -> Value:
    v = c.v(x)
    return c.op("softmax", v, dim=dim % v.type.rank)


@aten("aten.topk.default")
def _topk(c: Ctx, x: Any, k: int, dim: int = -1, largest: bool = True,
          sorted: bool = True) -> tuple[Value, Value]:
    if not largest:
        raise IRError("topk(largest=False) is not supported")
    v = c.v(x)
    node = c.b.add("topk", (v,), {"k": k, "dim": dim % v.type.rank}, c.fx.name, loc=c.loc)
    return node.out(0), node.out(1)


@aten("aten.scaled_dot_product_attention.default")
def _sdpa(c: Ctx, q: Any, k: Any, v: Any, attn_mask: Any = None, dropout_p: float = 0.0,
          is_causal: bool = False, scale: Any = None, enable_gqa: bool = False) -> Value:
    vq, vk, vv = c.v(q), c.v(k), c.v(v)
    if dropout_p:
        raise IRError("attention with dropout is not supported (export in eval mode)")
    tq, tk = vq.type.shape[2], vk.type.shape[2]
    if is_causal and tq != tk:
        raise IRError(f"is_causal attention with {tq} queries and {tk} keys uses torch's "
                      "top-left alignment; pass an explicit mask instead")
    scale = 1.0 / math.sqrt(vq.type.shape[-1]) if scale is None else float(scale)
    args = [vq, vk, vv] + ([c.v(attn_mask)] if attn_mask is not None else [])
    return c.op("attention", *args, causal=bool(is_causal), scale=scale)


@aten("llmc.moe_ffn.default")
def _moe(c: Ctx, x: Any, router: Any, wg: Any, wu: Any, wd: Any, top_k: int) -> Value:
    return c.op("moe_ffn", c.v(x), c.v(router), c.v(wg), c.v(wu), c.v(wd), top_k=int(top_k))


@aten("aten.getitem", "_operator.getitem")
def _getitem(c: Ctx, x: Any, index: int) -> Value:
    return c.env[x][index]


# Indexing, masks, scans, sorts, splits and factories: the rest of the table.
from llmc.frontend import aten_index  # noqa: E402, F401
