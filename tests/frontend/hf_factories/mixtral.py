"""Mixtral (8 experts, top-2, gates renormalised over the top 2):
a tiny, seeded transformers MixtralForCausalLM, for
`llmc show tests/frontend/hf_factories/mixtral.py:factory` (prefill) and
`...mixtral.py:decode` (one step with a StaticCache)."""

import torch
from _decode import Logits, decode_step
from transformers import MixtralConfig, MixtralForCausalLM


def factory() -> tuple[torch.nn.Module, tuple[torch.Tensor]]:
    torch.manual_seed(0)
    cfg = MixtralConfig(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        max_position_embeddings=64, num_local_experts=8, num_experts_per_tok=2)
    ids = torch.randint(0, cfg.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))
    return Logits(MixtralForCausalLM(cfg).eval()), (ids,)


def decode() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    model, (ids,) = factory()
    return decode_step(model.model, ids[:, :1], cache_len=16)
