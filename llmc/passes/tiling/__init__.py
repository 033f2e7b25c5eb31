"""Attention passes: sparse attention patterns and FlashAttention tiling.

    apply_attention(graph, "stream:4+1024,flash", target="h100") -> Graph
    tile_attention(graph, target)            FlashAttention form (tiles.py rules)
    choose_tiles(on_chip("h100"), d, ...)    the tile sizes alone

Pipeline stages (see llmc.passes.manager): `attention:<spec>` (tiles for the
context's device) and `tile-attention:<device>` for each device (llmc/hw/devices).
"""

from typing import Any

from llmc.ir import Graph
from llmc.passes.tiling.flash import tile_attention
from llmc.passes.tiling.spec import (
    AttentionSpec,
    apply_attention,
    parse_attention_spec,
    sparsify_attention,
)
from llmc.passes.tiling.tiles import OnChip, Tiles, choose_tiles, fa1_rule, on_chip


def attention_stage(spec: str) -> Any:
    """The pipeline stage `attention:<spec>`: `stage(graph, ctx)`, with tile
    sizes from the on-chip memory of `ctx.device`."""
    parsed = parse_attention_spec(spec)

    def stage(graph: Graph, ctx: Any) -> Graph:
        return apply_attention(graph, parsed, target=ctx.device)
    return stage


def tile_attention_stage(device: str) -> Any:
    """The pipeline stage `tile-attention:<device>`: `stage(graph, ctx)`."""
    chip = on_chip(device)

    def stage(graph: Graph, ctx: Any) -> Graph:
        return tile_attention(graph, chip)
    return stage


__all__ = ["AttentionSpec", "OnChip", "Tiles", "apply_attention", "attention_stage",
           "choose_tiles", "fa1_rule", "on_chip", "parse_attention_spec", "sparsify_attention",
           "tile_attention", "tile_attention_stage"]
