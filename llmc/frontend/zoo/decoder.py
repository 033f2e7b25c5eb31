"""The zoo's decoder: one class for the GPT-2, Llama and MoE families, and the
variants ModelConfig names within them (Qwen2/3, Phi-3, Gemma, Mistral's
sliding window, Qwen3-MoE's gates), which Hugging Face directories load into.

`Decoder.forward(tokens, pos, caches)` runs prefill (caches None: attend
causally over the prompt, return its K/V) or decode (caches given: write the
new K/V at positions pos..pos+T-1 of fixed-size caches and attend to them).
`PrefillGraph` / `DecodeGraph` flatten those into the tuple-in, tuple-out
functions that `torch.export` traces.
"""

from __future__ import annotations

import torch
from torch import nn

from llmc.frontend.zoo.config import ModelConfig
from llmc.frontend.zoo.layers import Block, RMSNorm, rope_tables

Cache = tuple[torch.Tensor, torch.Tensor]


class Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.hidden)
        if cfg.family == "gpt2":
            self.pos_embed = nn.Embedding(cfg.max_seq_len, cfg.hidden)
            self.norm: nn.Module = nn.LayerNorm(cfg.hidden, eps=cfg.norm_eps)
        else:
            self.norm = RMSNorm(cfg.hidden, cfg.norm_eps)
            cos, sin = rope_tables(cfg)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.layers = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.lm_head = nn.Linear(cfg.hidden, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor, pos: torch.Tensor | None = None,
                caches: list[Cache] | None = None) -> tuple[torch.Tensor, list[Cache]]:
        """tokens (B, T) int64; pos (1,) int64 start position (decode only);
        caches: per layer (k, v), each (B, G, S, D). Returns logits (B, T, V)."""
        T = tokens.shape[1]
        positions = torch.arange(T, device=tokens.device)
        if pos is not None:
            positions = positions + pos
        x = self.embed(tokens)
        if self.cfg.embed_scale != 1.0:  # Gemma: sqrt(hidden)
            x = x * self.cfg.embed_scale
        rope = None
        if self.cfg.family == "gpt2":
            x = x + self.pos_embed(positions)
        else:
            rope = (self.rope_cos, self.rope_sin)
        new_caches = []
        for i, layer in enumerate(self.layers):
            x, cache = layer(x, positions, rope, None if caches is None else caches[i])
            new_caches.append(cache)
        return self.lm_head(self.norm(x)), new_caches


class PrefillGraph(nn.Module):
    """tokens -> (logits, k_0, v_0, k_1, v_1, ...)."""

    def __init__(self, model: Decoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, caches = self.model(tokens)
        return (logits, *[t for kv in caches for t in kv])


class DecodeGraph(nn.Module):
    """(tokens, pos, k_0, v_0, ...) -> (logits, k_0', v_0', ...)."""

    def __init__(self, model: Decoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor, pos: torch.Tensor,
                *flat_caches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        caches = list(zip(flat_caches[0::2], flat_caches[1::2], strict=True))
        logits, new = self.model(tokens, pos, caches)
        return (logits, *[t for kv in new for t in kv])


def build_model(cfg: ModelConfig, device: str = "cpu", seed: int = 0) -> Decoder:
    """Build a decoder; on device "meta" no memory is spent on weights."""
    if device == "meta":
        with torch.device("meta"):
            return Decoder(cfg).eval()
    gen = torch.Generator().manual_seed(seed)
    model = Decoder(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or ".attn_norm." in name or ".ffn_norm." in name:
                p.fill_(1.0) if name.endswith("weight") else p.zero_()
            elif name.endswith("bias"):
                p.normal_(0.0, 0.02, generator=gen)
            else:
                p.normal_(0.0, 0.02, generator=gen)
    return model.eval()


def example_inputs(cfg: ModelConfig, phase: str, batch: int, seq_len: int,
                   device: str = "cpu", cache_len: int | None = None,
                   seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Inputs for PrefillGraph (phase "prefill": seq_len prompt tokens) or
    DecodeGraph (phase "decode": one new token at position seq_len-1 with a
    cache of cache_len (default seq_len) slots)."""
    gen = torch.Generator().manual_seed(seed)
    if phase == "prefill":
        tokens = torch.randint(0, cfg.vocab_size, (batch, seq_len), generator=gen)
        return (tokens.to(device),)
    S = cache_len or seq_len
    tokens = torch.randint(0, cfg.vocab_size, (batch, 1), generator=gen).to(device)
    pos = torch.tensor([seq_len - 1], dtype=torch.int64, device=device)
    shape = (batch, cfg.n_kv_heads, S, cfg.head_dim)
    caches = [torch.zeros(shape, device=device) for _ in range(2 * cfg.n_layers)]
    return (tokens, pos, *caches)
