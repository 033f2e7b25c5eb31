"""Rewrite `attention` into FlashAttention's tiled, online-softmax form.

    %a = attention(%q, %k, %v[, %mask]) {causal, scale, ...}
becomes (one flash_step per key tile of Bc keys; see llmc/ir/ops/tiled.py)
    %a_state:3 = flash_init(%q, %v)
    %a_k0 = slice(%k) {dim=2, start=0, end=Bc, step=1}
    %a_v0 = slice(%v) {dim=2, start=0, end=Bc, step=1}
    %a_t0:3 = flash_step(%q, %a_k0, %a_v0, %a_state, %a_state#1, %a_state#2[, %mask])
              {block_q=Br, key_start=0, key_len=Tk, causal, scale, ...}
    ...
and the last step's output 0 replaces %a. Block-sparse attention adds one
`attention_block_select` before the tiles, whose selection every step reads.
"""

from __future__ import annotations

from llmc.ir.graph import Graph, Node, Value
from llmc.ir.ops.tiled import SPARSE_ATTRS
from llmc.passes.rewrite import RewriteCtx, Rule, rewrite
from llmc.passes.tiling.tiles import OnChip, Tiles, choose_tiles, on_chip


def attention_tiles(node: Node, chip: OnChip | None, explicit: tuple[int, int] | None
                    ) -> Tiles:
    """The tiles for one attention node: explicit ones (checked against the
    chip when there is one) or the chip's rule."""
    q, k, v = (x.type for x in node.inputs[:3])
    d, dv, tq, tk = q.shape[3], v.shape[3], q.shape[2], k.shape[2]
    if chip is None:
        assert explicit is not None
        return Tiles(explicit[0], explicit[1], 0, 0)
    return choose_tiles(chip, d, dv, q.dtype.bits / 8, tq, tk, explicit)


def tile_rule(chip: OnChip | None, explicit: tuple[int, int] | None = None) -> Rule:
    def rule(node: Node, ctx: RewriteCtx) -> Value | None:
        if node.op != "attention":
            return None
        return _tile(node, ctx, attention_tiles(node, chip, explicit))
    return rule


def _tile(node: Node, ctx: RewriteCtx, tiles: Tiles) -> Value:
    b, name, loc = ctx.b, node.name, node.loc
    q, k, v = node.inputs[:3]
    mask = list(node.inputs[3:])
    tk = k.type.shape[2]
    base = {"causal": node.attrs["causal"], "scale": node.attrs["scale"]}
    sparse = {a: node.attrs[a] for a in SPARSE_ATTRS if a in node.attrs}
    extras = list(mask)
    if "block_size" in sparse:
        sel = b.add("attention_block_select", [q, k, *mask], {**base, **sparse},
                    name=f"{name}_blocks", loc=loc)
        extras.append(sel.out())
    state = b.add("flash_init", [q, v], {}, name=f"{name}_state", loc=loc)
    o, l, m = state.out(0), state.out(1), state.out(2)
    for j, k0 in enumerate(range(0, tk, tiles.block_k)):
        window = {"dim": 2, "start": k0, "end": min(tk, k0 + tiles.block_k), "step": 1}
        kt = b.add("slice", [k], window, name=f"{name}_k{j}", loc=loc).out()
        vt = b.add("slice", [v], window, name=f"{name}_v{j}", loc=loc).out()
        attrs = {**base, **sparse, "block_q": tiles.block_q, "key_start": k0, "key_len": tk}
        step = b.add("flash_step", [q, kt, vt, o, l, m, *extras], attrs, name=f"{name}_t{j}",
                     loc=loc)
        o, l, m = step.out(0), step.out(1), step.out(2)
    return o


def tile_attention(graph: Graph, target: str | OnChip | None = None,
                   tiles: tuple[int, int] | None = None) -> Graph:
    """Every `attention` in tiled form: tile sizes from `target`'s on-chip
    memory (a device or target name, or an OnChip), or the explicit
    (Br, Bc) `tiles`, checked against the target when one is given."""
    chip = None if target is None else on_chip(target)
    if chip is None and tiles is None:
        from llmc.errors import UsageError

        raise UsageError("attention tiling needs a target (for its on-chip memory) "
                         "or explicit tiles such as flash:64x128")
    return rewrite(graph, [tile_rule(chip, tiles)])
