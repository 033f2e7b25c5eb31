"""Fold what a traced graph computes from its weights and its shapes alone.

transformers computes at run time what llmc's zoo precomputes: RoPE's cos
and sin from `arange(T)` and `inv_freq`, Gemma's `1 + w` norm gain. Such a
value depends on no graph input, so it is computed here, once, by the
reference interpreter, and stored:

- a value that depends on a position (an `arange`) is a table of positions:
  stored as rows of its last dim, (R, C), and read back as
  `embedding(table, arange(R))` (reshaped to its own shape), the way llmc's
  zoo reads its RoPE tables: integer lowering takes such lookups as i16
  tables and k-sort re-orders their columns per layer;
- any other is a param of its own shape; one of a single element a `const`.

A folded param is a buffer (the memory plan's constants region) unless it
is computed from a weight (Gemma's `1 + w` stays a weight). Only float values
are folded: integer and boolean ones (position ids, attention masks) stay
as computed (integer lowering copies them as they are; raise-attention reads
masks). A view of a folded value (reshape, expand, ...) stays an op, so that
one table serves every layer, and a view or cast of a weight alone is left
alone (the weight keeps its name). A decode step's positions come from its
`pos` input, so none of its RoPE is folded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from llmc.ir import dtypes
from llmc.ir.graph import Graph, Node, Value
from llmc.ir.interp import interpret
from llmc.ir.types import TensorType
from llmc.passes.rewrite import RewriteCtx, rewrite

VIEWS = ("reshape", "expand", "permute", "slice", "cast")


def constant_nodes(graph: Graph) -> set[Node]:
    """Nodes whose values depend on no graph input (params, consts, aranges
    and everything computed from them alone)."""
    const: set[Node] = set()
    for n in graph.nodes:
        if n.op != "input" and all(v.node in const for v in n.inputs):
            const.add(n)
    return const


def evaluate_constants(graph: Graph, values: Sequence[Value]) -> list[np.ndarray] | None:
    """Constant `values` of `graph`, computed by the interpreter; None when
    one reads a weight that has no value (a shape-only graph)."""
    need: set[Node] = set()
    stack = [v.node for v in values]
    while stack:
        n = stack.pop()
        if n not in need:
            need.add(n)
            stack.extend(v.node for v in n.inputs)
    nodes = [n for n in graph.nodes if n in need]
    params = {n.attrs["name"]: graph.params.get(n.attrs["name"]) for n in nodes
              if n.op == "param"}
    if any(p is None for p in params.values()):
        return None
    return interpret(Graph(graph.name, nodes, list(values), params), [])


@dataclass(frozen=True)
class _Fold:
    """How one value is stored: its name, whether it is a table of positions,
    whether it is a buffer, and its value (None: shape-only)."""

    name: str
    table: bool
    buffer: bool
    value: np.ndarray | None


def _is_source(n: Node) -> bool:
    return not n.inputs


def _fold_point(n: Node) -> Value | None:
    """The value to store for a constant float value `n` read by a computed
    node: n itself, or the computed value n is a view of."""
    v = n.out()
    while v.node.op in VIEWS and not _is_source(v.node.inputs[0].node) \
            and v.node.inputs[0].type.dtype.is_float:
        v = v.node.inputs[0]
    if v.node.op in VIEWS and _is_source(v.node.inputs[0].node):
        return None                        # a view or cast of a weight: keep its name
    if v.node.op == "embedding" and _is_source(v.node.inputs[0].node):
        return None                        # already rows of a table (GPT-2's positions)
    return v


def _plan(graph: Graph) -> dict[str, _Fold]:
    """Node name -> how its value is stored, for every value to fold."""
    const = constant_nodes(graph)
    positional: set[Node] = set()
    for n in graph.nodes:
        if n.op == "arange" or any(v.node in positional for v in n.inputs):
            positional.add(n)
    users = graph.users()
    returned = {v.node for v in graph.outputs}
    points: list[Value] = []
    for n in graph.nodes:
        if (n not in const or _is_source(n) or len(n.types) != 1 or not n.type.dtype.is_float
                or not (n in returned or any(u not in const for u in users[n]))):
            continue
        v = _fold_point(n)
        if v is not None and v not in points:
            points.append(v)
    if not points:
        return {}
    values = evaluate_constants(graph, points) or [None] * len(points)
    taken = set(graph.params)
    plan = {}
    for v, value in zip(points, values, strict=True):
        n = v.node
        name = _name(n)
        while name in taken:
            name += "_"
        taken.add(name)
        plan[n.name] = _Fold(name, n in positional and n.type.rank >= 2,
                             _only_buffers(n), value)
    return plan


def _params_of(n: Node) -> list[Node]:
    """The params n is computed from."""
    seen: set[int] = set()
    out, stack = [], [n]
    while stack:
        m = stack.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        if m.op == "param":
            out.append(m)
        stack.extend(v.node for v in m.inputs)
    return out


def _only_buffers(n: Node) -> bool:
    """Whether every param n is computed from is a buffer (or there is none)."""
    return all(p.attrs.get("buffer") for p in _params_of(n))


def _name(n: Node) -> str:
    """A weight computed from one weight is `<weight>.folded`; any other
    value is named by where and what it is (`...rotary_emb.cos`)."""
    weights = [p for p in _params_of(n) if not p.attrs.get("buffer")]
    if len(weights) == 1:
        return f"{weights[0].attrs['name']}.folded"
    return f"{n.loc}.{n.name}" if n.loc else n.name


def fold_constants(graph: Graph) -> Graph:
    """The `fold-constants` pass (see the module docstring)."""
    plan = _plan(graph)
    if not plan:
        return graph
    positions: dict[int, Value] = {}

    def fold(node: Node, ctx: RewriteCtx) -> Value | None:
        f = plan.get(node.name)
        if f is None:
            return None
        t = node.type
        if t.numel == 1 and f.value is not None:
            return ctx.b.add("const", [], {"dtype": t.dtype, "shape": t.shape,
                                           "value": float(f.value.reshape(-1)[0])},
                             name=node.name, loc=node.loc).out()
        if not f.table:
            return ctx.b.param(f.name, t, f.value, buffer=f.buffer)
        cols = t.shape[-1]
        rows = t.numel // cols
        value = None if f.value is None else f.value.reshape(rows, cols)
        table = ctx.b.param(f.name, TensorType((rows, cols), t.dtype), value, buffer=f.buffer)
        if rows not in positions:
            positions[rows] = ctx.b.add("arange", [], {"start": 0, "end": rows, "step": 1,
                                                       "dtype": dtypes.i64}, name="positions",
                                        loc=node.loc).out()
        out = ctx.b.add("embedding", [table, positions[rows]], {}, name=node.name,
                        loc=node.loc).out()
        if out.type.shape != t.shape:
            out = ctx.b.add("reshape", [out], {"shape": t.shape}, name=node.name,
                            loc=node.loc).out()
        return out

    return rewrite(graph, [fold])

