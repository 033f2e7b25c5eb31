"""Running a graph inside one flat arena, following a memory plan.

Every planned value is written into the arena at its offset and read back
from there by its consumers (views stay numpy views of arena memory), so a
plan that lets two live tensors overlap corrupts the result: equal outputs
prove the plan safe on this run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from llmc.errors import UsageError
from llmc.ir.graph import Graph, Node
from llmc.ir.interp import _run_node, bind_inputs


def interpret_in_arena(graph: Graph, inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray],
                       offsets: Mapping[str, int], arena_bytes: int) -> list[np.ndarray]:
    """Like `interpret`, with each value named in `offsets` (by node name, or
    "name#i" for output i of a multi-output node) stored in one arena."""
    arena = np.zeros(arena_bytes, dtype=np.uint8)
    bound = bind_inputs(graph, inputs)
    env: dict[Node, tuple[np.ndarray, ...]] = {}
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        for node in graph.nodes:
            outs = list(_run_node(graph, node, env, bound))
            for i, value in enumerate(outs):
                key = node.name if len(outs) == 1 else f"{node.name}#{i}"
                if key in offsets:
                    outs[i] = _place(arena, offsets[key], value, key)
            env[node] = tuple(outs)
    return [np.array(env[v.node][v.index]) for v in graph.outputs]


def _place(arena: np.ndarray, offset: int, value: np.ndarray, key: str) -> np.ndarray:
    value = np.ascontiguousarray(value)
    if offset < 0 or offset + value.nbytes > arena.size:
        raise UsageError(f"plan puts {key} ({value.nbytes} B) at {offset}, outside the "
                         f"{arena.size}-byte arena")
    view = arena[offset:offset + value.nbytes].view(value.dtype).reshape(value.shape)
    view[...] = value
    return view
