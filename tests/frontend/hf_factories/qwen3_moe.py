"""Qwen3-MoE (8 experts, top-2, norm_topk_prob=False: gates not renormalised):
a tiny, seeded transformers Qwen3MoeForCausalLM, for
`llmc show tests/frontend/hf_factories/qwen3_moe.py:factory` (prefill) and
`...qwen3_moe.py:decode` (one step with a StaticCache)."""

import torch
from _decode import Logits, decode_step
from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM


def factory() -> tuple[torch.nn.Module, tuple[torch.Tensor]]:
    torch.manual_seed(0)
    cfg = Qwen3MoeConfig(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        max_position_embeddings=64, num_experts=8, num_experts_per_tok=2,
        moe_intermediate_size=32, norm_topk_prob=False)
    ids = torch.randint(0, cfg.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))
    return Logits(Qwen3MoeForCausalLM(cfg).eval()), (ids,)


def decode() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    model, (ids,) = factory()
    return decode_step(model.model, ids[:, :1], cache_len=16)
