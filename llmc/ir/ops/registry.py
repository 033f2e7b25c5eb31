"""The op registry: every IR op is defined once, here and in its siblings.

An `OpDef` carries (1) the type rule, (2) the reference semantics in numpy
(what the interpreter runs: the golden model), and (3) the cost (FLOPs and
bytes read/written); ops that multiply matrices also say which products they
perform (`gemms`), so a simulator puts them on a matrix unit. Passes,
backends, the cost model and the interpreter all ask this registry; none
keeps its own table of ops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from llmc.errors import IRError
from llmc.ir.types import TensorType

if TYPE_CHECKING:
    from llmc.ir.graph import Attrs, Node


@dataclass(frozen=True)
class Cost:
    """Work of one op: floating/integer operations and bytes moved to and
    from memory (reads include weights; views and sources cost nothing)."""

    flops: float = 0.0
    bytes_read: int = 0
    bytes_written: int = 0

    @property
    def bytes(self) -> int:
        return self.bytes_read + self.bytes_written

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.flops + other.flops, self.bytes_read + other.bytes_read,
                    self.bytes_written + other.bytes_written)


InferFn = Callable[[list[TensorType], "Attrs"], tuple[TensorType, ...]]
RunFn = Callable[[list[np.ndarray], "Attrs"], Any]
CostFn = Callable[["Node"], Cost]
# input index -> logical weight elements that input holds (0: format data such
# as scales or sparse indices), for inputs stored in another shape than the
# weight they encode; inputs not listed count their own elements
WeightsFn = Callable[["Node"], dict[int, int]]


@dataclass(frozen=True)
class Gemm:
    """One matrix product an op performs: C (m, n) = A (m, k) @ B (k, n),
    `count` independent times (batch entries, heads, experts); `label` is
    appended to the op's name in a schedule (".qk")."""

    m: int
    n: int
    k: int
    count: int = 1
    label: str = ""


@dataclass(frozen=True)
class VectorWork:
    """Elementwise work that sits between an op's products (attention's
    softmax): `elements` x `ops_per_element` operations on the vector unit,
    on chip unless it moves `read_bytes` / `write_bytes` to or from memory."""

    elements: int
    ops_per_element: float
    label: str
    read_bytes: int = 0
    write_bytes: int = 0


# the matrix products of a node, in execution order, with the vector work
# between them; empty when this node has no product to run (nothing visible)
GemmsFn = Callable[["Node"], tuple[Gemm | VectorWork, ...]]


@dataclass(frozen=True)
class OpDef:
    """name; arity (min, max inputs); kind groups ops for passes and reports
    (source, elementwise, view, movement, reduce, norm, linalg, attention, moe);
    attrs: the attribute names the op requires; gemms: the matrix products
    (GemmsFn), defined for every op that multiplies matrices."""

    name: str
    infer: InferFn
    run: RunFn
    cost: CostFn
    arity: tuple[int, int]
    kind: str
    doc: str
    attrs: tuple[str, ...] = ()
    optional_attrs: tuple[str, ...] = ()
    weights: WeightsFn | None = None
    gemms: GemmsFn | None = None


_REGISTRY: dict[str, OpDef] = {}

# Attributes any op may carry: schedule annotations that passes add for the
# backends (semantics, types and per-op costs ignore them). "fusion": the id
# of the kernel the op runs in (llmc.passes.fusion); "stage": the pipeline
# stage (device or core group) it runs on (llmc.passes.partition).
ANNOTATIONS = ("fusion", "stage")


def define(name: str, *, infer: InferFn, run: RunFn, cost: CostFn, arity: tuple[int, int],
           kind: str, doc: str, attrs: Sequence[str] = (),
           optional_attrs: Sequence[str] = (), weights: WeightsFn | None = None,
           gemms: GemmsFn | None = None) -> OpDef:
    """Register op `name` (once). `weights`: see WeightsFn (parameter counts);
    `gemms`: see GemmsFn (matrix products)."""
    if name in _REGISTRY:
        raise IRError(f"op {name!r} is defined twice")
    op = OpDef(name, infer, run, cost, arity, kind, doc, tuple(attrs), tuple(optional_attrs),
               weights, gemms)
    _REGISTRY[name] = op
    return op


def get_op(name: str) -> OpDef:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise IRError(f"unknown op {name!r}") from None


def all_ops() -> dict[str, OpDef]:
    return dict(_REGISTRY)


# ---- shared helpers for type rules and costs ---------------------------------

def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise IRError(f"shapes {', '.join(map(str, shapes))} do not broadcast") from None


def io_bytes(node: Node) -> tuple[int, int]:
    """(bytes of all inputs, bytes of all outputs)."""
    return (sum(v.type.nbytes for v in node.inputs), sum(t.nbytes for t in node.types))


def streaming_cost(flops_per_elem: float) -> CostFn:
    """Cost of an op that reads its inputs once and writes its outputs once,
    doing `flops_per_elem` operations per output element."""

    def cost(node: Node) -> Cost:
        r, w = io_bytes(node)
        return Cost(flops_per_elem * sum(t.numel for t in node.types), r, w)

    return cost


def free(node: Node) -> Cost:
    """Views and sources: no work, no traffic (a consumer reads through them)."""
    return Cost()


def quantized_weight(scales: tuple[int, ...] = ()) -> WeightsFn:
    """WeightsFn of a linear whose input 1 is a quantized (possibly packed,
    reduction-padded) weight encoding out x in(x) values, and whose inputs
    `scales` are format data."""

    def weights(node: Node) -> dict[int, int]:
        return {1: node.type.shape[-1] * node.inputs[0].type.shape[-1],
                **dict.fromkeys(scales, 0)}

    return weights


def linear_gemms(node: Node) -> tuple[Gemm, ...]:
    """GemmsFn of a linear-like op, x (..., K) @ W.T -> (..., N), whatever
    W's storage (dense, block format, integer, packed, pruned): one
    (tokens, N, K) product, K being x's reduction dim."""
    n = node.type.shape[-1]
    return (Gemm(node.type.numel // n, n, node.inputs[0].type.shape[-1]),)


def format_data(*inputs: int) -> WeightsFn:
    """WeightsFn of an op whose param inputs `inputs` are format data."""
    return lambda node: dict.fromkeys(inputs, 0)


def norm_dim(dim: int, rank: int) -> int:
    if not -max(rank, 1) <= dim < max(rank, 1):
        raise IRError(f"dim {dim} out of range for rank {rank}")
    return dim % max(rank, 1)
