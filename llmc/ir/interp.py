"""The reference interpreter: runs a graph with each op's numpy semantics.

This is the golden model every backend is checked against. Values are held
in the numpy type of their IR dtype (bf16 rounded, held in float32) and
freed after their last use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from llmc.errors import IRError, UsageError
from llmc.ir import dtypes
from llmc.ir.graph import Graph, Node, Value
from llmc.ir.ops import get_op
from llmc.ir.types import TensorType


def _conform(x: np.ndarray, t: TensorType, where: str) -> np.ndarray:
    x = np.asarray(x)
    if tuple(x.shape) != t.shape:
        raise IRError(f"{where}: value of shape {tuple(x.shape)} where {t} was expected")
    if t.dtype == dtypes.bf16:
        return dtypes.round_bf16(x.astype(np.float32))
    return x.astype(t.dtype.np, copy=False)


def bind_inputs(graph: Graph, inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray]
                ) -> dict[Node, np.ndarray]:
    """Match user inputs (by position or by name) to the graph's input nodes."""
    nodes = graph.inputs
    if isinstance(inputs, Mapping):
        missing = [n.name for n in nodes if n.name not in inputs]
        extra = sorted(set(inputs) - {n.name for n in nodes})
        if missing or extra:
            raise UsageError(f"graph @{graph.name} inputs: missing {missing}, unexpected {extra}")
        values = [inputs[n.name] for n in nodes]
    else:
        if len(inputs) != len(nodes):
            raise UsageError(f"graph @{graph.name} takes {len(nodes)} inputs "
                             f"({', '.join(n.name for n in nodes)}), got {len(inputs)}")
        values = list(inputs)
    return {n: _conform(v, n.type, f"input %{n.name}") for n, v in zip(nodes, values, strict=True)}


def interpret(graph: Graph, inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray],
              on_value: Callable[[Node, tuple[np.ndarray, ...]], None] | None = None
              ) -> list[np.ndarray]:
    """Run `graph` on `inputs`; return its outputs. `on_value(node, outs)` is
    called after each node (used to trace or to place values in an arena)."""
    if graph.shape_only:
        missing = [k for k, v in graph.params.items() if v is None]
        raise UsageError(f"graph @{graph.name} is shape-only ({len(missing)} params have no "
                         f"values, e.g. {missing[0]}); load real weights to run it")
    env: dict[Node, tuple[np.ndarray, ...]] = {}
    bound = bind_inputs(graph, inputs)
    last_use = _last_uses(graph)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        for i, node in enumerate(graph.nodes):
            env[node] = _run_node(graph, node, env, bound)
            if on_value is not None:
                on_value(node, env[node])
            for dead in last_use.get(i, ()):
                env.pop(dead, None)
    return [env[v.node][v.index] for v in graph.outputs]


def _run_node(graph: Graph, node: Node, env: dict[Node, tuple[np.ndarray, ...]],
              bound: dict[Node, np.ndarray]) -> tuple[np.ndarray, ...]:
    if node.op == "input":
        return (bound[node],)
    if node.op == "param":
        return (_conform(graph.params[node.attrs["name"]], node.type, f"param %{node.name}"),)
    args = [env[v.node][v.index] for v in node.inputs]
    try:
        result = get_op(node.op).run(args, node.attrs)
    except IRError as exc:
        raise IRError(f"%{node.name} = {node.op}: {exc}") from None
    outs = result if isinstance(result, tuple) else (result,)
    return tuple(_conform(o, t, f"%{node.name} = {node.op}") for o, t in zip(outs, node.types, strict=True))


def _last_uses(graph: Graph) -> dict[int, list[Node]]:
    """Step index -> nodes whose values are dead after that step."""
    last: dict[Node, int] = {}
    for i, n in enumerate(graph.nodes):
        for v in n.inputs:
            last[v.node] = i
    keep = {v.node for v in graph.outputs}
    by_step: dict[int, list[Node]] = {}
    for n, i in last.items():
        if n not in keep:
            by_step.setdefault(i, []).append(n)
    return by_step


def value_of(outputs: list[np.ndarray], graph: Graph, value: Value) -> np.ndarray:
    return outputs[graph.outputs.index(value)]
