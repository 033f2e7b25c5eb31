"""GPT-2 (learned positions, LayerNorm, GELU MLP, Conv1D projections): a
tiny, seeded transformers GPT2LMHeadModel for
`llmc show tests/frontend/hf_factories/gpt2.py:factory` (prefill) and
`...gpt2.py:decode` (one step with a StaticCache)."""

import torch
from _decode import Logits, decode_step
from transformers import GPT2Config, GPT2LMHeadModel


def factory() -> tuple[torch.nn.Module, tuple[torch.Tensor]]:
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=128, n_embd=64, n_layer=2, n_head=4, n_positions=64,
                     bos_token_id=0, eos_token_id=0)
    ids = torch.randint(0, cfg.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))
    return Logits(GPT2LMHeadModel(cfg).eval()), (ids,)


def decode() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    model, (ids,) = factory()
    return decode_step(model.model, ids[:, :1], cache_len=16)
