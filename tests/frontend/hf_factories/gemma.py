"""Gemma (tanh-GELU GeGLU, (1 + w) RMSNorm, embeddings scaled by sqrt(hidden)):
a tiny, seeded transformers GemmaForCausalLM, for
`llmc show tests/frontend/hf_factories/gemma.py:factory` (prefill) and
`...gemma.py:decode` (one step with a StaticCache)."""

import torch
from _decode import Logits, decode_step
from transformers import GemmaConfig, GemmaForCausalLM


def factory() -> tuple[torch.nn.Module, tuple[torch.Tensor]]:
    torch.manual_seed(0)
    cfg = GemmaConfig(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        max_position_embeddings=64, hidden_activation="gelu_pytorch_tanh")
    ids = torch.randint(0, cfg.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))
    return Logits(GemmaForCausalLM(cfg).eval()), (ids,)


def decode() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    model, (ids,) = factory()
    return decode_step(model.model, ids[:, :1], cache_len=16)
