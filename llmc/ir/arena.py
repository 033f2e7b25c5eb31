"""Running a graph inside one flat arena, following a memory plan.

Every planned value is written into the arena at its offset and read back
from there by its consumers (views stay numpy views of arena memory), so a
plan that lets two live tensors overlap corrupts the result: equal outputs
prove the plan safe on this run.

A plan with spills moves values out and back: after the last step of a
segment the value is copied to a DRAM side store and its arena bytes are
left to others; before the first step of its next segment it is copied back
into the arena at that segment's offset. While out, the interpreter holds
only a poisoned copy (every byte 0xA5), so an op that reads a value the plan
says is spilled gets garbage, and the outputs differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from llmc.errors import UsageError
from llmc.ir.alias import alias_root
from llmc.ir.graph import Graph, Node, Value
from llmc.ir.interp import _run_node, bind_inputs
from llmc.ir.ops import get_op

POISON = 0xA5


class SegmentLike(Protocol):
    """A stay in the arena: steps [start, end] at offset (memplan's Segment)."""

    start: int
    end: int
    offset: int


def interpret_in_arena(graph: Graph, inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray],
                       offsets: Mapping[str, int], arena_bytes: int,
                       spills: Mapping[str, Sequence[SegmentLike]] | None = None
                       ) -> list[np.ndarray]:
    """Like `interpret`, with each value named in `offsets` (by node name, or
    "name#i" for output i of a multi-output node) stored in one arena.

    `spills` (a plan's ``spills.segments``): for each spilled value, its
    stays in the arena in step order; steps are node positions, and a stay
    that starts at ``len(graph.nodes)`` holds a graph output at the end."""
    arena = np.zeros(arena_bytes, dtype=np.uint8)
    bound = bind_inputs(graph, inputs)
    env: dict[Node, tuple[np.ndarray, ...]] = {}
    moves = _Moves(graph, spills or {})
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        for t, node in enumerate(graph.nodes):
            moves.reload(t, arena, env, graph, bound)
            outs = list(_run_node(graph, node, env, bound))
            for i, value in enumerate(outs):
                key = node.name if len(outs) == 1 else f"{node.name}#{i}"
                if key in offsets:
                    outs[i] = _place(arena, offsets[key], value, key)
            env[node] = tuple(outs)
            moves.spill(t, env, graph, bound)
        moves.reload(len(graph.nodes), arena, env, graph, bound)
    return [np.array(env[v.node][v.index]) for v in graph.outputs]


class _Moves:
    """The spill plan as events by step: which values go out after a step,
    which come back (and where) before one; and the DRAM side store."""

    def __init__(self, graph: Graph, spills: Mapping[str, Sequence[SegmentLike]]) -> None:
        by_name: dict[str, Value] = {}
        for node in graph.nodes:
            for i in range(len(node.types)):
                by_name[node.name if len(node.types) == 1 else f"{node.name}#{i}"] = \
                    Value(node, i)
        unknown = sorted(set(spills) - set(by_name))
        if unknown:
            raise UsageError(f"spill plan names values the graph lacks: {unknown[:5]}")
        self.out_after: dict[int, list[tuple[str, Value]]] = {}
        self.back_before: dict[int, list[tuple[str, Value, int]]] = {}
        for name, segs in spills.items():
            v = by_name[name]
            for s, nxt in zip(segs, segs[1:], strict=False):
                self.out_after.setdefault(s.end, []).append((name, v))
                self.back_before.setdefault(nxt.start, []).append((name, v, nxt.offset))
        self.views: dict[Value, list[Node]] = {}  # value -> views of it, in graph order
        for node in graph.nodes:
            if get_op(node.op).kind == "view":
                self.views.setdefault(alias_root(Value(node, 0)), []).append(node)
        self.dram: dict[str, np.ndarray] = {}

    def spill(self, t: int, env: dict, graph: Graph, bound: dict) -> None:
        for name, v in self.out_after.get(t, []):
            value = env[v.node][v.index]
            self.dram.setdefault(name, np.array(value))  # written once: values never change
            poisoned = np.empty_like(self.dram[name])
            poisoned.view(np.uint8)[...] = POISON
            self._rebind(v, poisoned, env, graph, bound)

    def reload(self, t: int, arena: np.ndarray, env: dict, graph: Graph, bound: dict) -> None:
        for name, v, offset in self.back_before.get(t, []):
            self._rebind(v, _place(arena, offset, self.dram[name], name), env, graph, bound)

    def _rebind(self, v: Value, value: np.ndarray, env: dict, graph: Graph,
                bound: dict) -> None:
        """Point `v` at `value` and re-run the views of it already made, so
        they see its new home."""
        outs = list(env[v.node])
        outs[v.index] = value
        env[v.node] = tuple(outs)
        for view in self.views.get(v, []):
            if view in env:
                env[view] = tuple(_run_node(graph, view, env, bound))


def _place(arena: np.ndarray, offset: int, value: np.ndarray, key: str) -> np.ndarray:
    value = np.ascontiguousarray(value)
    if offset < 0 or offset + value.nbytes > arena.size:
        raise UsageError(f"plan puts {key} ({value.nbytes} B) at {offset}, outside the "
                         f"{arena.size}-byte arena")
    view = arena[offset:offset + value.nbytes].view(value.dtype).reshape(value.shape)
    view[...] = value
    return view
