"""tile-rows: split a prefill graph's position-wise work into row tiles, so
each step reads and writes less (what a scratchpad compiler does before it
plans a scratchpad smaller than the whole layer's tensors).

Row r of most activations of a prefill depends only on token r: the
embedding, norms, linear layers, activations, residual adds, the MLP's
product, RoPE. Such an op runs once per tile of rows (tokens [a, b)), on
tiles of its inputs; weights and other inputs without a token axis are read
whole. Attention (float or integer) runs per query tile against all keys
and values; a causal one gets a boolean mask instead of its causal flag
(query a + i sees keys j <= a + i: `le(positions (1, T), a + i (t, 1))`),
so each tile scores the same (t, T) block of products the whole does and
rounds them alike. (Scoring only the key prefix [0, b) would be the same
function and cheaper, but numpy's products of another shape round
differently: measured, not bit-exact.) Everything else (and every graph
output, and every key/value an attention reads) is joined with one
`concat` along the token axis where it is first needed; tiles of a whole
value are `slice` views of it. Nothing new enters the IR: slice, concat,
arange and le are registry ops.

Bit for bit: numpy's matrix products of 32 rows give the bits of the same
rows in a product of 64 (llmc-tiny, 64 tokens, 2 or 3 tiles: measured equal),
but not for every tile height (16 rows, 4 tiles: 1.5e-6 of the logits'
scale); integer graphs are exact for any tile count.

The token axis of each value is found by propagation (`token_axes`): the
token ids (an integer input [B, T]) and positions (arange 0..T) carry it;
an op carries it to its output when its rule in `_RULES` says the op is
row-wise there. Tiled nodes are named `NAME.rK`; the new graph is ordered
tile by tile where the data allows (tile 0 runs on until it needs every
tile, e.g. at a key/value concat), which keeps fewer tiles alive at once.
Run it before the fuse pass: a tile belongs to no kernel of the whole.

`tiles_to_fit(graph, capacity)` picks the smallest tile count whose
anchored peak (the bytes one step reads and writes, memplan.spill) fits.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from llmc.errors import UsageError
from llmc.ir import dtypes
from llmc.ir.graph import Attrs, Builder, Graph, Node, Value
from llmc.ir.ops import get_op
from llmc.passes.rewrite import eliminate_dead

# ops whose row r of output depends only on row r of x (input 0) when the
# token axis is not x's last dim; their other inputs are weights
_ROW_LINALG = ("linear", "int_linear", "qlinear", "wq_linear")
_NORMS = ("rms_norm", "layer_norm", "int_rms_norm")
# softmax(q k^T [causal, bool mask]) v per query row; keys and values whole
_ATTENTION = ("attention", "int_attention")


def token_count(graph: Graph) -> int:
    """T of a prefill graph: the length of its integer [B, T] token input (0: none)."""
    for n in graph.inputs:
        if n.type.rank == 2 and n.type.dtype.is_int:
            return n.type.shape[1]
    return 0


# ---- which values carry the token axis -------------------------------------------

AxisRule = Callable[[Node, list["int | None"], int], "int | None"]


def _elementwise(node: Node, axes: list[int | None], t: int) -> int | None:
    """Broadcasting ops: every input with the token axis puts it on the same
    output dim (full length there); the others broadcast along it."""
    rank = node.type.rank
    dims = {a + rank - v.type.rank for v, a in zip(node.inputs, axes, strict=True)
            if a is not None}
    if len(dims) != 1:
        return None
    d = dims.pop()
    for v, a in zip(node.inputs, axes, strict=True):
        at = d - (rank - v.type.rank)
        if a is None and at >= 0 and v.type.shape[at] != 1:
            return None
        if a is not None and v.type.shape[a] != t:
            return None
    return d


def _row_of_x(node: Node, axes: list[int | None], t: int) -> int | None:
    """Linear layers and norms: x's rows (not its last dim) map to output rows."""
    a = axes[0]
    if a is None or a == node.inputs[0].type.rank - 1 or any(x is not None for x in axes[1:]):
        return None
    return a


def _embedding(node: Node, axes: list[int | None], t: int) -> int | None:
    return axes[1] if axes[0] is None else None


def _reshape_dim(old: tuple[int, ...], a: int, new: tuple[int, ...]) -> int | None:
    """The dim of `new` that holds dim `a` of `old` unchanged (same elements
    before it), or None when the reshape mixes the token axis with others."""
    before = math.prod(old[:a])
    for d, size in enumerate(new):
        if size == old[a] and math.prod(new[:d]) == before:
            return d
    return None


def _reshape(node: Node, axes: list[int | None], t: int) -> int | None:
    a = axes[0]
    return None if a is None else _reshape_dim(node.inputs[0].type.shape, a, node.type.shape)


def _permute(node: Node, axes: list[int | None], t: int) -> int | None:
    a = axes[0]
    return None if a is None else list(node.attrs["perm"]).index(a)


def _slice(node: Node, axes: list[int | None], t: int) -> int | None:
    a = axes[0]
    rank = node.type.rank
    return None if a is None or node.attrs["dim"] % rank == a else a


def _expand(node: Node, axes: list[int | None], t: int) -> int | None:
    a = axes[0]
    if a is None:
        return None
    d = a + node.type.rank - node.inputs[0].type.rank
    return d if node.type.shape[d] == t else None


def _concat(node: Node, axes: list[int | None], t: int) -> int | None:
    a = axes[0]
    same = all(x == a for x in axes)
    return a if a is not None and same and node.attrs["dim"] % node.type.rank != a else None


def _attention(node: Node, axes: list[int | None], t: int) -> int | None:
    """Per query tile; keys and values are read whole (their causal prefix)."""
    sparse = any(k in node.attrs for k in ("window", "sinks", "block_size", "block_topk"))
    if len(node.inputs) != 3 or sparse or axes[0] != 2:
        return None
    tq, tk = node.inputs[0].type.shape[2], node.inputs[1].type.shape[2]
    return 2 if tq == tk == t else None


_RULES: dict[str, AxisRule] = {
    **{op: _row_of_x for op in _ROW_LINALG + _NORMS},
    "embedding": _embedding, "reshape": _reshape, "permute": _permute, "slice": _slice,
    "expand": _expand, "concat": _concat, **{op: _attention for op in _ATTENTION},
}


def _rule(node: Node) -> AxisRule | None:
    if node.op in _RULES:
        return _RULES[node.op]
    if get_op(node.op).kind == "elementwise" and len(node.types) == 1:
        return _elementwise
    return None


def token_axes(graph: Graph) -> dict[Value, int]:
    """The values whose row r (along the returned dim) depends only on token r."""
    t = token_count(graph)
    axes: dict[Value, int] = {}
    for node in graph.nodes:
        if node.op == "input" and node.type.rank == 2 and node.type.dtype.is_int \
                and node.type.shape[1] == t:
            axes[node.out()] = 1
        elif node.op == "arange" and (node.attrs["start"], node.attrs["step"],
                                      node.attrs["end"]) == (0, 1, t):
            axes[node.out()] = 0
        elif (rule := _rule(node)) is not None:
            a = rule(node, [axes.get(v) for v in node.inputs], t)
            if a is not None:
                axes[node.out()] = a
    return axes


# ---- the rewrite -----------------------------------------------------------------


@dataclass
class _Tiler:
    """Builds the tiled graph: each value as a whole, as tiles, or both."""

    graph: Graph
    out: Graph
    bounds: list[tuple[int, int]]
    axes: dict[Value, int]

    def __post_init__(self) -> None:
        self.b = Builder(self.out)
        self.b._names |= {n.name for n in self.graph.nodes}
        self.whole: dict[Value, Value] = {}
        self.parts: dict[Value, list[Value]] = {}
        self.key: dict[Node, tuple[int, int]] = {}   # (tile, original position): order
        self.pos = 0
        self.masks: dict[int, Value] = {}               # tile -> its causal mask
        self.pos_node: Value | None = None              # positions 0..T-1, for the masks
        self.keys: Value | None = None                  # them as a (1, T) row

    def _add(self, op: str, inputs: list[Value], attrs: Any, name: str, loc: str,
             tile: int) -> Value:
        node = self.b.add(op, inputs, attrs, name, loc=loc)
        self.key[node] = (tile, self.pos)
        return node.out()

    def get_whole(self, v: Value) -> Value:
        if v not in self.whole:     # only tiles so far: join them once
            self.whole[v] = self._add("concat", self.parts[v], {"dim": self.axes[v]},
                                      f"{v.node.name}.joined", v.node.loc, 0)
        return self.whole[v]

    def get_tile(self, v: Value, k: int) -> Value:
        if v not in self.parts:     # tiles of a whole value are views of it
            w = self.get_whole(v)
            self.parts[v] = [self._add("slice", [w], {"dim": self.axes[v], "start": lo,
                                                      "end": hi, "step": 1},
                                       f"{v.node.name}.r{j}", v.node.loc, j)
                             for j, (lo, hi) in enumerate(self.bounds)]
        return self.parts[v][k]

    def keep(self, node: Node) -> None:
        inputs = tuple(self.get_whole(v) for v in node.inputs)
        new = Node(node.op, inputs, node.attrs, node.types, node.name, node.loc)
        self.out.nodes.append(new)
        self.key[new] = (0, self.pos)
        for i in range(len(node.types)):
            self.whole[Value(node, i)] = Value(new, i)

    def split(self, node: Node) -> None:
        tiles = []
        for k, (lo, hi) in enumerate(self.bounds):
            attention = node.op in _ATTENTION
            inputs = [self.get_tile(v, k) if v in self.axes and (not attention or i == 0)
                      else self.get_whole(v) for i, v in enumerate(node.inputs)]
            attrs = _tile_attrs(node, self.axes, hi - lo)
            if attention and node.attrs["causal"]:
                inputs.append(self._causal_mask(k))
                attrs = attrs.replace(causal=False)
            tiles.append(self._add(node.op, inputs, attrs, f"{node.name}.r{k}", node.loc, k))
        self.parts[node.out()] = tiles

    def _causal_mask(self, k: int) -> Value:
        """mask (t, T): query lo + i sees key j <= lo + i. The tile scores all T
        keys as the whole does (the same products, so the same bits)."""
        if k in self.masks:
            return self.masks[k]
        t = self.bounds[-1][1]
        if self.pos_node is None:
            self.pos_node = self._add("arange", [], {"start": 0, "end": t, "step": 1,
                                                     "dtype": dtypes.i64}, "tile_pos", "", 0)
            self.keys = self._add("reshape", [self.pos_node], {"shape": [1, t]},
                                  "tile_keys", "", 0)
        lo, hi = self.bounds[k]
        rows = self._add("slice", [self.pos_node], {"dim": 0, "start": lo, "end": hi,
                                                    "step": 1}, f"tile_pos.r{k}", "", k)
        rows = self._add("reshape", [rows], {"shape": [hi - lo, 1]}, f"tile_rows.r{k}", "", k)
        self.masks[k] = self._add("le", [self.keys, rows], {}, f"tile_mask.r{k}", "", k)
        return self.masks[k]


def _tile_attrs(node: Node, axes: dict[Value, int], rows: int) -> Attrs:
    """A tile's attributes: shapes shrink along the token axis; a tile runs in
    no kernel the fuse pass made for the whole (run fuse after this pass)."""
    attrs = dict(node.attrs)
    attrs.pop("fusion", None)
    if node.op in ("reshape", "expand"):
        shape = list(attrs["shape"])
        shape[axes[node.out()]] = rows
        attrs["shape"] = shape
    return Attrs(attrs)


def _tileable(node: Node, axes: dict[Value, int]) -> bool:
    """Row-wise and computed (sources stay whole: their tiles are slices)."""
    return node.out() in axes and len(node.types) == 1 and get_op(node.op).kind != "source"


def tile_rows(graph: Graph, tiles: int, tile_first: bool = True) -> Graph:
    """`graph` with its position-wise work in `tiles` row tiles (module
    docstring); the same function of the same inputs. A graph with no token
    input, or fewer tokens than two, comes back unchanged; more tiles than
    tokens become one tile per token. `tile_first=False` keeps the order of
    the rewrite (each op for every tile, then the next op), which keeps more
    tiles alive at once (bench/memplan_scratchpad.py measures both)."""
    if tiles < 1:
        raise UsageError(f"tile-rows: the tile count must be at least 1, got {tiles}")
    t = token_count(graph)
    n = min(tiles, t)
    if n <= 1:
        return graph
    axes = token_axes(graph)
    bounds = [(k * t // n, (k + 1) * t // n) for k in range(n)]
    tiler = _Tiler(graph, Graph(graph.name, params=dict(graph.params)), bounds, axes)
    for pos, node in enumerate(graph.nodes):
        tiler.pos = pos
        if _tileable(node, axes):
            tiler.split(node)
        else:
            tiler.keep(node)
    tiler.pos = len(graph.nodes)
    tiler.out.outputs = [tiler.get_whole(v) for v in graph.outputs]
    out = eliminate_dead(tiler.out)
    if tile_first:
        out.nodes = _tile_order(out, tiler.key)
    return out


def _tile_order(graph: Graph, key: dict[Node, tuple[int, int]]) -> list[Node]:
    """A topological order that runs the lowest tile first wherever it can
    (then the original order), so a tile goes on through the next ops before
    the next tile starts."""
    seq = {n: i for i, n in enumerate(graph.nodes)}
    users = graph.users()
    waiting = {n: len({v.node for v in n.inputs}) for n in graph.nodes}
    ready = [(key[n], seq[n], n) for n in graph.nodes if waiting[n] == 0]
    heapq.heapify(ready)
    order: list[Node] = []
    while ready:
        *_, n = heapq.heappop(ready)
        order.append(n)
        for u in users[n]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, (key[u], seq[u], u))
    return order


def tile_rows_stage(arg: str) -> Any:
    """The pipeline stage `tile-rows:N` (N row tiles): `stage(graph, ctx)`."""
    if not arg.isdigit() or int(arg) < 1:
        raise UsageError(f"tile-rows: the tile count must be a positive integer, got {arg!r}")
    n = int(arg)

    def stage(graph: Graph, ctx: Any) -> Graph:
        return tile_rows(graph, n)
    return stage


# ---- how many tiles a capacity needs ---------------------------------------------


@dataclass(frozen=True)
class TileChoice:
    """tiles: the row tiles chosen (1: the graph as it was); graph: the tiled
    graph (before `prepare`); anchored_bytes: its anchored peak after
    `prepare` (the most one step reads and writes); capacity_bytes: what it
    had to fit (None: a tile count given, not chosen); tried: (tiles,
    anchored peak) of each count tried, in order of tiles."""

    tiles: int
    graph: Graph
    anchored_bytes: int
    capacity_bytes: int | None
    tried: tuple[tuple[int, int], ...]

    def describe(self) -> str:
        """One line for a report."""
        peak = f"its steps read and write at most {self.anchored_bytes:,} B at once"
        if self.capacity_bytes is None:
            return f"row tiles: {self.tiles} (as asked; {peak})"
        if self.tiles == 1:
            return f"row tiles: 1 (untiled: {peak}, within the {self.capacity_bytes:,} B arena)"
        fewer = ", ".join(f"{n} tile{'s' if n > 1 else ''}: {b:,} B"
                          for n, b in self.tried if n < self.tiles)
        return (f"row tiles: {self.tiles}, the fewest whose steps fit the "
                f"{self.capacity_bytes:,} B arena ({peak}; {fewer})")


def tiles_to_fit(graph: Graph, capacity: int | None,
                 prepare: Callable[[Graph], Graph] | None = None, min_tiles: int = 1,
                 max_tiles: int | None = None, alignment: int = 64) -> TileChoice:
    """The smallest tile count from `min_tiles` whose anchored peak fits
    `capacity` bytes, and the graph tiled so. `prepare` runs on each tiled
    graph before it is measured (the fuse pass, a re-typing to a target's
    element sizes), so the peak is the one a planner of the result will see.
    When even the finest tiling (one row per tile, or `max_tiles`) leaves a
    step over the capacity, UsageError says which step and how many bytes
    are missing. A capacity of None takes `min_tiles` as it is."""
    from llmc.passes.memplan.liveness import liveness
    from llmc.passes.memplan.spill import anchored_peak

    prep = prepare or (lambda g: g)
    t = token_count(graph)
    first = max(1, min(t, min_tiles))
    finest = max(first, min(t, max_tiles or t))
    tried: dict[int, tuple[Graph, tuple[int, int, list[Any]]]] = {}

    def measure(n: int) -> tuple[Graph, tuple[int, int, list[Any]]]:
        if n not in tried:
            g = tile_rows(graph, n)
            tried[n] = g, anchored_peak(liveness(prep(g), alignment).problem)
        return tried[n]

    def choice(n: int) -> TileChoice:
        peaks = tuple(sorted((k, p[1]) for k, (_, p) in tried.items()))
        return TileChoice(n, tried[n][0], tried[n][1][1], capacity, peaks)

    if capacity is None or measure(first)[1][1] <= capacity:
        measure(first)
        return choice(first)
    for n in range(first + 1, finest + 1):
        if n > first + 8:   # many tiles: first see whether the finest fits at all
            g, peak = measure(finest)
            if peak[1] > capacity:
                _refuse(g, peak, capacity, finest, prep)
        if measure(n)[1][1] <= capacity:
            return choice(n)
    g, peak = measure(finest)
    _refuse(g, peak, capacity, finest, prep)
    raise AssertionError("unreachable")


def _refuse(graph: Graph, peak: tuple[int, int, list[Any]], capacity: int, tiles: int,
            prepare: Callable[[Graph], Graph]) -> NoReturn:
    graph = prepare(graph)
    step, need, held = peak
    where = (f"%{graph.nodes[step].name} ({graph.nodes[step].op})" if step < len(graph.nodes)
             else "the graph's outputs")
    names = ", ".join(f"{b.name} ({b.size:,} B)" for b in held[:6])
    more = f" and {len(held) - 6} more" if len(held) > 6 else ""
    finest = "the finest" if tiles == token_count(graph) else "the most allowed"
    raise UsageError(
        f"no tiling fits the arena of {capacity:,} bytes: in {tiles} row tile(s), {finest}, "
        f"step {step} {where} still reads and writes {need:,} bytes, {need - capacity:,} more "
        f"({names}{more}); enlarge the arena")
