"""Mistral with a sliding window (4 tokens) shorter than the prompt (12):
a tiny, seeded transformers MistralForCausalLM, for
`llmc show tests/frontend/hf_factories/mistral.py:factory`."""

import torch
from _decode import Logits
from transformers import MistralConfig, MistralForCausalLM


def factory() -> tuple[torch.nn.Module, tuple[torch.Tensor]]:
    torch.manual_seed(0)
    cfg = MistralConfig(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        max_position_embeddings=64, sliding_window=4)
    ids = torch.randint(0, cfg.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))
    return Logits(MistralForCausalLM(cfg).eval()), (ids,)
