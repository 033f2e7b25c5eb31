"""Attention passes: sparse attention patterns and FlashAttention tiling.

    apply_attention(graph, "stream:4+1024,flash", target="h100") -> Graph
    tile_attention(graph, target)            FlashAttention form (tiles.py rules)
    choose_tiles(on_chip("h100"), d, ...)    the tile sizes alone

Registered passes: `tile-attention:<device>` for each shipped device (llmc/hw/devices).
"""

from llmc.hw import shipped_keys
from llmc.passes.manager import register_pass
from llmc.passes.tiling.flash import tile_attention
from llmc.passes.tiling.spec import (
    AttentionSpec,
    apply_attention,
    parse_attention_spec,
    sparsify_attention,
)
from llmc.passes.tiling.tiles import OnChip, Tiles, choose_tiles, fa1_rule, on_chip

for _device in shipped_keys():
    register_pass(f"tile-attention:{_device}")(
        lambda graph, device=_device: tile_attention(graph, device))

__all__ = ["AttentionSpec", "OnChip", "Tiles", "apply_attention", "choose_tiles",
           "fa1_rule", "on_chip", "parse_attention_spec", "sparsify_attention",
           "tile_attention"]
