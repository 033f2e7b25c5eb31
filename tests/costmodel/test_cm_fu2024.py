"""The worked example of Fu 2024 (arXiv 2405.08944): a 34B GQA model (Yi-34B
shapes) at 50K context on one A100-SXM4-80GB, bf16 weights and KV cache.

The figures are pinned with their formulas written out. The paper's own
numbers, for comparison: ~20 concurrent users at 4K vs 1 at 50K; prefill
14.1 s at 50K (0.89 s at 4K); decode 250 tokens in 9.8 s at 50K (8.5 s at
4K), i.e. ~39 ms per token; context switching bound by PCIe. Our prefill is
higher (17.8 s) because we count causal attention at 4·D FLOPs per (query,
key) pair per head (+5 for the softmax) over all 56 query heads; our 4K
concurrency is lower (15) because we reserve 1 GiB and count Yi-34B's exact
34.39B parameters.
"""

from __future__ import annotations

import math

import pytest

from llmc.costmodel.longctx import analyze
from llmc.costmodel.precision import parse_quant
from llmc.costmodel.report import build_report
from llmc.frontend.zoo.config import get_config
from llmc.hw.database import get_device

YI = get_config("yi-34b")
L, h, H, G, D, f, V = 60, 7168, 56, 8, 128, 20480, 64000
A100_HBM = 80 * 2 ** 30                        # bytes: 5 x 16 GiB HBM2e stacks
RESERVED = 2 ** 30                             # CUDA context, workspaces
PEAK, BW, PCIE = 312e12, 2.039e12, 32e9        # bf16 FLOP/s, HBM B/s, PCIe Gen4 B/s per way


def test_shapes() -> None:
    c = YI
    assert (c.n_layers, c.hidden, c.n_heads, c.n_kv_heads, c.head_dim, c.ffn_hidden,
            c.vocab_size) == (L, h, H, G, D, f, V)


def test_fu2024_yi34b_50k_on_a100() -> None:
    lc = analyze(YI, get_device("a100"), parse_quant("bf16"), contexts=(4096, 50_000))
    # KV cache: 2 (K and V) x layers x KV heads x head dim x 2 bytes
    kv_token = 2 * L * G * D * 2
    assert kv_token == 245_760 == lc.kv_bytes_per_token
    assert lc.at(50_000).kv_bytes_per_request == kv_token * 50_000 == 12_288_000_000

    # weights: per layer q,o (h x H·D) + k,v (h x G·D) + SwiGLU 3 x h x f, two norms;
    # embedding and LM head V x h; the final norm
    params = L * (2 * h * H * D + 2 * h * G * D + 3 * h * f + 2 * h) + 2 * V * h + h
    assert params == 34_388_917_248
    weights = 2 * params
    assert lc.weight_bytes == weights == 68_777_834_496

    # concurrency: what HBM holds after weights, in whole requests
    free = A100_HBM - RESERVED - weights
    assert lc.kv_capacity_bytes == free == 16_047_769_600
    assert lc.at(50_000).max_concurrent_requests == math.floor(free / (kv_token * 50_000)) == 1
    assert lc.at(4096).max_concurrent_requests == math.floor(free / (kv_token * 4096)) == 15

    # prefill is FLOP-bound: 2 FLOPs per weight per token for the matmuls
    # (everything but the embedding lookup), causal attention (4D + 5) per pair
    w_mm = params - V * h - (2 * L + 1) * h
    T = 50_000
    flops = 2 * w_mm * T + L * H * (T * (T + 1) // 2) * (4 * D + 5)
    assert lc.at(T).prefill_flops == flops
    assert lc.at(T).prefill_s == pytest.approx(flops / PEAK) == pytest.approx(17.83, abs=0.01)
    assert lc.at(4096).prefill_s == pytest.approx(0.938, abs=0.001)

    # decode is bandwidth-bound: every weight but the embedding table, plus the KV cache
    read = weights - 2 * V * h + kv_token * T
    assert lc.at(T).decode_bytes == read
    assert lc.at(T).decode_s == pytest.approx(read / BW) == pytest.approx(0.03931, abs=1e-5)
    assert 250 * lc.at(T).decode_s == pytest.approx(9.8, abs=0.1)          # the paper's 9.8 s
    assert 250 * lc.at(4096).decode_s == pytest.approx(8.44, abs=0.01)     # the paper's 8.5 s

    # context switching is PCIe-bound: user 1's KV out and user 2's KV in
    assert lc.at(T).switch_s == pytest.approx(2 * kv_token * T / PCIE) == pytest.approx(0.768)

    # compressing the KV cache to BFP12 (bfp4b16 as the bfp12 scheme stores it:
    # 4.5 bits) fits 3 more 50K requests
    z = lc.compressed
    assert z.kv_bytes_per_token == 2 * L * G * D * 4.5 / 8
    assert z.at(T).max_concurrent_requests == math.floor(free / (z.kv_bytes_per_token * T)) == 4


def test_the_report_carries_the_example() -> None:
    r = build_report(None, None, YI, "a100", prompt=50_000, context=50_000, output=250)
    j = r.to_json()
    assert j["kv_bytes_per_token"] == 245_760
    assert j["kv_bytes_per_request"] == 12_288_000_000
    assert j["max_concurrent_requests"] == 1
    assert j["context_switch_s"] == pytest.approx(0.768)
    assert j["prefill"]["bound"] == "compute" and j["decode"]["bound"] == "memory"
    # the per-op roofline adds RoPE, norms and residuals to Fu's single bounds
    assert j["prefill"]["roofline_s"] == pytest.approx(17.83, rel=0.05)
    assert j["decode"]["roofline_s"] == pytest.approx(0.0393, rel=0.01)
    assert any("trained for 4,096 tokens" in n for n in j["notes"])
