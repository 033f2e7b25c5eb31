"""Llama (RMSNorm, RoPE, grouped-query attention, SwiGLU):
a tiny, seeded transformers LlamaForCausalLM, for
`llmc show tests/frontend/hf_factories/llama.py:factory` (prefill) and
`...llama.py:decode` (one step with a StaticCache)."""

import torch
from _decode import Logits, decode_step
from transformers import LlamaConfig, LlamaForCausalLM


def factory() -> tuple[torch.nn.Module, tuple[torch.Tensor]]:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        max_position_embeddings=64)
    ids = torch.randint(0, cfg.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))
    return Logits(LlamaForCausalLM(cfg).eval()), (ids,)


def decode() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    model, (ids,) = factory()
    return decode_step(model.model, ids[:, :1], cache_len=16)
