"""K-sort: an exact float rewrite (logits, decode) that makes the BFP12 KV
cache more accurate when channels carry outliers."""

from __future__ import annotations

import functools

import numpy as np
import torch

from llmc import api
from llmc.frontend.loader import LoadedModel
from llmc.frontend.zoo.config import get_config
from llmc.frontend.zoo.decoder import build_model
from llmc.ir import interpret, verify
from llmc.passes.quant import Scheme, apply_scheme, korder, quantize_graphs
from llmc.passes.quant.blockq import apply_storage
from llmc.passes.quant.calibrate import KVSample
from llmc.passes.quant.ksort import ksort, pair_order
from llmc.passes.quant.ksort import pair_layout as ksort_layout
from llmc.passes.quant.schemes import BFP12


@functools.cache
def outlier_model() -> LoadedModel:
    """A small GQA llama (head dim 32, so BFP blocks of 16 split each head) whose
    K projection has a few outlier channel pairs, as trained LLMs do."""
    cfg = get_config("llama-tiny").replace(name="ksort-tiny", hidden=64, n_heads=4,
                                           n_kv_heads=2, head_dim=32, n_layers=2)
    model = build_model(cfg, "cpu", seed=3)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for layer in model.layers:
            w = layer.attn.k_proj.weight
            for head in range(cfg.n_kv_heads):
                for pair in rng.choice(16, 3, replace=False):
                    for ch in (pair, pair + 16):
                        w[head * 32 + ch] *= 25.0
    return LoadedModel(cfg.name, model, cfg, "test")


@functools.cache
def graphs(phase: str = "prefill"):  # noqa: ANN201
    return api.trace(outlier_model(), phase, batch=2, seq_len=16)


def test_pairs_stay_adjacent_and_sorted() -> None:
    rng = np.random.default_rng(0)
    wk = rng.standard_normal((64, 8))
    wk[5] *= 10
    wk[5 + 16] *= 10
    order = pair_order(wk, 2, 32)
    assert order.shape == (2, 32)
    for g in range(2):
        assert sorted(order[g]) == list(range(32))
        assert np.all(order[g, 1::2] == order[g, 0::2] + 16)   # (i, i + D/2) adjacent
    assert order[0, 0] == 5 and order[0, 1] == 21               # the outlier pair first


def test_logits_unchanged() -> None:
    t = graphs()
    g = ksort(t.graph)
    verify(g)
    ref, got = interpret(t.graph, t.inputs), interpret(g, t.inputs)
    scale = np.abs(ref[0]).max()
    assert np.abs(got[0] - ref[0]).max() < 1e-5 * scale
    # the cache holds the same numbers per token, in sorted channel order
    assert np.allclose(np.sort(got[1], axis=-1), np.sort(ref[1], axis=-1), atol=1e-5)


def test_decode_reads_the_sorted_cache() -> None:
    pre, dec = graphs("prefill"), api.trace(outlier_model(), "decode", batch=2, seq_len=16)
    gp, gd = ksort(pre.graph), ksort(dec.graph)
    outs = interpret(gp, pre.inputs)
    tokens = pre.inputs[0]
    caches = [c.copy() for c in outs[1:]]
    for c in caches:
        c[:, :, 15] = 0
    got = interpret(gd, [tokens[:, 15:16], np.array([15]), *caches])
    assert np.allclose(got[0][:, 0], outs[0][:, 15], atol=1e-4 * np.abs(outs[0]).max())


def _channel_error(quant_graph, float_graph) -> np.ndarray:  # noqa: ANN001
    """Mean over K channels of the channel's relative BFP error: every channel
    counts, as it does in q . k when q is spread over channels."""
    t = graphs()
    quant, flt = interpret(quant_graph, t.inputs), interpret(float_graph, t.inputs)
    errs = []
    for q, f in zip(quant[1::2], flt[1::2], strict=True):                     # the K caches (B, G, T, D)
        num = np.sqrt(((q - f) ** 2).sum(axis=(0, 2)))
        den = np.sqrt((f**2).sum(axis=(0, 2)))
        errs.append(num / den)
    return np.concatenate(errs, axis=None)


def test_weight_norm_ksort_makes_bfp12_keys_more_accurate() -> None:
    """The paper's criterion (W_k row norms, no data): channels no longer sharing
    a block with an outlier pair are kept."""
    t = graphs()
    kv_only = Scheme("kv", "test", kv=BFP12)
    plain = apply_scheme(t.graph, kv_only)
    sorted_graph = ksort(t.graph)
    e_plain = _channel_error(plain, t.graph)
    e_sorted = _channel_error(apply_storage(sorted_graph, kv_only, None), sorted_graph)
    assert e_sorted.mean() < 0.75 * e_plain.mean()
    assert np.median(e_sorted) < 0.5 * np.median(e_plain), (e_plain, e_sorted)


def test_planner_groups_outliers_and_keeps_k_without_them() -> None:
    rng = np.random.default_rng(0)
    n, d = 512, 32
    q_ms = np.ones((2, d))                                 # 2 query heads, one KV head
    v = rng.standard_normal((n, 1, d))
    flat = rng.standard_normal((n, 1, d))
    kmap, _ = korder.plan(KVSample(flat, v, q_ms), None, 2, BFP12)
    assert np.array_equal(kmap[0], np.arange(d))           # nothing to gain: K stays
    # outlier pairs that queries barely read: grouping them away from the
    # channels queries do read cuts the score error
    outliers = [1, 4, 6, 9, 11, 13, 14, 15]
    spiky, q_ms = flat.copy(), np.ones((2, d))
    for j in outliers:
        spiky[:, 0, [j, j + 16]] *= 30.0
        q_ms[:, [j, j + 16]] = 1e-3
    kmap, vmap = korder.plan(KVSample(spiky, v, q_ms), None, 2, BFP12)
    assert ksort_layout(kmap) == "pairs"                   # pairs side by side ...
    blocks = [set(kmap[0, :16] % 16), set(kmap[0, 16:] % 16)]
    assert set(outliers) in blocks                         # ... outliers in one block
    assert sorted(vmap[0]) == list(range(d))


def test_quantize_graphs_keeps_prefill_and_decode_in_step() -> None:
    """Calibrated orders are planned once (on prefill) and reused for decode:
    decode fed the prefill's BFP12 cache reproduces its last-position logits."""
    pre, dec = graphs("prefill"), api.trace(outlier_model(), "decode", batch=2, seq_len=16)
    q = quantize_graphs({"prefill": pre.graph, "decode": dec.graph}, "bfp12-ksort")
    assert any(k.endswith(".ksort") for k in q["decode"].params)
    outs = interpret(q["prefill"], pre.inputs)
    caches = [c.copy() for c in outs[1:]]
    for c in caches:
        c[:, :, 15] = 0
    got = interpret(q["decode"], [pre.inputs[0][:, 15:16], np.array([15]), *caches])
    assert np.allclose(got[0][:, 0], outs[0][:, 15], atol=1e-4 * np.abs(outs[0]).max())
    assert np.array_equal(got[1][:, :, 15], outs[1][:, :, 15])   # the row decode writes
