"""Plain-PyTorch building blocks of the zoo's decoders.

Shapes: B batch, T new tokens, S cache length, H query heads, G KV heads,
D head dim, C hidden. KV caches are (B, G, S, D) per layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from llmc.frontend.zoo.config import ModelConfig
from llmc.frontend.zoo.moe_op import moe_ffn
from llmc.frontend.zoo.window_op import window_attention


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rope_inv_freq(cfg: ModelConfig) -> torch.Tensor:
    """(D/2,) float64 rotation frequencies theta^(-2i/D) (Su et al. 2021),
    rescaled by cfg.rope_scaling: "linear" divides them by `factor` (position
    interpolation, Chen et al. 2023, arXiv 2306.15595); "llama3" divides the
    low frequencies by `factor`, keeps the high ones and interpolates between
    (Llama 3.1, Meta 2024; transformers' _compute_llama3_parameters)."""
    half = cfg.head_dim // 2
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(half, dtype=torch.float64) / half))
    p = dict(cfg.rope_scaling)
    kind = p.get("rope_type", "default")
    if kind == "linear":
        return inv_freq / float(p["factor"])  # type: ignore[arg-type]
    if kind == "llama3":
        factor, lo, hi = (float(p[k]) for k in ("factor", "low_freq_factor",  # type: ignore[arg-type]
                                                "high_freq_factor"))
        old = float(p["original_max_position_embeddings"])  # type: ignore[arg-type]
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > old / lo, inv_freq / factor, inv_freq)
        smooth = (old / wavelen - lo) / (hi - lo)
        medium = (wavelen >= old / hi) & (wavelen <= old / lo)
        return torch.where(medium, (1 - smooth) * scaled / factor + smooth * scaled, scaled)
    return inv_freq


def rope_tables(cfg: ModelConfig, device: torch.device | str | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables (max_seq_len, D) in the rotate-half layout (Su et al. 2021)."""
    inv_freq = rope_inv_freq(cfg)
    angles = torch.arange(cfg.max_seq_len, dtype=torch.float64)[:, None] * inv_freq
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().float().to(device), angles.sin().float().to(device)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, H, T, D); cos/sin (T, D). Pairs are (i, i + D/2)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    """Multi-head attention with grouped-query KV heads and a KV cache; a
    sliding window of `window` keys when it is not 0 (llmc::window_attention)."""

    def __init__(self, cfg: ModelConfig, window: int = 0) -> None:
        super().__init__()
        self.cfg, self.window = cfg, window
        self.q_proj = nn.Linear(cfg.hidden, cfg.q_dim, bias=cfg.attn_bias)
        self.k_proj = nn.Linear(cfg.hidden, cfg.kv_dim, bias=cfg.attn_bias)
        self.v_proj = nn.Linear(cfg.hidden, cfg.kv_dim, bias=cfg.attn_bias)
        self.o_proj = nn.Linear(cfg.q_dim, cfg.hidden, bias=bool(cfg.o_bias))
        if cfg.qk_norm:  # per-head RMSNorm of q and k (Qwen3)
            self.q_norm = RMSNorm(cfg.head_dim, cfg.norm_eps)
            self.k_norm = RMSNorm(cfg.head_dim, cfg.norm_eps)

    def forward(self, x: torch.Tensor, positions: torch.Tensor,
                rope: tuple[torch.Tensor, torch.Tensor] | None,
                cache: tuple[torch.Tensor, torch.Tensor] | None,
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        cfg = self.cfg
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, cfg.n_heads, cfg.head_dim)
        k = self.k_proj(x).view(B, T, cfg.n_kv_heads, cfg.head_dim)
        if cfg.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        v = self.v_proj(x).view(B, T, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
        if rope is not None:
            cos, sin = F.embedding(positions, rope[0]), F.embedding(positions, rope[1])
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        mask = None
        if cache is not None:  # decode: write the new K/V at `positions`, see keys <= position
            k = cache[0].index_copy(2, positions, k)
            v = cache[1].index_copy(2, positions, v)
            keys = torch.arange(k.shape[2], device=x.device)
            mask = keys[None, :] <= positions[:, None]                # (T, S)
        if self.window:
            out = window_attention(q, k, v, mask, self.window)
        else:  # prefill: causal within the prompt
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None,
                                                 enable_gqa=cfg.n_heads != cfg.n_kv_heads)
        out = out.transpose(1, 2).reshape(B, T, cfg.q_dim)
        return self.o_proj(out), (k, v)


_ACT = {"silu": F.silu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "gelu": F.gelu}


class GeluMLP(nn.Module):
    """GPT-2's MLP: down(act(up(x))), act a GELU."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.act = _ACT[cfg.act]
        self.up = nn.Linear(cfg.hidden, cfg.ffn_hidden, bias=cfg.mlp_bias)
        self.down = nn.Linear(cfg.ffn_hidden, cfg.hidden, bias=cfg.mlp_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.up(x)))


class SwiGLU(nn.Module):
    """Gated MLP: down(act(gate(x)) * up(x)); SwiGLU with silu (Shazeer 2020,
    arXiv 2002.05202), GeGLU with a GELU (Gemma)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.act = _ACT[cfg.act]
        self.gate = nn.Linear(cfg.hidden, cfg.ffn_hidden, bias=cfg.mlp_bias)
        self.up = nn.Linear(cfg.hidden, cfg.ffn_hidden, bias=cfg.mlp_bias)
        self.down = nn.Linear(cfg.ffn_hidden, cfg.hidden, bias=cfg.mlp_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.gate(x)) * self.up(x))


class MoE(nn.Module):
    """Top-k routed SwiGLU experts (one `llmc::moe_ffn` op, whose gates are the
    softmax over the top-k router logits). Without moe_norm_topk the gates are
    the softmax over all experts' logits at the top k, which is the same mix
    scaled per token by the top-k share of that softmax (Qwen3-MoE)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        E, f, d = cfg.n_experts, cfg.ffn_hidden, cfg.hidden
        self.top_k, self.norm_topk = cfg.top_k, cfg.moe_norm_topk
        self.router = nn.Parameter(torch.empty(E, d))
        self.w_gate = nn.Parameter(torch.empty(E, f, d))
        self.w_up = nn.Parameter(torch.empty(E, f, d))
        self.w_down = nn.Parameter(torch.empty(E, d, f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        x = x.reshape(B * T, C)
        y = moe_ffn(x, self.router, self.w_gate, self.w_up, self.w_down, self.top_k)
        if not self.norm_topk:
            probs = torch.softmax(x @ self.router.t(), dim=-1)                # (N, E)
            y = y * torch.topk(probs, self.top_k, dim=-1).values.sum(-1, keepdim=True)
        return y.view(B, T, C)


class Block(nn.Module):
    """Pre-norm decoder block: x + attn(norm(x)); x + ffn(norm(x))."""

    def __init__(self, cfg: ModelConfig, layer: int = 0) -> None:
        super().__init__()
        if cfg.family == "gpt2":
            self.attn_norm: nn.Module = nn.LayerNorm(cfg.hidden, eps=cfg.norm_eps)
            self.ffn_norm: nn.Module = nn.LayerNorm(cfg.hidden, eps=cfg.norm_eps)
            self.ffn: nn.Module = GeluMLP(cfg)
        else:
            self.attn_norm = RMSNorm(cfg.hidden, cfg.norm_eps)
            self.ffn_norm = RMSNorm(cfg.hidden, cfg.norm_eps)
            self.ffn = MoE(cfg) if cfg.family == "moe" else SwiGLU(cfg)
        self.attn = Attention(cfg, cfg.window(layer))

    def forward(self, x, positions, rope, cache):  # noqa: ANN001, ANN201
        h, new_cache = self.attn(self.attn_norm(x), positions, rope, cache)
        x = x + h
        return x + self.ffn(self.ffn_norm(x)), new_cache
