"""Streaming (sinks + window) and block-sparse attention: semantics and costs."""

from __future__ import annotations

import numpy as np
import pytest

from llmc.errors import IRError
from llmc.ir import interpret, verify
from llmc.ir.cost import graph_cost, node_cost
from llmc.ir.ops.tiled import kept_keys, select_blocks
from llmc.numerics import assert_close
from llmc.passes.tiling import apply_attention

from .attn_graphs import attention_graph, random_inputs


def _reference(q, k, v, keep):  # noqa: ANN001, ANN202
    """softmax over kept keys, float64, per row (q (B,H,Tq,D), k/v repeated)."""
    s = np.einsum("bhqd,bhkd->bhqk", q.astype(np.float64), k.astype(np.float64))
    s = np.where(keep, s * q.shape[-1] ** -0.5, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v.astype(np.float64)


def _stream_keep_bruteforce(tq: int, tk: int, causal: bool, mask: np.ndarray | None,
                            window: int, sinks: int) -> np.ndarray:
    keep = np.zeros((tq, tk), dtype=bool)
    for i in range(tq):
        visible = [j for j in range(tk) if (not causal or j <= i + tk - tq)
                   and (mask is None or mask[..., i if mask.shape[-2] > 1 else 0, j].all())]
        anchor = max(visible)
        for j in visible:
            keep[i, j] = j < sinks or j > anchor - window
    return keep


@pytest.mark.parametrize("causal,tq,tk,mask", [(True, 12, 12, None), (True, 5, 17, None),
                                               (False, 1, 20, "decode")])
@pytest.mark.parametrize("window,sinks", [(4, 0), (3, 2), (30, 1)])
def test_streaming_keeps_sinks_and_window(causal: bool, tq: int, tk: int, mask: str | None,
                                          window: int, sinks: int) -> None:
    g = attention_graph(1, 2, 1, tq, tk, 8, causal, (1, tk) if mask else None,
                        window=window, **({"sinks": sinks} if sinks else {}))
    verify(g)
    x = random_inputs(g)
    m = None
    if mask:  # a KV cache filled up to position 13
        m = np.arange(tk)[None, :] <= 13
        x[3] = m
    keep = _stream_keep_bruteforce(tq, tk, causal, m, window, sinks)
    want = _reference(x[0], np.repeat(x[1], 2, 1), np.repeat(x[2], 2, 1), keep)
    assert_close(interpret(g, x)[0], want, "f32")


def test_block_selection_keeps_forced_and_best_blocks() -> None:
    b, nb = 2, 4
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, 1, b * nb, 4)).astype(np.float32)
    k = rng.standard_normal((1, 1, b * nb, 4)).astype(np.float32)
    vis = np.tril(np.ones((b * nb, b * nb), dtype=bool))
    attrs = {"block_size": b, "block_topk": 3, "scale": 0.5}
    sel = select_blocks(q, k, vis, attrs)[0, 0]
    pooled = (q[0, 0].reshape(nb, b, 4).mean(1) @ k[0, 0].reshape(nb, b, 4).mean(1).T)
    for i in range(nb):
        kept = set(np.flatnonzero(sel[i]))
        assert {0, i} <= kept                         # sink block and the diagonal block
        assert len(kept) == min(3, i + 1)              # block_topk of the i + 1 candidates
        rest = [j for j in range(1, i) if j not in kept]
        extra = kept - {0, i}
        if extra and rest:                            # the others are the best by pooled score
            assert min(pooled[i, j] for j in extra) >= max(pooled[i, j] for j in rest)


def test_block_sparse_with_all_blocks_is_dense() -> None:
    g = attention_graph(1, 4, 2, 19, 19, 8, True)
    x = random_inputs(g)
    sparse = apply_attention(g, "block:4/5")
    assert_close(interpret(sparse, x)[0], interpret(g, x)[0], "f32")
    fewer = apply_attention(g, "block:4/2")
    assert np.abs(interpret(fewer, x)[0] - interpret(g, x)[0]).max() > 1e-3


def test_sparse_attrs_are_checked() -> None:
    with pytest.raises(IRError, match="sinks need a window"):
        verify(attention_graph(1, 1, 1, 4, 4, 4, True, sinks=2))
    with pytest.raises(IRError, match="go together"):
        verify(attention_graph(1, 1, 1, 4, 4, 4, True, block_size=2))
    with pytest.raises(IRError, match="positive"):
        verify(attention_graph(1, 1, 1, 4, 4, 4, True, window=0))


def test_default_attention_cost_is_unchanged() -> None:
    g = attention_graph(1, 4, 2, 64, 64, 16, True)
    c = node_cost(g.outputs[0].node)
    pairs = 64 * 65 // 2
    assert c.flops == 4 * pairs * (4 * 16 + 5)
    assert c.bytes_read == 4 * (4 * 64 * 16 + 2 * 2 * 64 * 16) and c.bytes_written == 4 * 4 * 64 * 16


def test_streaming_cost_counts_kept_pairs_and_cache_reads() -> None:
    # prefill: pairs = sum over rows of min(i + 1, sinks + window)
    g = apply_attention(attention_graph(1, 4, 2, 256, 256, 16, True), "stream:4+32")
    pairs = sum(min(i + 1, 36) for i in range(256))
    assert kept_keys(256, 256, {"causal": True, "window": 32, "sinks": 4}).sum() == pairs
    assert node_cost(g.outputs[0].node).flops == 4 * pairs * (4 * 16 + 5)
    # decode over a full 4096-slot cache: only sinks + window rows of K and V are read
    dense = attention_graph(1, 4, 2, 1, 4096, 16, False, (1, 4096))
    stream = apply_attention(dense, "stream:4+60")
    kv = 2 * 2 * 4096 * 16 * 4
    saved = graph_cost(dense).bytes_read - graph_cost(stream).bytes_read
    assert saved == kv - kv * 64 // 4096


def test_block_sparse_cost_scales_with_kept_blocks() -> None:
    dense = attention_graph(1, 4, 2, 1024, 1024, 16, True)
    flops = {k: graph_cost(apply_attention(dense, f"block:64/{k}")).flops for k in (2, 4, 8)}
    full = graph_cost(dense).flops
    assert flops[2] < flops[4] < flops[8] < full
    # query block i (64 rows) sees i + 1 key blocks and keeps min(8, i + 1) of them;
    # its visible pairs are ~ 64 * (64 i + 32.5), so the kept fraction is
    want = sum((i + 0.5) * min(1, 8 / (i + 1)) for i in range(16)) / sum(i + 0.5 for i in range(16))
    assert flops[8] / full == pytest.approx(want, rel=0.02)


def test_tiled_streaming_decode_skips_tiles_outside_the_window() -> None:
    g = attention_graph(1, 4, 2, 1, 1024, 16, False, (1, 1024))
    tiled = apply_attention(g, "stream:4+100,flash:16x64")
    steps = [n for n in tiled.nodes if n.op == "flash_step"]
    assert len(steps) == 16
    visited = [n.attrs["key_start"] for n in steps if node_cost(n).bytes]
    # sinks in tile 0; window keys 924..1023 in tiles 14 and 15
    assert visited == [0, 896, 960]
