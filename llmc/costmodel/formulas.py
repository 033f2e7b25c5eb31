"""Closed-form costs of a decoder from its config (no graph at all).

These are the formulas of the long-context analysis (Fu 2024, arXiv
2405.08944), written with the op registry's conventions so they agree with
the per-op costs of a traced graph: a linear layer costs 2 FLOPs per weight
per token (+1 per bias element), attention (4·D + 5) FLOPs per (query, key)
pair per head (QKᵀ and PV, 2·D each, plus ~5 for the softmax), causal
prefill scoring T(T+1)/2 pairs per head. Norms, RoPE and residual adds are
left out (under 1% of a real model's FLOPs); tests/costmodel/test_formulas.py
checks these against the registry's costs of the traced graph.

Symbols: L layers, h hidden, H query heads, G KV heads, D head dim, f FFN
hidden (per expert), V vocab, E experts, k experts per token, b bytes.
"""

from __future__ import annotations

from llmc.frontend.zoo.config import ModelConfig
from llmc.ir.ops.nn import attention_pairs, expected_active_experts


def kv_bytes_per_token(c: ModelConfig, kv_bits: float) -> float:
    """K and V of every layer for one token: 2·L·G·D·b."""
    return 2 * c.n_layers * c.n_kv_heads * c.head_dim * kv_bits / 8


def layer_matrices(c: ModelConfig, experts: float | None = None) -> float:
    """Matrix weights of one layer; `experts`: how many experts to count
    (default all; top_k for the weights one token multiplies)."""
    attn = 2 * c.hidden * c.q_dim + 2 * c.hidden * c.kv_dim
    if c.family == "moe":
        e = c.n_experts if experts is None else experts
        return attn + e * 3 * c.hidden * c.ffn_hidden + c.n_experts * c.hidden  # + router
    return attn + (2 if c.family == "gpt2" else 3) * c.hidden * c.ffn_hidden


def layer_vectors(c: ModelConfig) -> int:
    """Norm gains and biases of one layer (kept in the activation dtype)."""
    n = 2 * c.hidden * (2 if c.family == "gpt2" else 1)
    if c.attn_bias:
        n += c.q_dim + 2 * c.kv_dim
    if c.attn_bias or c.mlp_bias:
        n += c.hidden
    if c.mlp_bias:
        n += c.ffn_hidden * (1 if c.family == "gpt2" else 2) + c.hidden
    return n


def matmul_weights(c: ModelConfig) -> float:
    """Weights one token multiplies (2 FLOPs each): the layers' matrices with
    top_k experts, and the LM head (the input embedding is a lookup)."""
    return c.n_layers * layer_matrices(c, c.top_k or None) + c.vocab_size * c.hidden


def extra_flops_per_token(c: ModelConfig) -> float:
    """FLOPs the heavy ops do beside their matmuls, per token: one add per bias
    element, and in a MoE layer the routed experts' SwiGLU and weighted sum,
    top_k·(4f + d) (the registry's moe_ffn cost)."""
    n = c.top_k * (4 * c.ffn_hidden + c.hidden) if c.family == "moe" else 0
    if c.attn_bias:
        n += c.q_dim + 2 * c.kv_dim
    if c.attn_bias or c.mlp_bias:
        n += c.hidden
    if c.mlp_bias:
        n += c.ffn_hidden * (1 if c.family == "gpt2" else 2) + c.hidden
    return c.n_layers * n


def weight_bytes(c: ModelConfig, weight_bits: float, act_bits: float) -> float:
    """Storage of all weights: matrices at weight_bits, gains/biases at act_bits."""
    matrices = c.n_layers * layer_matrices(c) + c.vocab_size * c.hidden * (
        1 if c.tie_embeddings else 2)
    if c.family == "gpt2":
        matrices += c.max_seq_len * c.hidden               # learned positions
    vectors = c.n_layers * layer_vectors(c) + c.hidden * (2 if c.family == "gpt2" else 1)
    return matrices * weight_bits / 8 + vectors * act_bits / 8


def attention_flops(c: ModelConfig, queries: int, keys: int, causal: bool) -> float:
    """L·H·pairs·(4·D + 5) for one sequence."""
    return c.n_layers * c.n_heads * attention_pairs(queries, keys, causal) * (4 * c.head_dim + 5)


def prefill_flops(c: ModelConfig, tokens: int, batch: int = 1) -> float:
    """B·((2·W_mm + extra)·T + causal attention over the prompt)."""
    per_seq = (2 * matmul_weights(c) + extra_flops_per_token(c)) * tokens
    return batch * (per_seq + attention_flops(c, tokens, tokens, causal=True))


def decode_flops(c: ModelConfig, context: int, batch: int = 1) -> float:
    """One token per sequence attending to `context` keys."""
    return batch * (2 * matmul_weights(c) + extra_flops_per_token(c)
                    + attention_flops(c, 1, context, causal=False))


def decode_weight_bytes(c: ModelConfig, batch: int, weight_bits: float,
                        act_bits: float) -> float:
    """Weight bytes one decode step reads: every matrix but the embedding
    table (MoE: the experts the batch's tokens hit), plus gains and biases."""
    experts = (expected_active_experts(batch, c.n_experts, c.top_k)
               if c.family == "moe" else None)
    matrices = c.n_layers * layer_matrices(c, experts) + c.vocab_size * c.hidden
    vectors = c.n_layers * layer_vectors(c) + c.hidden * (2 if c.family == "gpt2" else 1)
    return matrices * weight_bits / 8 + vectors * act_bits / 8


def decode_bytes(c: ModelConfig, context: int, batch: int, weight_bits: float,
                 kv_bits: float, act_bits: float) -> float:
    """Fu's decode traffic: weights once per step + each sequence's KV cache."""
    return (decode_weight_bytes(c, batch, weight_bits, act_bits)
            + batch * context * kv_bytes_per_token(c, kv_bits))


def attention_crossover(c: ModelConfig) -> float:
    """Prompt length where causal attention FLOPs equal the matmul FLOPs:
    L·H·(4D+5)·T²/2 = 2·W_mm·T  ->  T = 4·W_mm / (L·H·(4D+5))."""
    return 4 * matmul_weights(c) / (c.n_layers * c.n_heads * (4 * c.head_dim + 5))
