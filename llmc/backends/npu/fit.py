"""Fitting a phase into the scratchpad: row tiles, then an arena bound.

The scratchpad holds three things: the activation arena the memory plan lays
out, the scratch above it (values internal to a fused kernel, attention
scores and K/V tiles, copies of views) and, at the top, the ping/pong weight
tiles. `reserve` measures the last two for a graph by lowering it once
against a plan that gives every buffer bytes of its own (nothing is
checked; the program is thrown away); the arena may use the rest.

`fit_phase` keeps a graph whose every step's reads and writes (its anchored
peak, llmc.passes.memplan.spill) fit that arena. A prefill that does not
is split into row tiles by the tile-rows pass (llmc.passes.tile_rows:
`tiles_to_fit` picks the fewest tiles, from an estimate up, whose steps
fit; more tiles also shrink each attention's scores, so the bound is
measured again until both agree). Compile then plans the arena within the
bound (`Backend.fit`), spilling what does not fit to DRAM (llmc.passes.memplan:
CP-SAT's plan of the fewest bytes moved, or on problems of thousands of
buffers the greedy one), and the lowering renders those spills as DMA
(spills.py).

`last_logits` is for figures of long prompts only: a prefill whose logits
are its last position's (valid for a prompt that fills the whole window).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmc.backends.npu.layout import ALIGN, Dram
from llmc.ir.graph import Attrs, Graph, Node
from llmc.ir.types import TensorType


@dataclass(frozen=True)
class Fit:
    """A phase as the NPU runs it: the graph (row-tiled or as it came), its row
    tiles (1: untiled), the arena bound and the scratchpad bytes above it."""

    graph: Graph
    tiles: int
    arena_bytes: int
    reserve_bytes: int
    anchored_bytes: int


def spad_of(device: Any) -> tuple[int, int | None, int]:
    """(scratchpad bytes, banks, array columns) of a device."""
    from llmc.sim.hardware import from_device

    return (int(device.scratchpad.capacity_bytes), device.scratchpad.banks,
            from_device(device).array.cols)


def reserve(graph: Graph, device: Any) -> int:
    """Scratchpad bytes the lowering of `graph` needs above its activation
    arena: weight tile buffers and scratch (module docstring)."""
    from llmc.backends.npu.backend import attention_chip, layout_params
    from llmc.backends.npu.lower import Lowering
    from llmc.passes.memplan.liveness import liveness

    spad, banks, cols = spad_of(device)
    buffers, top = [], 0
    for b in liveness(graph, ALIGN).problem.buffers:
        buffers.append({"name": b.name, "size": b.size, "offset": top})
        top += -(-max(b.size, 1) // ALIGN) * ALIGN
    dram = Dram()
    params = layout_params({graph.name: graph}, dram)[graph.name]
    low = Lowering(graph, {"buffers": buffers, "arena_bytes": top}, dram, params, cols, spad,
                   banks, attention_chip(device))
    low.run(check=False)
    return (low.scratch_max - low.arena) + (spad - low.top())


def unfused(graph: Graph) -> Graph:
    """`graph` without kernel annotations: every value a buffer of the plan,
    so the planner may place and spill what a fused kernel would keep in scratch."""
    from llmc.passes.rewrite import annotate

    return annotate(graph, {}, drop=("fusion",))


def host_last(graph: Graph) -> Graph:
    """A row-tiled graph whose output is a float concat of per-tile
    `dequantize_int`s (the host's way out, which the tile-rows pass splits
    like any elementwise op): the integer tiles joined on the NPU, then one
    dequantize_int, as the untiled graph ends."""
    from llmc.backends.npu.lower import HOST_OPS

    swap: dict[Node, tuple[Node, Node, set[Node]]] = {}
    for v in graph.outputs:
        n = v.node
        parts = [x.node for x in n.inputs]
        if n.op != "concat" or not n.type.dtype.is_float or any(
                p.op not in HOST_OPS or p.inputs[1].node is not parts[0].inputs[1].node
                for p in parts):
            continue
        ints = tuple(p.inputs[0] for p in parts)
        joined = Node("concat", ints, n.attrs, (TensorType(n.type.shape, ints[0].type.dtype),),
                      f"{n.name}.int", n.loc)
        deq = Node(parts[0].op, (joined.out(), parts[0].inputs[1]), parts[0].attrs, n.types,
                   n.name, n.loc)
        swap[n] = (joined, deq, set(parts))
    if not swap:
        return graph
    gone = set(swap).union(*(parts for *_, parts in swap.values()))
    nodes = [n for n in graph.nodes if n not in gone]
    for joined, deq, _ in swap.values():
        nodes += [joined, deq]
    outs = [swap[v.node][1].out() if v.node in swap else v for v in graph.outputs]
    return Graph(graph.name, nodes, outs, graph.params)


def last_logits(graph: Graph) -> Graph:
    """A prefill that returns the logits of its last position only (what
    generation reads of a prompt that fills the window; the K/V it returns
    are unchanged): the final projection (output 0's int_linear, before the
    host's dequantize; in a row-tiled graph the last tile's) runs on the last
    row. For figures of long prompts, whose (T, vocab) int32 logits alone
    would fill the scratchpad many times over. As `fit_phase`'s `prepare`
    (after `host_last`) it keeps the tiles' other projections out."""
    from llmc.backends.npu.lower import HOST_OPS
    from llmc.passes.rewrite import eliminate_dead

    deq = graph.outputs[0].node
    top = deq.inputs[0].node if deq.op in HOST_OPS else deq
    lin = top.inputs[-1].node if top.op == "concat" else top
    x = lin.inputs[0] if lin.op == "int_linear" else None
    if x is None or x.type.rank != 3 or (top is lin and x.type.shape[1] < 2):
        return graph
    b, t, k = x.type.shape
    last = Node("slice", (x,), Attrs(dim=1, start=t - 1, end=t, step=1),
                (TensorType((b, 1, k), x.type.dtype),), f"{lin.name}.last", lin.loc)
    y = lin.type
    new_lin = Node(lin.op, (last.out(), *lin.inputs[1:]), lin.attrs,
                   (TensorType((b, 1, y.shape[-1]), y.dtype),), f"{lin.name}.last_row",
                   lin.loc)
    nodes = [n for n in graph.nodes if n not in (lin, top, deq)] + [last, new_lin]
    out = new_lin.out()
    if deq is not top:
        out_t = deq.type
        new_deq = Node(deq.op, (out, *deq.inputs[1:]), deq.attrs,
                       (TensorType((b, 1, out_t.shape[-1]), out_t.dtype),), deq.name, deq.loc)
        nodes.append(new_deq)
        out = new_deq.out()
    return eliminate_dead(Graph(graph.name, nodes, [out, *graph.outputs[1:]], graph.params))


def fit_phase(graph: Graph, device: Any,
              prepare: Callable[[Graph], Graph] | None = None) -> Fit:
    """The graph of one phase, row-tiled where its steps need more than the
    scratchpad leaves the arena, and that arena's bound (module docstring).
    `prepare` rewrites each row-tiled candidate before it is measured and
    returned (default `host_last`). UsageError (from the tile-rows pass)
    when even one row per tile leaves a step too large."""
    prep = prepare or host_last
    from llmc.passes.memplan.liveness import liveness
    from llmc.passes.memplan.spill import anchored_peak
    from llmc.passes.tile_rows import tile_rows, tiles_to_fit, token_count

    spad = spad_of(device)[0]
    g, tiles = graph, 1
    while True:
        extra = reserve(g, device)
        bound = max(0, spad - extra) // ALIGN * ALIGN
        peak = anchored_peak(liveness(g, ALIGN).problem)[1]
        if peak <= bound or (g is not graph and (token_count(graph) < 2
                                                 or tiles >= token_count(graph))):
            return Fit(g, tiles, bound, extra, peak)
        if g is graph:   # first without kernels: their internal values take scratch
            g = base = unfused(graph)
            continue
        if bound <= spad // 4:   # the scratch itself (whole-prompt K/V, scores) too big
            tiles = min(2 * tiles, token_count(graph))
            g = prep(tile_rows(base, tiles))
            continue
        # a step's bytes shrink about as its rows: start from that estimate
        guess = max(tiles + 1, math.ceil(tiles * peak / max(bound, 1)))
        choice = tiles_to_fit(base, bound, prepare=prep, min_tiles=guess, alignment=ALIGN)
        g, tiles = prep(choice.graph), choice.tiles


__all__ = ["Fit", "fit_phase", "host_last", "last_logits", "reserve", "unfused"]
