"""Plain-PyTorch building blocks of the zoo's decoders.

Shapes: B batch, T new tokens, S cache length, H query heads, G KV heads,
D head dim, C hidden. KV caches are (B, G, S, D) per layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llmc.frontend.zoo.config import ModelConfig
from llmc.frontend.zoo.moe_op import moe_ffn


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rope_tables(cfg: ModelConfig, device: torch.device | str | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables (max_seq_len, D) in the rotate-half layout (Su et al. 2021)."""
    half = cfg.head_dim // 2
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(half, dtype=torch.float64) / half))
    angles = torch.arange(cfg.max_seq_len, dtype=torch.float64)[:, None] * inv_freq
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().float().to(device), angles.sin().float().to(device)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, H, T, D); cos/sin (T, D). Pairs are (i, i + D/2)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    """Multi-head attention with grouped-query KV heads and a KV cache."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.q_proj = nn.Linear(cfg.hidden, cfg.q_dim, bias=cfg.attn_bias)
        self.k_proj = nn.Linear(cfg.hidden, cfg.kv_dim, bias=cfg.attn_bias)
        self.v_proj = nn.Linear(cfg.hidden, cfg.kv_dim, bias=cfg.attn_bias)
        self.o_proj = nn.Linear(cfg.q_dim, cfg.hidden, bias=cfg.attn_bias or cfg.mlp_bias)

    def forward(self, x: torch.Tensor, positions: torch.Tensor,
                rope: tuple[torch.Tensor, torch.Tensor] | None,
                cache: tuple[torch.Tensor, torch.Tensor] | None,
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        cfg = self.cfg
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, cfg.n_heads, cfg.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
        if rope is not None:
            cos, sin = F.embedding(positions, rope[0]), F.embedding(positions, rope[1])
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        gqa = cfg.n_heads != cfg.n_kv_heads
        if cache is None:  # prefill: attend causally within the prompt
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
            new_cache = (k, v)
        else:  # decode: write the new K/V at `positions`, attend to keys <= position
            k_cache = cache[0].index_copy(2, positions, k)
            v_cache = cache[1].index_copy(2, positions, v)
            keys = torch.arange(k_cache.shape[2], device=x.device)
            mask = keys[None, :] <= positions[:, None]                # (T, S)
            out = F.scaled_dot_product_attention(q, k_cache, v_cache, attn_mask=mask,
                                                 enable_gqa=gqa)
            new_cache = (k_cache, v_cache)
        out = out.transpose(1, 2).reshape(B, T, cfg.q_dim)
        return self.o_proj(out), new_cache


class GeluMLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.up = nn.Linear(cfg.hidden, cfg.ffn_hidden, bias=cfg.mlp_bias)
        self.down = nn.Linear(cfg.ffn_hidden, cfg.hidden, bias=cfg.mlp_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x), approximate="tanh"))


class SwiGLU(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.gate = nn.Linear(cfg.hidden, cfg.ffn_hidden, bias=cfg.mlp_bias)
        self.up = nn.Linear(cfg.hidden, cfg.ffn_hidden, bias=cfg.mlp_bias)
        self.down = nn.Linear(cfg.ffn_hidden, cfg.hidden, bias=cfg.mlp_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class MoE(nn.Module):
    """Top-k routed SwiGLU experts (one `llmc::moe_ffn` op)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        E, f, d = cfg.n_experts, cfg.ffn_hidden, cfg.hidden
        self.top_k = cfg.top_k
        self.router = nn.Parameter(torch.empty(E, d))
        self.w_gate = nn.Parameter(torch.empty(E, f, d))
        self.w_up = nn.Parameter(torch.empty(E, f, d))
        self.w_down = nn.Parameter(torch.empty(E, d, f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        y = moe_ffn(x.reshape(B * T, C), self.router, self.w_gate, self.w_up,
                    self.w_down, self.top_k)
        return y.view(B, T, C)


class Block(nn.Module):
    """Pre-norm decoder block: x + attn(norm(x)); x + ffn(norm(x))."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.family == "gpt2":
            self.attn_norm: nn.Module = nn.LayerNorm(cfg.hidden, eps=cfg.norm_eps)
            self.ffn_norm: nn.Module = nn.LayerNorm(cfg.hidden, eps=cfg.norm_eps)
            self.ffn: nn.Module = GeluMLP(cfg)
        else:
            self.attn_norm = RMSNorm(cfg.hidden, cfg.norm_eps)
            self.ffn_norm = RMSNorm(cfg.hidden, cfg.norm_eps)
            self.ffn = MoE(cfg) if cfg.family == "moe" else SwiGLU(cfg)
        self.attn = Attention(cfg)

    def forward(self, x, positions, rope, cache):  # noqa: ANN001, ANN201
        h, new_cache = self.attn(self.attn_norm(x), positions, rope, cache)
        x = x + h
        return x + self.ffn(self.ffn_norm(x)), new_cache
