"""The tiled (FlashAttention) form matches untiled attention to f32 rounding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmc import api
from llmc.ir import interpret, verify
from llmc.ir.text import parse_graph, print_graph
from llmc.numerics import assert_close
from llmc.passes.tiling import apply_attention, tile_attention

from .attn_graphs import attention_graph, random_inputs  # tests/passes/tiling/attn_graphs.py

CASES = {
    # name: (B, H, G, tq, tk, d, causal, mask shape, mask dtype)
    "causal_gqa_ragged": (2, 4, 2, 37, 37, 16, True, None, "bool"),
    "noncausal_mha": (1, 3, 3, 5, 50, 8, False, None, "bool"),
    "causal_chunked_prefill": (1, 4, 2, 13, 29, 8, True, None, "bool"),  # bottom-right aligned
    "decode_cache_mask": (2, 4, 2, 1, 50, 16, False, (1, 50), "bool"),
    "float_mask": (1, 2, 1, 9, 23, 8, False, (1, 2, 9, 23), "f32"),
    "causal_and_mask": (1, 2, 2, 11, 11, 8, True, (11, 11), "bool"),
}


def _tiled_vs_untiled(graph, inputs, spec: str, target=None) -> None:  # noqa: ANN001
    tiled = apply_attention(graph, spec, target)
    verify(tiled)
    assert any(n.op == "flash_step" for n in tiled.nodes)
    assert not any(n.op == "attention" for n in tiled.nodes)
    assert_close(interpret(tiled, inputs)[0], interpret(graph, inputs)[0], "f32")


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("tiles", ["flash:16x16", "flash:4x7", "flash:64x64"])
def test_tiled_matches_untiled(case: str, tiles: str) -> None:
    B, H, G, tq, tk, d, causal, mask, mdt = CASES[case]
    g = attention_graph(B, H, G, tq, tk, d, causal, mask, mdt)
    _tiled_vs_untiled(g, random_inputs(g), tiles)


@pytest.mark.parametrize("case", ["causal_gqa_ragged", "decode_cache_mask", "float_mask"])
@pytest.mark.parametrize("sparse", ["stream:2+5", "window:6", "block:4/2", "stream:1+8,block:4/3"])
def test_tiled_sparse_attention_matches_untiled(case: str, sparse: str) -> None:
    B, H, G, tq, tk, d, causal, mask, mdt = CASES[case]
    g = apply_attention(attention_graph(B, H, G, tq, tk, d, causal, mask, mdt), sparse)
    _tiled_vs_untiled(g, random_inputs(g, seed=1), "flash:8x6")


def test_tiles_from_each_target_memory() -> None:
    g = attention_graph(1, 4, 2, 40, 40, 16, True)
    x = random_inputs(g)
    for target in ("a100", "h100", "npu", "hnlpu", "spinnaker2"):
        _tiled_vs_untiled(g, x, "flash", target)


@settings(max_examples=25, deadline=None)
@given(tq=st.integers(1, 24), extra=st.integers(0, 20), d=st.sampled_from([4, 8]),
       group=st.sampled_from([(2, 1), (2, 2), (4, 2)]), causal=st.booleans(),
       br=st.integers(1, 12), bc=st.integers(1, 12), seed=st.integers(0, 99))
def test_tiled_matches_untiled_property(tq: int, extra: int, d: int, group: tuple[int, int],
                                        causal: bool, br: int, bc: int, seed: int) -> None:
    H, G = group
    g = attention_graph(1, H, G, tq, tq + extra, d, causal)
    _tiled_vs_untiled(g, random_inputs(g, seed), f"flash:{br}x{bc}")


@pytest.fixture(scope="module")
def llama_prefill() -> api.Traced:
    return api.trace("llama-tiny", "prefill", batch=2, seq_len=21, weights="random")


@pytest.fixture(scope="module")
def llama_decode() -> api.Traced:
    return api.trace("llama-tiny", "decode", batch=1, seq_len=19, cache_len=37, weights="random")


def test_whole_model_prefill_tiled(llama_prefill: api.Traced) -> None:
    g, x = llama_prefill.graph, llama_prefill.inputs
    ref = interpret(g, x)
    tiled = tile_attention(g, tiles=(8, 5))
    verify(tiled)
    for got, want in zip(interpret(tiled, x), ref, strict=True):
        assert_close(got, want, "f32")


def test_whole_model_decode_with_kv_cache_tiled(llama_decode: api.Traced) -> None:
    g, x = llama_decode.graph, llama_decode.inputs
    rng = np.random.default_rng(3)
    x = (x[0], x[1], *[rng.standard_normal(c.shape).astype(np.float32) for c in x[2:]])
    ref = interpret(g, x)
    for spec in ("flash:16x16", "flash", "stream:2+6,flash:16x16"):
        tiled = apply_attention(g, spec, "h100" if spec == "flash" else None)
        verify(tiled)
        base = apply_attention(g, spec.split(",")[0]) if "," in spec else g
        want = interpret(base, x) if base is not g else ref
        for got, w in zip(interpret(tiled, x), want, strict=True):
            assert_close(got, w, "f32")


def test_tiled_graph_text_round_trip(llama_decode: api.Traced) -> None:
    tiled = apply_attention(llama_decode.graph, "stream:2+6,block:8/2,flash:16x16")
    text = print_graph(tiled)
    again = parse_graph(text, tiled.params)
    verify(again)
    assert print_graph(again) == text


def test_tiled_bf16_within_bf16_tolerance() -> None:
    from llmc.ir import dtypes

    g = attention_graph(1, 4, 2, 50, 50, 16, True, dtype=dtypes.bf16)
    x = random_inputs(g)
    assert_close(interpret(apply_attention(g, "flash:16x16"), x)[0], interpret(g, x)[0], "bf16")
