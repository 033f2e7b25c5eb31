"""Rewrites as tables of small pure functions (docs/style.md, rule 3).

A rule looks at one node (already rebuilt on top of earlier rewrites) and
returns a replacement value built with `ctx.b`, or None. `rewrite` applies
the first matching rule per node, then removes dead nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llmc.ir.graph import Attrs, Builder, Graph, Node, Value
from llmc.ir.types import TensorType

Rule = Callable[[Node, "RewriteCtx"], Value | None]


class _Builder(Builder):
    """A Builder whose ops default to the module path of the node being
    rewritten, so what a rule adds stays in that node's layer (fusion and the
    cost model's per-layer counts read it)."""

    loc = ""

    def add(self, op: str, inputs: list[Value] | tuple[Value, ...] = (),
            attrs: Mapping[str, Any] | None = None, name: str | None = None,
            types: tuple[TensorType, ...] | None = None, loc: str = "") -> Node:
        if not loc and op not in ("param", "input"):
            loc = self.loc
        return super().add(op, inputs, attrs, name, types, loc)


class RewriteCtx:
    def __init__(self, graph: Graph, taken: set[str]) -> None:
        self.graph = graph
        self.b = _Builder(graph)
        self.b._names |= taken  # new nodes must not reuse any original name


def rewrite(graph: Graph, rules: Sequence[Rule]) -> Graph:
    """A new graph with `rules` applied once over the nodes, in order."""
    out = Graph(graph.name, params=dict(graph.params))
    ctx = RewriteCtx(out, {n.name for n in graph.nodes})
    remap: dict[Value, Value] = {}
    for node in graph.nodes:
        inputs = tuple(remap.get(v, v) for v in node.inputs)
        new = node if inputs == node.inputs else Node(
            node.op, inputs, node.attrs, node.types, node.name, node.loc)
        out.nodes.append(new)
        for i in range(len(node.types)):
            remap[Value(node, i)] = Value(new, i)
        ctx.b.loc = node.loc
        for rule in rules:
            replacement = rule(new, ctx)
            if replacement is not None:
                remap[Value(node, 0)] = replacement
                break
    out.outputs = [remap.get(v, v) for v in graph.outputs]
    return eliminate_dead(out)


def eliminate_dead(graph: Graph) -> Graph:
    """Drop nodes no output depends on (graph inputs always stay)."""
    live: set[int] = set()
    stack = [v.node for v in graph.outputs]
    while stack:
        n = stack.pop()
        if id(n) in live:
            continue
        live.add(id(n))
        stack.extend(v.node for v in n.inputs)
    nodes = [n for n in graph.nodes if id(n) in live or n.op == "input"]
    used = {n.attrs["name"] for n in nodes if n.op == "param"}
    return Graph(graph.name, nodes, list(graph.outputs),
                 {k: v for k, v in graph.params.items() if k in used})


def producer(v: Value, op: str) -> Node | None:
    """v's node if it is an `op` with a single output, else None."""
    return v.node if v.node.op == op else None


def scalar_const(v: Value) -> float | None:
    n = v.node
    if n.op == "const" and n.type.numel == 1:
        return float(n.attrs["value"])
    return None


def annotate(graph: Graph, extra: dict[Node, dict], drop: tuple[str, ...] = ()) -> Graph:
    """A copy of `graph` whose nodes in `extra` carry those attributes too
    (replacing any of the same name) and no node the attributes named in
    `drop`; values and order are unchanged."""
    out = Graph(graph.name, params=graph.params)
    remap: dict[Value, Value] = {}
    for node in graph.nodes:
        inputs = tuple(remap.get(v, v) for v in node.inputs)
        attrs = Attrs(dict(node.attrs, **extra[node])) if node in extra else node.attrs
        if any(k in attrs for k in drop):
            attrs = Attrs({k: v for k, v in attrs.items() if k not in drop})
        new = node if inputs == node.inputs and attrs is node.attrs else Node(
            node.op, inputs, attrs, node.types, node.name, node.loc)
        out.nodes.append(new)
        for i in range(len(node.types)):
            remap[Value(node, i)] = Value(new, i)
    out.outputs = [remap.get(v, v) for v in graph.outputs]
    return out
