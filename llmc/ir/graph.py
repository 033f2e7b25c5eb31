"""The SSA graph: frozen nodes, values that name a node's output, a graph.

A `Node` is one operation: op name, input values, immutable attributes and
its output types. A `Graph` lists nodes in execution (topological) order;
`input` nodes are the graph's arguments, `param` nodes its named weights
(whose values live in `Graph.params`, or are absent for shape-only graphs).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmc.ir.types import TensorType


class Attrs(Mapping[str, Any]):
    """An immutable, ordered-by-key attribute mapping."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any] | None = None, **kw: Any) -> None:
        merged = dict(items or {}, **kw)
        self._items = tuple(sorted((k, _freeze(v)) for k, v in merged.items()))

    def __getitem__(self, key: str) -> Any:
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Attrs) and self._items == other._items

    def __repr__(self) -> str:
        return f"Attrs({dict(self._items)!r})"

    def replace(self, **kw: Any) -> Attrs:
        return Attrs(dict(self._items), **kw)


def _freeze(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, np.generic):
        return v.item()
    return v


@dataclass(frozen=True, eq=False)
class Node:
    """One SSA operation. Identity is the node itself (eq by `is`)."""

    op: str
    inputs: tuple[Value, ...]
    attrs: Attrs
    types: tuple[TensorType, ...]
    name: str
    loc: str = ""  # where it came from: module path of the source model (text: loc("..."))

    @property
    def type(self) -> TensorType:
        """The single output's type (most ops have one output)."""
        return self.types[0]

    def out(self, index: int = 0) -> Value:
        return Value(self, index)

    def __repr__(self) -> str:
        return f"<Node %{self.name} = {self.op}>"


@dataclass(frozen=True, eq=False)
class Value:
    """Output `index` of `node`."""

    node: Node
    index: int = 0

    @property
    def type(self) -> TensorType:
        return self.node.types[self.index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Value) and other.node is self.node and other.index == self.index

    def __hash__(self) -> int:
        return hash((id(self.node), self.index))

    @property
    def ref(self) -> str:
        return f"%{self.node.name}" + (f"#{self.index}" if self.index else "")


@dataclass
class Graph:
    """nodes in execution order; outputs are values of those nodes; params maps
    a param node's `name` attribute to its weights (None when shape-only)."""

    name: str
    nodes: list[Node] = field(default_factory=list)
    outputs: list[Value] = field(default_factory=list)
    params: dict[str, np.ndarray | None] = field(default_factory=dict)

    @property
    def inputs(self) -> list[Node]:
        return [n for n in self.nodes if n.op == "input"]

    @property
    def param_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.op == "param"]

    @property
    def shape_only(self) -> bool:
        return any(v is None for v in self.params.values())

    def users(self) -> dict[Node, list[Node]]:
        """For each node, the nodes that read one of its outputs."""
        users: dict[Node, list[Node]] = {n: [] for n in self.nodes}
        for n in self.nodes:
            for v in n.inputs:
                if n not in users[v.node]:
                    users[v.node].append(n)
        return users

    def to_networkx(self):  # noqa: ANN201 - networkx is imported lazily
        """A networkx.DiGraph view: nodes are SSA names, edges carry the value."""
        import networkx as nx

        g = nx.DiGraph(name=self.name)
        for n in self.nodes:
            g.add_node(n.name, op=n.op, types=n.types)
            for v in n.inputs:
                g.add_edge(v.node.name, n.name, index=v.index, type=v.type)
        return g

    def topological_order(self) -> list[Node]:
        """A topological order (the stored order if it already is one)."""
        position = {n: i for i, n in enumerate(self.nodes)}
        if all(position[v.node] < position[n] for n in self.nodes for v in n.inputs
               if v.node in position):
            return list(self.nodes)
        import networkx as nx

        by_name = {n.name: n for n in self.nodes}
        order = nx.lexicographical_topological_sort(self.to_networkx(),
                                                    key=lambda s: position[by_name[s]])
        return [by_name[s] for s in order]

    def __str__(self) -> str:
        from llmc.ir.text import print_graph

        return print_graph(self)


class Builder:
    """Appends nodes to a graph, inferring output types from the op registry
    and giving each node a unique SSA name."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._names: set[str] = {n.name for n in graph.nodes}

    def unique(self, hint: str) -> str:
        base = "".join(c if c.isalnum() or c in "_." else "_" for c in hint) or "v"
        name, i = base, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    def add(self, op: str, inputs: list[Value] | tuple[Value, ...] = (),
            attrs: Mapping[str, Any] | None = None, name: str | None = None,
            types: tuple[TensorType, ...] | None = None, loc: str = "") -> Node:
        from llmc.ir.ops import get_op

        a = Attrs(attrs or {})
        if types is None:
            types = get_op(op).infer([v.type for v in inputs], a)
        node = Node(op, tuple(inputs), a, tuple(types), self.unique(name or op), loc)
        self.graph.nodes.append(node)
        return node

    def input(self, name: str, type_: TensorType) -> Value:
        return self.add("input", (), {}, name, (type_,)).out()

    def param(self, name: str, type_: TensorType, value: np.ndarray | None,
              buffer: bool = False) -> Value:
        self.graph.params[name] = value
        attrs = {"name": name, **({"buffer": True} if buffer else {})}
        return self.add("param", (), attrs, name, (type_,)).out()

    def op(self, op: str, *inputs: Value, name: str | None = None, **attrs: Any) -> Value:
        return self.add(op, inputs, attrs, name).out()
