"""The `--attention` spec: sparse attention patterns and tiling, in one string.

    stream:S+W     streaming heads: S sink tokens + a local window of W keys
                   (StreamingLLM / LServe), e.g. stream:4+1024
    window:W       a local window alone (= stream:0+W)
    block:B/K      block-sparse: blocks of B, K key blocks kept per query block
    flash          FlashAttention tiling, tile sizes from the target's memory
    flash:BRxBC    FlashAttention tiling with explicit tiles (checked to fit)
    dense          nothing (the default)

Items combine with commas: `stream:4+1024,flash`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmc.errors import UsageError
from llmc.ir.graph import Graph, Node, Value
from llmc.passes.rewrite import RewriteCtx, rewrite
from llmc.passes.tiling.flash import tile_attention
from llmc.passes.tiling.tiles import OnChip


@dataclass(frozen=True)
class AttentionSpec:
    window: int | None = None
    sinks: int = 0
    block_size: int | None = None
    block_topk: int | None = None
    tile: bool = False
    tiles: tuple[int, int] | None = None  # explicit (Br, Bc)

    def attrs(self) -> dict[str, int]:
        """The sparse attributes this spec puts on `attention`."""
        out: dict[str, int] = {}
        if self.window is not None:
            out["window"] = self.window
            if self.sinks:
                out["sinks"] = self.sinks
        if self.block_size is not None:
            out |= {"block_size": self.block_size, "block_topk": self.block_topk}
        return out


_ITEMS = [
    (re.compile(r"stream:(\d+)\+(\d+)"), lambda m: {"sinks": int(m[1]), "window": int(m[2])}),
    (re.compile(r"window:(\d+)"), lambda m: {"window": int(m[1])}),
    (re.compile(r"block:(\d+)/(\d+)"),
     lambda m: {"block_size": int(m[1]), "block_topk": int(m[2])}),
    (re.compile(r"flash"), lambda m: {"tile": True}),
    (re.compile(r"flash:(\d+)x(\d+)"), lambda m: {"tile": True, "tiles": (int(m[1]), int(m[2]))}),
    (re.compile(r"dense|none"), lambda m: {}),
]

USAGE = ("--attention takes comma-separated items: stream:SINKS+WINDOW (e.g. stream:4+1024), "
         "window:W, block:SIZE/KEPT (e.g. block:64/8), flash, flash:BRxBC (e.g. flash:64x128), "
         "dense")


def parse_attention_spec(spec: str) -> AttentionSpec:
    """Parse an --attention spec; UsageError on anything malformed."""
    fields: dict[str, object] = {}
    for item in (s.strip() for s in spec.split(",")):
        found = next((fn(m) for rx, fn in _ITEMS if (m := rx.fullmatch(item))), None)
        if found is None:
            raise UsageError(f"--attention: cannot read {item!r}. {USAGE}")
        if set(found) & set(fields):
            raise UsageError(f"--attention: {item!r} repeats a setting of {spec!r}")
        fields |= found
    out = AttentionSpec(**fields)  # type: ignore[arg-type]
    if out.window is not None and out.window < 1:
        raise UsageError(f"--attention: the window must be at least 1 key, got {out.window}")
    if out.block_size is not None and (out.block_size < 1 or (out.block_topk or 0) < 1):
        raise UsageError(f"--attention: block:{out.block_size}/{out.block_topk} needs a block "
                         "size and a kept-block count of at least 1")
    if out.tiles is not None and min(out.tiles) < 1:
        raise UsageError(f"--attention: tiles {out.tiles[0]}x{out.tiles[1]} must be positive")
    return out


def _sparse_rule(attrs: dict[str, int]):  # noqa: ANN202
    def rule(node: Node, ctx: RewriteCtx) -> Value | None:
        if node.op != "attention" or all(node.attrs.get(k) == v for k, v in attrs.items()):
            return None
        return ctx.b.add("attention", node.inputs, node.attrs.replace(**attrs),
                         name=node.name, loc=node.loc).out()
    return rule


def sparsify_attention(graph: Graph, spec: AttentionSpec) -> Graph:
    """Every `attention` gets the spec's sparse attributes."""
    attrs = spec.attrs()
    return rewrite(graph, [_sparse_rule(attrs)]) if attrs else graph


def apply_attention(graph: Graph, spec: str | AttentionSpec,
                    target: str | OnChip | None = None) -> Graph:
    """Apply an --attention spec: sparse attributes first, then tiling (tile
    sizes from `target`, a device or target name, when the spec asks for it)."""
    parsed = parse_attention_spec(spec) if isinstance(spec, str) else spec
    graph = sparsify_attention(graph, parsed)
    if parsed.tile:
        graph = tile_attention(graph, target, parsed.tiles)
    return graph
