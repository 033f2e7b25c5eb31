"""`int_attention` on the NPU: per head, in the query tiles of the tiling pass.

For each KV group (its heads share K and V) and each head, the queries run
in tiles of Br rows, Br as llmc.passes.tiling chooses for the device's
scratchpad (`choose_tiles`: FlashAttention's rule, multiples of the array
edge): scores matmul into int32 (Br, keys), vsoftmax (I-BERT's i-softmax,
whole key rows), probabilities @ V, requant into the output's rows. A causal
tile scores only the keys its last query may see (the instruction's causal
diagonal then falls where the whole one does); the products are exact
integers, so the rows are the untiled ones bit for bit. K and V in DRAM (a
decode's cache, a row-tiled prefill's joined K/V) come one KV group at a
time, the next group's DMA in flight.

Key tiles: on edge-npu the tiling pass gives Bc of 16,384 keys at head dim
128, more than any sequence here, so a query tile's scores span all its keys.
Where it gives fewer keys than the sequence, the tile still scores all of
them (the integer softmax's row max and sum need the whole row; an online
form would round differently): the scratch this takes is measured by
fit.reserve like any other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmc.backends.npu.isa import DRAM
from llmc.backends.npu.layout import Loc, broadcast
from llmc.errors import UsageError
from llmc.ir.graph import Node

if TYPE_CHECKING:
    from llmc.backends.npu.lower import Lowering


def query_tile(L: Lowering, n: Node) -> int:
    """Br: query rows per tile, from the tiling pass for L's device (all rows
    when it has no tiling rules)."""
    q, k, v = (x.type for x in n.inputs[:3])
    tq = q.shape[2]
    if L.chip is None:
        return tq
    from llmc.passes.tiling import choose_tiles

    t = choose_tiles(L.chip, q.shape[3], v.shape[3], q.dtype.bits / 8, tq, k.shape[2])
    return max(1, min(t.block_q, tq))


def render_int_attention(L: Lowering, n: Node) -> None:
    a = n.attrs
    q = L.spad(n.inputs[0])
    k, v = L.locs[n.inputs[1]], L.locs[n.inputs[2]]
    if k is None:
        k = L.spad(n.inputs[1])
    if v is None:
        v = L.spad(n.inputs[2])
    B, H, Tq, D = q.shape
    G, Tk = k.shape[1], k.shape[2]
    if a["prob_bits"] > 16:
        raise UsageError(f"%{n.name}: probabilities of {a['prob_bits']} bits; the NPU's "
                         "array takes at most 16")
    causal = bool(a["causal"])
    mask = None
    if len(n.inputs) > 3:
        mask = broadcast(L.spad(n.inputs[3]), (B, H, Tq, Tk))
    out = L.out_loc(n)
    br = query_tile(L, n)
    scores = L.scratch(4, (br, Tk))             # i32 scores of one query tile
    probs = L.scratch(3, (br, Tk))              # u16 probabilities
    o = L.scratch(4, (br, D))                   # i32 p @ v
    in_dram = k.space == DRAM or v.space == DRAM
    bufs = []
    if in_dram:
        bufs = [(L.scratch(k.dtype, (Tk, D)), L.scratch(v.dtype, (Tk, D))) for _ in range(2)]

    def fetch(b: int, g: int) -> tuple[Loc, Loc]:
        kb, vb = bufs[(b * G + g) & 1]
        L.dma(kb, k.index(b, g), f"K head group {g}")
        L.dma(vb, v.index(b, g), f"V head group {g}")
        return kb, vb

    def tile(b: int, h: int, q0: int, r: int, kg: Loc, vg: Loc) -> None:
        keys = q0 + r + Tk - Tq if causal else Tk   # the last query's causal prefix
        s = Loc.dense(scores.space, scores.dtype, scores.base, (r, keys))
        p = Loc.dense(probs.space, probs.dtype, probs.base, (r, keys))
        acc = Loc.dense(o.space, o.dtype, o.base, (r, D))
        at = f"head {h}" + (f" rows {q0}+{r}" if r < Tq else "")
        L.p.emit("matmul", L.p.desc(s.desc()), L.p.desc(q.index(b, h).rows(q0, r).desc()),
                 L.p.desc(kg.rows(0, keys).desc()), -1, 0, comment=L._c(f"scores {at}"))
        md = -1 if mask is None else L.p.desc(mask.index(b, h).rows(q0, r).cols(0, keys).desc())
        L.p.emit("vsoftmax", L.p.desc(p.desc()), L.p.desc(s.desc()), md,
                 a["s_mult"], a["s_shift"], a["frac"], a["prob_bits"],
                 flags=(int(causal), 0, 0), comment=L._c(f"i-softmax {at}"))
        L.p.emit("matmul", L.p.desc(acc.desc()), L.p.desc(p.desc()),
                 L.p.desc(vg.rows(0, keys).t().desc()), -1, 0, comment=L._c(f"p @ v {at}"))
        L.p.emit("requant", L.p.desc(out.index(b, h).rows(q0, r).desc()), L.p.desc(acc.desc()),
                 -1, a["o_mult"], a["o_shift"], 0, comment=L._c(f"out {at}"))

    groups = [(b, g) for b in range(B) for g in range(G)]
    pending = fetch(*groups[0]) if in_dram else None
    for i, (b, g) in enumerate(groups):
        if in_dram:
            kg, vg = pending
            nxt = i + 1 < len(groups)
            if nxt:
                pending = fetch(*groups[i + 1])
            L.p.emit("wait", 2 if nxt else 0)
        else:
            kg, vg = k.index(b, g), v.index(b, g)
        for h in range(g * (H // G), (g + 1) * (H // G)):
            for q0 in range(0, Tq, br):
                tile(b, h, q0, min(br, Tq - q0), kg, vg)
    L.locs[n.out()] = out


__all__ = ["query_tile", "render_int_attention"]
