"""Elementwise ops: unary math, binary arithmetic with broadcasting,
comparisons, select and casts."""

from __future__ import annotations

import math

import numpy as np

from llmc.errors import IRError
from llmc.ir import dtypes
from llmc.ir.dtypes import DType
from llmc.ir.ops.registry import broadcast_shapes, define, streaming_cost
from llmc.ir.types import TensorType

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_erf = np.frompyfunc(math.erf, 1, 1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _gelu(x: np.ndarray, approximate: str) -> np.ndarray:
    if approximate == "tanh":  # Hendrycks & Gimpel 2016, eq. for GELU's tanh form
        return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)))
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))).astype(x.dtype)


# name -> (numpy function of (x, attrs), FLOPs per element, doc)
_UNARY = {
    "neg": (lambda x, a: -x, 1, "-x"),
    "abs": (lambda x, a: np.abs(x), 1, "|x|"),
    "exp": (lambda x, a: np.exp(x), 1, "e^x"),
    "log": (lambda x, a: np.log(x), 1, "natural log"),
    "sqrt": (lambda x, a: np.sqrt(x), 1, "square root"),
    "rsqrt": (lambda x, a: 1.0 / np.sqrt(x), 2, "1/sqrt(x)"),
    "reciprocal": (lambda x, a: 1.0 / x, 1, "1/x"),
    "sin": (lambda x, a: np.sin(x), 1, "sine"),
    "cos": (lambda x, a: np.cos(x), 1, "cosine"),
    "tanh": (lambda x, a: np.tanh(x), 1, "hyperbolic tangent"),
    "sigmoid": (lambda x, a: _sigmoid(x), 3, "1/(1+e^-x)"),
    "relu": (lambda x, a: np.maximum(x, 0), 1, "max(x, 0)"),
    "silu": (lambda x, a: x * _sigmoid(x), 4, "x*sigmoid(x) (Elfwing et al. 2018)"),
    "gelu": (lambda x, a: _gelu(x, a.get("approximate", "none")), 8,
             "GELU; attr approximate='tanh' for the tanh form, 'none' for erf"),
    "logical_not": (lambda x, a: ~x, 1, "boolean not"),
}


def _same_type(types: list[TensorType], attrs) -> tuple[TensorType, ...]:  # noqa: ANN001
    return (types[0],)


for _name, (_fn, _flops, _doc) in _UNARY.items():
    define(_name, infer=_same_type, run=lambda xs, a, fn=_fn: fn(xs[0], a),
           cost=streaming_cost(_flops), arity=(1, 1), kind="elementwise", doc=_doc,
           optional_attrs=("approximate",) if _name == "gelu" else ())


def promote(a: DType, b: DType) -> DType:
    """Result dtype of a binary op (a subset of torch's promotion rules)."""
    if a == b:
        return a
    if a.is_float != b.is_float:
        return a if a.is_float else b
    if a.kind == "bool" or b.kind == "bool":
        return b if a.kind == "bool" else a
    return a if a.bits >= b.bits else b


def _binary_type(types: list[TensorType], attrs) -> tuple[TensorType, ...]:  # noqa: ANN001
    a, b = types
    return (TensorType(broadcast_shapes(a.shape, b.shape), promote(a.dtype, b.dtype)),)


def _compare_type(types: list[TensorType], attrs) -> tuple[TensorType, ...]:  # noqa: ANN001
    a, b = types
    return (TensorType(broadcast_shapes(a.shape, b.shape), dtypes.boolean),)


def _div(a: np.ndarray, b: np.ndarray, attrs) -> np.ndarray:  # noqa: ANN001
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        mode = attrs.get("rounding", "floor")
        if mode != "floor":
            raise IRError(f"div: integer rounding {mode!r} not supported (use floor)")
        return np.floor_divide(a, b)
    return a / b


_BINARY = {
    "add": (lambda a, b, t: a + b, "a + b"),
    "sub": (lambda a, b, t: a - b, "a - b"),
    "mul": (lambda a, b, t: a * b, "a * b"),
    "div": (_div, "a / b (floor division for integers)"),
    "pow": (lambda a, b, t: np.power(a, b), "a ** b"),
    "maximum": (lambda a, b, t: np.maximum(a, b), "elementwise max"),
    "minimum": (lambda a, b, t: np.minimum(a, b), "elementwise min"),
    "bitwise_and": (lambda a, b, t: a & b, "a & b (integers, booleans)"),
    "bitwise_or": (lambda a, b, t: a | b, "a | b (integers, booleans)"),
    "shl": (lambda a, b, t: np.left_shift(a, b), "a << b (integers)"),
    "shr": (lambda a, b, t: np.right_shift(a, b), "a >> b, arithmetic (integers)"),
}
_COMPARE = {
    "eq": (np.equal, "a == b"), "ne": (np.not_equal, "a != b"), "lt": (np.less, "a < b"),
    "le": (np.less_equal, "a <= b"), "gt": (np.greater, "a > b"),
    "ge": (np.greater_equal, "a >= b"),
}

for _name, (_fn, _doc) in _BINARY.items():
    define(_name, infer=_binary_type, run=lambda xs, a, fn=_fn: fn(xs[0], xs[1], a),
           cost=streaming_cost(1), arity=(2, 2), kind="elementwise", doc=_doc,
           optional_attrs=("rounding",) if _name == "div" else ())
for _name, (_fn, _doc) in _COMPARE.items():
    define(_name, infer=_compare_type, run=lambda xs, a, fn=_fn: fn(xs[0], xs[1]),
           cost=streaming_cost(1), arity=(2, 2), kind="elementwise", doc=_doc)


def _where_type(types: list[TensorType], attrs) -> tuple[TensorType, ...]:  # noqa: ANN001
    c, a, b = types
    return (TensorType(broadcast_shapes(c.shape, a.shape, b.shape), promote(a.dtype, b.dtype)),)


define("where", infer=_where_type, run=lambda xs, a: np.where(xs[0], xs[1], xs[2]),
       cost=streaming_cost(1), arity=(3, 3), kind="elementwise",
       doc="cond ? a : b, broadcasting")


def _cast_type(types: list[TensorType], attrs) -> tuple[TensorType, ...]:  # noqa: ANN001
    return (types[0].with_dtype(attrs["dtype"]),)


def _cast(xs: list[np.ndarray], attrs) -> np.ndarray:  # noqa: ANN001
    """Convert to attrs['dtype']: floats round to nearest (bf16 ties to even),
    float -> int truncates toward zero like torch."""
    x, to = xs[0], attrs["dtype"]
    if to == dtypes.bf16:
        return dtypes.round_bf16(x.astype(np.float32))
    return x.astype(to.np)


define("cast", infer=_cast_type, run=_cast, cost=streaming_cost(0), arity=(1, 1),
       kind="elementwise", doc="convert to attribute dtype", attrs=("dtype",))
