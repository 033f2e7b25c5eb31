"""The interpreter's logits match PyTorch eager (float32, rel. error < 1e-5),
for prefill and for decode with a KV cache over several steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmc import api
from llmc.frontend.loader import load_model
from llmc.numerics import assert_close

B, PROMPT, STEPS, CACHE = 2, 7, 4, 16


def check_model(loaded) -> None:  # noqa: ANN001
    cfg = loaded.config
    gen = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, cfg.vocab_size, (B, PROMPT + STEPS), generator=gen)
    with torch.no_grad():
        full_logits, _ = loaded.module(tokens)

    prefill = api.trace(loaded, "prefill", batch=B, seq_len=PROMPT).graph
    outs = api.interpret(prefill, [tokens[:, :PROMPT].numpy()])
    assert_close(outs[0], full_logits[:, :PROMPT].numpy(), what="prefill logits")

    decode = api.trace(loaded, "decode", batch=B, seq_len=CACHE).graph
    caches = []
    for kv in outs[1:]:  # (B, G, PROMPT, D) -> fixed-size cache (B, G, CACHE, D)
        cache = np.zeros(kv.shape[:2] + (CACHE,) + kv.shape[3:], np.float32)
        cache[:, :, :PROMPT] = kv
        caches.append(cache)
    for t in range(PROMPT, PROMPT + STEPS):
        step = api.interpret(decode, [tokens[:, t:t + 1].numpy(), np.array([t]), *caches])
        assert_close(step[0], full_logits[:, t:t + 1].numpy(), what=f"decode step {t}")
        caches = step[1:]


@pytest.mark.parametrize("name", ["gpt2-tiny", "llama-tiny", "moe-tiny"])
def test_random_tiny_models(name: str) -> None:
    check_model(load_model(name, weights="random"))


def test_llmc_tiny_real_weights() -> None:
    loaded = load_model("llmc-tiny")
    assert not loaded.is_meta, "llmc-tiny must ship real weights"
    check_model(loaded)


def test_decode_trace_matches_its_own_torch_module() -> None:
    traced = api.trace("llama-tiny", "decode", batch=1, seq_len=12, weights="random")
    got = api.interpret(traced.graph, traced.inputs)
    for g, r in zip(got, api.torch_reference(traced), strict=False):
        assert_close(g, r)
