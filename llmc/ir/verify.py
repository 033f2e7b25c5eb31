"""The verifier: the IR's invariants, executable. Run after every stage in tests."""

from __future__ import annotations

from collections.abc import Callable

from llmc.errors import IRError
from llmc.ir.graph import Graph, Node
from llmc.ir.ops import get_op
from llmc.ir.ops.registry import ANNOTATIONS


def verify(graph: Graph, extra: list[Callable[[Graph], list[str]]] | None = None) -> None:
    """Raise IRError listing every broken invariant: SSA (unique names, defs
    before uses), known ops with their arity and attributes, output types
    equal to the op's type rule, params present, outputs defined."""
    problems: list[str] = []
    seen: set[int] = set()
    names: set[str] = set()
    for n in graph.nodes:
        problems += _check_node(n, seen, names)
        seen.add(id(n))
        names.add(n.name)
    for v in graph.outputs:
        if id(v.node) not in seen:
            problems.append(f"output {v.ref} is not a node of the graph")
    for p in graph.param_nodes:
        if p.attrs.get("name") not in graph.params:
            problems.append(f"param %{p.name} ({p.attrs.get('name')}) has no entry in params")
        value = graph.params.get(p.attrs.get("name"))
        if value is not None and tuple(value.shape) != p.type.shape:
            problems.append(f"param %{p.name}: value shape {tuple(value.shape)} != {p.type}")
    for check in extra or []:
        problems += check(graph)
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise IRError(f"graph @{graph.name} is invalid: " + "; ".join(problems[:10]) + more)


def _check_node(n: Node, seen: set[int], names: set[str]) -> list[str]:
    where = f"%{n.name} = {n.op}"
    if n.name in names:
        return [f"{where}: name defined twice"]
    try:
        op = get_op(n.op)
    except IRError as exc:
        return [f"{where}: {exc}"]
    problems = []
    lo, hi = op.arity
    if not lo <= len(n.inputs) <= hi:
        problems.append(f"{where}: takes {lo}..{hi} inputs, got {len(n.inputs)}")
    for v in n.inputs:
        if id(v.node) not in seen:
            problems.append(f"{where}: input {v.ref} is not defined before use")
    missing = [a for a in op.attrs if a not in n.attrs]
    unknown = [a for a in n.attrs if a not in op.attrs + op.optional_attrs + ANNOTATIONS]
    if missing:
        problems.append(f"{where}: missing attributes {missing}")
    if unknown:
        problems.append(f"{where}: unknown attributes {unknown}")
    if problems or op.kind == "source" and n.op in ("input", "param"):
        return problems
    try:
        want = op.infer([v.type for v in n.inputs], n.attrs)
    except IRError as exc:
        return [f"{where}: {exc}"]
    if tuple(want) != n.types:
        problems.append(f"{where}: types {', '.join(map(str, n.types))} but the op's rule "
                        f"gives {', '.join(map(str, want))}")
    return problems
