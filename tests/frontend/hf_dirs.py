"""Tiny seeded Hugging Face checkpoints for the frontend's tests and bench.

`save_tiny(family, root)` builds a transformers model of that family from a
tiny config (2 layers, hidden 64, vocab 128, float32), gives every parameter
seeded random values (biases and norm gains too, so that a dropped bias or a
misread norm shows up) and `save_pretrained`s it. `hf_prefill` / `hf_decode`
run transformers itself: the reference the loaded directories must match.
No hub access: everything is built from configs in code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

PROMPT = 16          # prompt tokens (> Mistral's window of 8)
DECODE_STEPS = 8     # KV-cached steps after the prompt
VOCAB = 128

_COMMON = dict(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, head_dim=16, intermediate_size=96,
               max_position_embeddings=64, bos_token_id=1, eos_token_id=2, pad_token_id=0)
_MOE = dict(num_local_experts=4, num_experts_per_tok=2)


def _tf() -> Any:
    import transformers
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return transformers


def _spec(family: str) -> tuple[Callable[..., Any], Callable[..., Any], dict[str, Any]]:
    """(config class, model class, config fields) of a family's tiny model."""
    tf = _tf()
    specs: dict[str, tuple[Any, Any, dict[str, Any]]] = {
        "llama": (tf.LlamaConfig, tf.LlamaForCausalLM, {}),
        "mistral": (tf.MistralConfig, tf.MistralForCausalLM, {"sliding_window": 8}),
        "qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM, {}),
        "mixtral": (tf.MixtralConfig, tf.MixtralForCausalLM, _MOE),
        "gpt2": (tf.GPT2Config, tf.GPT2LMHeadModel,
                 dict(vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=4, n_positions=64,
                      bos_token_id=1, eos_token_id=2)),
        "qwen3": (tf.Qwen3Config, tf.Qwen3ForCausalLM, {}),
        "phi3": (tf.Phi3Config, tf.Phi3ForCausalLM, {}),
        "gemma": (tf.GemmaConfig, tf.GemmaForCausalLM, {}),
        "qwen3_moe": (tf.Qwen3MoeConfig, tf.Qwen3MoeForCausalLM,
                      {**_MOE, "moe_intermediate_size": 48, "norm_topk_prob": False}),
    }
    cfg_cls, model_cls, extra = specs[family]
    fields = extra if family == "gpt2" else {**_COMMON, **extra}
    return cfg_cls, model_cls, fields


FAMILIES = ("llama", "mistral", "qwen2", "mixtral", "gpt2", "qwen3", "phi3", "gemma",
            "qwen3_moe")

# Settings within a family that change the computation: name -> (family, config fields).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    **{f: (f, {}) for f in FAMILIES},
    "llama-bias": ("llama", {"attention_bias": True, "mlp_bias": True}),
    "llama-rope-linear": ("llama", {"rope_parameters": {
        "rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}}),
    "llama-rope-llama3": ("llama", {"attention_dropout": 0.1, "rope_parameters": {
        "rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 64}}),
    "qwen2-window": ("qwen2", {"use_sliding_window": True, "sliding_window": 8,
                               "max_window_layers": 1}),
    "phi3-window": ("phi3", {"sliding_window": 8}),
    "gpt2-gelu": ("gpt2", {"activation_function": "gelu"}),
    "qwen3_moe-norm": ("qwen3_moe", {"norm_topk_prob": True}),
}


def build_tiny(family: str, seed: int = 0, **overrides: Any) -> Any:
    """A transformers model of `family` with seeded random weights, in eval mode."""
    cfg_cls, model_cls, fields = _spec(family)
    cfg = cfg_cls(**{**fields, **overrides})
    torch.manual_seed(seed)
    model = model_cls(cfg).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if p.dim() == 1 and "norm" in name or name.endswith(("ln_1.weight", "ln_2.weight",
                                                                  "ln_f.weight")):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 1:                      # biases
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith(("mlp.gate.weight", "block_sparse_moe.gate.weight")):
                # routers: spread logits, so that top-k choices are decisive
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
    return model


def save_tiny(variant: str, root: Path, seed: int = 0, name: str | None = None,
              **overrides: Any) -> tuple[Path, Any]:
    """save_pretrained a tiny seeded model of a family or VARIANTS entry under
    root/name (default tiny-<variant>); returns (directory, the transformers model)."""
    family, fields = VARIANTS[variant]
    model = build_tiny(family, seed, **{**fields, **overrides})
    path = Path(root) / (name or f"tiny-{variant}")
    model.save_pretrained(str(path))
    return path, model


def prompt_tokens(seed: int = 0, n: int = PROMPT, batch: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, n), generator=torch.Generator().manual_seed(seed))


def hf_prefill(model: Any, tokens: torch.Tensor) -> torch.Tensor:
    """transformers' logits (B, T, V) for a prompt."""
    with torch.no_grad():
        return model(tokens).logits


def hf_decode(model: Any, prompt: torch.Tensor, steps: list[int]) -> list[torch.Tensor]:
    """transformers with its own KV cache: prefill `prompt`, then feed each of
    `steps` (token ids) one at a time; the logits (B, 1, V) of every step."""
    tf = _tf()
    cache = tf.DynamicCache(config=model.config)
    out = []
    with torch.no_grad():
        model(prompt, cache=cache, use_cache=True)
        for t in steps:
            step = torch.full((prompt.shape[0], 1), t, dtype=torch.long)
            out.append(model(step, cache=cache, use_cache=True).logits)
    return out


def hf_greedy(model: Any, prompt: torch.Tensor, n: int) -> list[int]:
    """transformers' greedy continuation (argmax, its own KV cache) of one prompt."""
    tf = _tf()
    cache = tf.DynamicCache(config=model.config)
    out: list[int] = []
    step = prompt
    with torch.no_grad():
        for _ in range(n):
            logits = model(step, cache=cache, use_cache=True).logits
            out.append(int(logits[0, -1].argmax()))
            step = torch.tensor([[out[-1]]])
    return out


def llmc_decode(decode_graph: Any, prefill_out: list[Any], steps: list[int]) -> list[Any]:
    """llmc's decode graph in the reference interpreter: the prompt's K/V (from
    the prefill graph's outputs) in fixed-size caches, then one step per token
    of `steps`; the logits (B, 1, V) of every step."""
    import numpy as np

    from llmc.api import interpret

    caches = []
    for kv in prefill_out[1:]:                               # (B, G, T, D)
        slots = next(n for n in decode_graph.inputs if n.name == "k_cache_0").type.shape[2]
        c = np.zeros((*kv.shape[:2], slots, kv.shape[3]), np.float32)
        c[:, :, :kv.shape[2]] = kv
        caches.append(c)
    pos = prefill_out[1].shape[2]
    out = []
    for t in steps:
        tokens = np.full((prefill_out[0].shape[0], 1), t, dtype=np.int64)
        res = interpret(decode_graph, [tokens, np.array([pos], np.int64), *caches])
        out.append(res[0])
        caches, pos = res[1:], pos + 1
    return out


def rel_err(a: Any, b: Any) -> float:
    """||a - b|| / ||b|| in float64."""
    a = torch.as_tensor(a).double()
    b = torch.as_tensor(b).double()
    return float((a - b).norm() / b.norm())
