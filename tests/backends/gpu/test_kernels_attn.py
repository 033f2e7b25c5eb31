"""The gpu backend's attention kernels beyond plain causal prefill, through
Triton's interpreter against the IR interpreter (float32 within 1e-5
relative, bf16 within 1e-2): split-K decode attention over a float or
block-quantised KV cache (odd lengths, GQA, batch > 1, one split and
several), and sliding-window attention with and without sinks in the
prefill kernel, its tiled form and the decode kernel."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmc.ir import TensorType, dtypes

pytest.importorskip("triton")

from llmc.backends.gpu.decode import num_splits, sm_count  # noqa: E402
from tests.backends.gpu.helpers import check, graph, rand  # noqa: E402

f32, i64 = dtypes.f32, dtypes.i64


def steps(tmp_path) -> list[dict]:  # noqa: ANN001
    return json.loads((tmp_path / "program.json").read_text())["phases"]["prefill"]["steps"]


def the_attention(tmp_path) -> dict:  # noqa: ANN001
    (att,) = [s for s in steps(tmp_path) if "attention" in s["op"]]
    return att


def _decode(b, rng, B=2, H=6, G=2, S=300, D=16, pos=296, kv=None, **attrs):  # noqa: ANN001, ANN202
    """One decode query per head against a cache of S positions, keys <= pos
    visible (the KV-cache mask), the cache float or in block format `kv`."""
    dt = dtypes.parse_dtype(kv) if kv else f32
    q = b.input("q", TensorType((B, H, 1, D), f32))
    k = b.input("k", TensorType((B, G, S, D), dt))
    v = b.input("v", TensorType((B, G, S, D), dt))
    p = b.input("pos", TensorType((1,), i64))
    keys = b.op("reshape", b.op("arange", start=0, end=S, step=1, dtype=i64), shape=[1, S])
    mask = b.op("le", keys, b.op("reshape", p, shape=[1, 1]), fusion=1)
    caches = [rand(rng, B, G, S, D) for _ in range(2)]
    if kv:
        from llmc.ir.formats import quantize_block
        caches = [quantize_block(c, dt) for c in caches]
    out = b.op("attention", q, k, v, mask, causal=False, scale=D ** -0.5, fusion=0, **attrs)
    return [out], [rand(rng, B, H, 1, D), *caches, np.array([pos])]


@pytest.mark.parametrize("act", ["f32", "bf16"])
@pytest.mark.parametrize(("S", "pos", "splits"), [(11, 7, 1), (300, 296, 5), (300, 37, 5)])
def test_split_k_decode_attention(tmp_path, act, S, pos, splits):  # noqa: ANN001
    """odd cache lengths, GQA (6 query heads on 2 K/V heads), batch 2; a
    short context (pos 37 of 300) spreads its own keys over the splits."""
    check(*graph(lambda b, rng: _decode(b, rng, S=S, pos=pos)), tmp_path, act)
    att = the_attention(tmp_path)
    assert att["op"] == "decode_attention" and att["splits"] == splits
    assert att["sm_count"] == 108                      # a100 (llmc/hw/devices)


@pytest.mark.parametrize("fmt", ["bfp8b16", "bfp4b16", "mxint8"])
def test_split_k_decode_attention_over_a_block_quantized_cache(tmp_path, fmt):  # noqa: ANN001
    g, xs = graph(lambda b, rng: _decode(b, rng, B=3, H=4, G=2, S=201, D=32, pos=199, kv=fmt))
    check(g, xs, tmp_path, "f32")
    assert the_attention(tmp_path)["splits"] > 1
    assert "dequantised in" in (tmp_path / "kernels/decode_attention.py").read_text()


@pytest.mark.parametrize("act", ["f32", "bf16"])
@pytest.mark.parametrize("attrs", [{"window": 5}, {"window": 70, "sinks": 3}])
def test_sliding_window_decode_attention(tmp_path, act, attrs):  # noqa: ANN001
    check(*graph(lambda b, rng: _decode(b, rng, S=260, pos=201, **attrs)), tmp_path, act)
    att = the_attention(tmp_path)
    assert att["window"] == attrs["window"] and att["sinks"] == attrs.get("sinks", 0)


def _prefill(b, rng, B=2, H=4, G=2, T=37, D=16, **attrs):  # noqa: ANN001, ANN202
    q = b.input("q", TensorType((B, H, T, D), f32))
    k = b.input("k", TensorType((B, G, T, D), f32))
    v = b.input("v", TensorType((B, G, T, D), f32))
    out = b.op("attention", q, k, v, causal=True, scale=D ** -0.5, fusion=0, **attrs)
    return [out], [rand(rng, B, H, T, D), rand(rng, B, G, T, D), rand(rng, B, G, T, D)]


@pytest.mark.parametrize("act", ["f32", "bf16"])
@pytest.mark.parametrize("attrs", [{"window": 7}, {"window": 20, "sinks": 2}])
def test_sliding_window_prefill_attention(tmp_path, act, attrs):  # noqa: ANN001
    check(*graph(lambda b, rng: _prefill(b, rng, **attrs)), tmp_path, act)
    att = the_attention(tmp_path)
    assert att["op"] == "attention" and att["window"] == attrs["window"]


def test_sliding_window_prefill_attention_in_tiles(tmp_path):  # noqa: ANN001
    from llmc.passes.tiling.flash import tile_attention

    g, xs = graph(lambda b, rng: _prefill(b, rng, T=45, window=9))
    tiled = tile_attention(g, "a100", (16, 16))
    assert any(n.op == "flash_step" for n in tiled.nodes)
    check(tiled, xs, tmp_path, "f32")
    att = the_attention(tmp_path)
    assert (att["block_q"], att["block_k"], att["window"]) == (16, 16, 9)


def test_the_split_count_follows_flash_attention_2s_rule() -> None:
    from llmc.hw.database import get_device

    assert sm_count(get_device("a100")) == 108 and sm_count(get_device("h100")) == 132
    assert num_splits(48, 108, 100) == 2      # FlashAttention-2's own example: 0.89 vs 0.67
    assert num_splits(128, 132, 64) == 1      # enough programs to fill the SMs
    assert num_splits(8, 132, 64) == 16       # batch 1, 8 K/V heads: two waves' worth of splits
    assert num_splits(8, 132, 3) == 3         # never more splits than key tiles


def test_the_decode_attention_bench_lists_its_splits_without_a_gpu(capsys) -> None:  # noqa: ANN001
    from bench import gpu_decode_attention

    assert gpu_decode_attention.main(["--dry-run", "--target", "h100"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 9 and "B= 1 keys= 1024 bf16   splits  16" in out[0]
    assert "B=16 keys=32768 bf16   splits   1" in out[7]       # 128 programs fill 132 SMs
