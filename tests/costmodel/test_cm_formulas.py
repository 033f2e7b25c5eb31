"""The long-context closed forms against the op registry's costs of full-size
models (synthesized IR, equal to the traced one: test_cm_synth.py, which also
checks the closed forms against traced graphs): within the few tenths of a
percent that norms, RoPE and residual adds add."""

from __future__ import annotations

import pytest

from llmc.costmodel import formulas as F
from llmc.costmodel.precision import parse_quant
from llmc.costmodel.synth import synth_workload
from llmc.frontend.zoo.config import get_config

BF16 = parse_quant("bf16")


@pytest.mark.parametrize("name", ["llama-2-7b", "yi-34b", "mixtral-8x7b", "gpt-oss-120b",
                                  "qwen2-7b", "gpt2"])
def test_closed_forms_within_a_percent_of_the_full_model(name: str) -> None:
    cfg = get_config(name)
    T = min(2048, cfg.max_seq_len)
    pre = synth_workload(cfg, "prefill", BF16, batch=1, tokens=T, context=T)
    dec = synth_workload(cfg, "decode", BF16, batch=4, tokens=1, context=T)
    assert F.prefill_flops(cfg, T) == pytest.approx(pre.flops, rel=0.01)
    assert F.decode_flops(cfg, T, batch=4) == pytest.approx(dec.flops, rel=0.01)
    assert F.decode_bytes(cfg, T, 4, 16, 16, 16) == pytest.approx(dec.bytes, rel=0.01)
    assert F.weight_bytes(cfg, 16, 16) == pre.weight_bytes


def test_attention_crossover() -> None:
    cfg = get_config("llama-2-7b")
    t = F.attention_crossover(cfg)
    attn = F.attention_flops(cfg, int(t), int(t), causal=True)
    assert attn == pytest.approx(2 * F.matmul_weights(cfg) * t, rel=0.001)
