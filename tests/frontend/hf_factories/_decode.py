"""What the factories share: `Logits`, the prefill wrapper, and one decode
step of a transformers causal LM with its StaticCache, as a
function of its inputs: the factories' `decode()` (`llmc show
tests/frontend/hf_factories/llama.py:decode`).

    (ids (B, 1), pos (), k0, v0, k1, v1, ...) -> logits (B, 1, vocab)

The caches (B, kv_heads, cache_len, head_dim) are inputs that transformers
writes in place at `pos` (StaticLayer.update's index_copy_); torch.export
turns those writes into outputs, so llmc's graph returns the logits, then
the updated caches in input order. Sliding-window layers (Mistral) are not
covered: their StaticSlidingWindowLayer branches on a Python-int fill count,
so an exported step would hold for one fill state only.
"""

import torch
from transformers import StaticCache


class Logits(torch.nn.Module):
    """token ids (B, T) -> logits (B, T, vocab), no cache."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, use_cache=False).logits


class StaticDecode(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, pos: torch.Tensor, *kv: torch.Tensor) -> torch.Tensor:
        cache = StaticCache(config=self.model.config, max_cache_len=kv[0].shape[2])
        for layer, k, v in zip(cache.layers, kv[0::2], kv[1::2], strict=True):
            # what StaticLayer.lazy_initialization sets, with our tensors
            layer.keys, layer.values, layer.device = k, v, k.device
            layer.batch_size, layer.num_heads, _, layer.k_head_dim = k.shape
            layer.v_head_dim = v.shape[-1]
            layer.cumulative_length = pos.clone()  # each layer counts its own writes
            layer.is_initialized = True
        return self.model(input_ids=ids, past_key_values=cache, use_cache=True).logits


def decode_step(model: torch.nn.Module, ids: torch.Tensor, cache_len: int
                ) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    """(StaticDecode(model), example inputs: ids at position 0, empty caches)."""
    cfg = model.config
    heads = cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    caches = [torch.zeros(ids.shape[0], kv_heads, cache_len, head_dim)
              for _ in range(2 * cfg.num_hidden_layers)]
    return StaticDecode(model).eval(), (ids, torch.tensor(0), *caches)
