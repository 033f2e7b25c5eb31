"""K-sort: outlier-aware channel reordering of the KV cache at compile time
(after Trukhanov & Soloveychik 2024, "Accurate Block Quantization in LLMs
with Outliers"). Channels of similar magnitude are made to share a block, so
a BFP block's shared exponent no longer follows one outlier channel.

Within each KV head, K's output channels are permuted and Q's rows with them
(every query head of the group the same way), so q.k^T is unchanged. RoPE
rotates channel pairs (i, i + D/2) (the rotate-half layout), so a pair moves
as a unit: either to another pair slot (j, j + D/2), keeping rotate-half, or
side by side to (2j, 2j + 1), where the rotation becomes the interleaved
(a, b) -> (-b, a), written with reshape/slice/neg/concat. Each layer gets its
own RoPE tables with columns in the new order (one (max_T, G*D) table each
for cos and sin, broadcast over the query heads of a KV group by viewing q
as (B, G, H/G, T, D)). V's channels (no pairing) may be permuted too, with
O's input columns permuted to match, which leaves attention's output
unchanged. Everything happens in the weights: no run-time gather.

Orders: without data, K's pairs are sorted by the L2 norm of their two W_k
rows (the paper's criterion), side by side, and V keeps its order; with
calibration data korder.py plans the grouping that minimises the attention
error the block format adds.

The KV cache the graph returns (and a decode graph reads) is in the sorted
channel order; docs/quant_layouts.md records it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmc.errors import UsageError
from llmc.ir.dtypes import DType
from llmc.ir.graph import Graph, Node, Value
from llmc.ir.types import TensorType
from llmc.passes.quant import korder
from llmc.passes.quant.calibrate import Calibration, semantic_keys
from llmc.passes.rewrite import RewriteCtx, rewrite


@dataclass(frozen=True)
class Rope:
    """The matched rotate-half RoPE of one projection: out = x * cos + rot(x) * sin."""

    out: Node            # the add
    x: Value             # (B, heads, T, D), after reshape/permute of the projection
    cos: Node            # embedding(rope_cos, positions) (T, D)
    sin: Node
    proj: Node           # the linear producing x


def _as(v: Value, op: str) -> Node | None:
    return v.node if v.node.op == op else None


def _rotate_half_of(r: Value) -> Value | None:
    """x if r = concat(neg(x[..., D/2:]), x[..., :D/2]) along the last dim."""
    cat = _as(r, "concat")
    if cat is None or len(cat.inputs) != 2 or cat.attrs["dim"] not in (3, -1):
        return None
    neg, lo = _as(cat.inputs[0], "neg"), _as(cat.inputs[1], "slice")
    hi = _as(neg.inputs[0], "slice") if neg else None
    if hi is None or lo is None or hi.inputs[0] != lo.inputs[0]:
        return None
    d = lo.inputs[0].type.shape[-1]
    if (hi.attrs["start"], hi.attrs["end"], lo.attrs["start"], lo.attrs["end"]) != (
            d // 2, d, 0, d // 2) or hi.attrs["step"] != 1 or lo.attrs["step"] != 1:
        return None
    return lo.inputs[0]


def _projection(x: Value) -> Node | None:
    """The linear whose output x is, after reshape (B,T,H,D) and permute (0,2,1,3)."""
    p = _as(x, "permute")
    r = _as(p.inputs[0], "reshape") if p and tuple(p.attrs["perm"]) == (0, 2, 1, 3) else None
    lin = _as(r.inputs[0], "linear") if r else None
    return lin if lin is not None and lin.inputs[1].node.op == "param" else None


def match_rope(v: Value) -> Rope | None:
    add = _as(v, "add")
    if add is None:
        return None
    m1, m2 = _as(add.inputs[0], "mul"), _as(add.inputs[1], "mul")
    if m1 is None or m2 is None:
        return None
    x, cos = m1.inputs
    r, sin = m2.inputs
    if _rotate_half_of(r) != x or cos.node.op != "embedding" or sin.node.op != "embedding":
        return None
    proj = _projection(x)
    return Rope(add, x, cos.node, sin.node, proj) if proj else None


def _cache_source(v: Value) -> Value:
    """K/V as computed, looking through a decode graph's cache write."""
    ic = _as(v, "index_copy")
    return ic.inputs[2] if ic is not None else v


def _out_projection(attn: Node, users: dict[Node, list[Node]]) -> Node | None:
    """linear(reshape(permute(attention))) reading the attention output."""
    n = attn
    for op in ("permute", "reshape", "linear"):
        nxt = [u for u in users[n] if u.op == op]
        if len(nxt) != 1:
            return None
        n = nxt[0]
    return n if n.inputs[1].node.op == "param" else None


@dataclass
class _Layer:
    attn: Node
    q: Rope
    k: Rope
    v: Node              # v projection
    o: Node              # o projection
    heads: int
    kv_heads: int
    head_dim: int


def _layers(graph: Graph) -> list[_Layer]:
    users = graph.users()
    layers, problems = [], []
    for n in graph.nodes:
        if n.op != "attention":
            continue
        q, k = match_rope(n.inputs[0]), match_rope(_cache_source(n.inputs[1]))
        v = _projection(_cache_source(n.inputs[2]))
        o = _out_projection(n, users)
        if not (q and k and v and o):
            problems.append(f"{n.loc or n.name}")
            continue
        _, h, _, d = n.inputs[0].type.shape
        layers.append(_Layer(n, q, k, v, o, h, n.inputs[1].type.shape[1], d))
    if problems:
        raise UsageError("k-sort needs rotate-half RoPE on q/k projections and a plain o "
                         "projection; no match at " + ", ".join(problems))
    return layers


def weight_energy(w: np.ndarray, kv_heads: int, d: int) -> np.ndarray:
    """Squared L2 norm of each output row of a (G*D, in) weight, as (G, D)."""
    return (w.reshape(kv_heads, d, -1).astype(np.float64) ** 2).sum(-1)


def pair_order(energy: np.ndarray, kv_heads: int, d: int) -> np.ndarray:
    """Channel map per KV head, (G, D): new position p holds old channel map[g, p];
    RoPE pairs (j, j + D/2) sorted by descending energy land at (2j', 2j' + 1).
    `energy` is (G, D) (a channel's mean square) or a W_k (G*D, in) (row norms)."""
    norms = energy if energy.shape == (kv_heads, d) else weight_energy(energy, kv_heads, d)
    pair = norms[:, : d // 2] + norms[:, d // 2:]           # (G, D/2)
    sigma = np.argsort(-pair, axis=1, kind="stable")
    out = np.empty((kv_heads, d), np.int64)
    out[:, 0::2], out[:, 1::2] = sigma, sigma + d // 2
    return out


def pair_layout(kmap: np.ndarray) -> str:
    """"half" when every RoPE pair sits at (j, j + D/2) (rotate-half, the
    source layout), "pairs" when at (2j, 2j + 1) (interleaved)."""
    d = kmap.shape[1]
    if np.all(kmap[:, d // 2:] == kmap[:, : d // 2] + d // 2) and np.all(kmap[:, : d // 2] < d // 2):
        return "half"
    if np.all(kmap[:, 1::2] == kmap[:, 0::2] + d // 2) and np.all(kmap[:, 0::2] < d // 2):
        return "pairs"
    raise UsageError("k-sort: a channel order must keep RoPE pairs (j, j + D/2) at "
                     "(j', j' + D/2) or side by side")


def _rows(perm: np.ndarray, heads: int) -> np.ndarray:
    """Row indices of a (heads*D, in) weight for per-KV-head maps `perm` (G, D)."""
    g, d = perm.shape
    group = heads // g
    return np.concatenate([h * d + perm[h // group] for h in range(heads)])


def plan_orders(graph: Graph, cal: Calibration, fmt: DType
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Channel orders per attention (semantic key -> (kmap, vmap)) planned on
    calibration data for block format `fmt` (korder.py)."""
    keys = semantic_keys(graph)
    orders = {}
    for L in _layers(graph):
        sample = cal.kv.get(keys[L.attn])
        if sample is None:
            continue
        wo = graph.params.get(L.o.inputs[1].node.attrs["name"])
        orders[keys[L.attn]] = korder.plan(sample, wo, L.heads, fmt)
    return orders


def ksort(graph: Graph, orders: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
          ) -> Graph:
    """The graph with K/Q and V/O channels reordered (see the module docstring).
    orders (from plan_orders: attention key -> (kmap, vmap)) come from
    calibration; without them K's RoPE pairs are sorted by W_k row norms (the
    paper's criterion) and V keeps its order."""
    layers = _layers(graph)
    keys = semantic_keys(graph)
    weights: dict[str, tuple[str, np.ndarray, int]] = {}   # linear node -> (param, idx, axis)
    ropes: dict[str, tuple[Rope, np.ndarray, int, str]] = {}
    params = graph.params
    for i, L in enumerate(layers):
        d = L.head_dim
        if d % 2:
            raise UsageError(f"{L.k.proj.loc}: k-sort needs an even head dim, got {d}")
        identity = np.tile(np.arange(d), (L.kv_heads, 1))
        if orders and keys[L.attn] in orders:
            kmap, vmap = orders[keys[L.attn]]
        else:
            wk = params.get(L.k.proj.inputs[1].node.attrs["name"])
            kmap = pair_order(wk, L.kv_heads, d) if wk is not None else \
                pair_order(np.zeros((L.kv_heads, d)), L.kv_heads, d)
            vmap = identity
        tag = L.k.proj.loc.rsplit(".", 1)[0] or f"attn{i}"
        for proj, heads, perm in ((L.q.proj, L.heads, kmap), (L.k.proj, L.kv_heads, kmap),
                                  (L.v, L.kv_heads, vmap)):
            weights[proj.name] = (proj.inputs[1].node.attrs["name"], _rows(perm, heads), 0)
        weights[L.o.name] = (L.o.inputs[1].node.attrs["name"], _rows(vmap, L.heads), 1)
        ropes[L.q.out.name] = (L.q, kmap, L.heads, tag)
        ropes[L.k.out.name] = (L.k, kmap, L.kv_heads, tag)
    tables: dict[tuple[str, str], Value] = {}
    lookups: dict[tuple[str, str, str], Value] = {}

    def permute_weight(node: Node, ctx: RewriteCtx) -> Value | None:
        if node.op != "linear" or node.name not in weights:
            return None
        name, idx, axis = weights[node.name]
        w = ctx.graph.params.get(name)
        new = None if w is None else np.take(w, idx, axis=axis)
        p = ctx.b.param(f"{name}.ksort", node.inputs[1].type, new)
        return ctx.b.add("linear", [node.inputs[0], p, *node.inputs[2:]], dict(node.attrs),
                         node.name + "_ks", loc=node.loc).out()

    def table(ctx: RewriteCtx, lookup: Node, kmap: np.ndarray, tag: str) -> Value:
        """(G, 1, T, D) RoPE table of this layer in sorted channel order."""
        src = lookup.inputs[0].node.attrs["name"]
        g, d = kmap.shape
        if (tag, src) not in tables:
            base = ctx.graph.params.get(src)
            value = None if base is None else np.concatenate(
                [base[:, kmap[h]] for h in range(g)], axis=1)
            rows = lookup.inputs[0].type.shape[0]
            tables[(tag, src)] = ctx.b.param(f"{tag}.{src}.ksort", TensorType(
                (rows, g * d), lookup.inputs[0].type.dtype), value, buffer=True)
        key = (tag, src, lookup.inputs[1].node.name)
        if key not in lookups:
            t = ctx.b.op("embedding", tables[(tag, src)], lookup.inputs[1],
                         name=f"{tag}_{src}_ks")                          # (T, G*D)
            t_len = lookup.type.shape[0]
            t = ctx.b.op("reshape", t, shape=(t_len, g, d))
            t = ctx.b.op("permute", t, perm=(1, 0, 2))                     # (G, T, D)
            lookups[key] = ctx.b.op("reshape", t, shape=(g, 1, t_len, d))
        return lookups[key]

    def rope(node: Node, ctx: RewriteCtx) -> Value | None:
        if node.op != "add" or node.name not in ropes:
            return None
        old, kmap, heads, tag = ropes[node.name]
        x = node.inputs[0].node.inputs[0]          # the (rebuilt) projection view
        b, _, t, d = x.type.shape
        g = kmap.shape[0]
        grouped = (b, g, heads // g, t, d)         # query heads of a KV group side by side
        xg = ctx.b.op("reshape", x, shape=grouped)
        cos, sin = (table(ctx, lookup, kmap, tag) for lookup in (old.cos, old.sin))
        if pair_layout(kmap) == "half":       # pair j at (j, j + D/2): rotate half
            hi = ctx.b.op("slice", xg, dim=4, start=d // 2, end=d, step=1)
            lo = ctx.b.op("slice", xg, dim=4, start=0, end=d // 2, step=1)
            rot = ctx.b.op("concat", ctx.b.op("neg", hi), lo, dim=4)
        else:                                 # pair j at (2j, 2j + 1): interleaved
            pairs = ctx.b.op("reshape", xg, shape=(*grouped[:4], d // 2, 2))
            first = ctx.b.op("slice", pairs, dim=5, start=0, end=1, step=1)
            second = ctx.b.op("slice", pairs, dim=5, start=1, end=2, step=1)
            rot = ctx.b.op("concat", ctx.b.op("neg", second), first, dim=5)
            rot = ctx.b.op("reshape", rot, shape=grouped)
        y = ctx.b.op("add", ctx.b.op("mul", xg, cos), ctx.b.op("mul", rot, sin))
        return ctx.b.add("reshape", [y], {"shape": (b, heads, t, d)}, node.name + "_ks",
                         loc=node.loc).out()

    return rewrite(graph, [permute_weight, rope])
