"""A Hugging Face `config.json` read into a ModelConfig, every key accounted for.

Per model_type, each key of the file is one of:
  - implemented: read into a ModelConfig field (the `_read_*` functions);
  - implemented for some values only: any other value is refused, by name;
  - irrelevant to the logits (`IGNORED`, each with the reason);
and any other key is refused. Everything refused is named in one line, so a
checkpoint never loads with a setting silently dropped. Defaults for absent
keys are those of transformers 5's config classes for that model_type.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from llmc.errors import ModelError
from llmc.frontend.zoo.config import ModelConfig

_DROPOUT = "dropout is the identity at inference"
_GEN = "a text-generation setting; it does not change the logits"
_IDS = "a token id for tokenizers and generation; it does not change the logits"
_HEADS = "a task head other than the language-model head"

# Keys that do not change the logits of a causal LM at inference, any model_type.
IGNORED: dict[str, str] = {
    "architectures": "names transformers' class; model_type decides the layout",
    "model_type": "picks the key table",
    "transformers_version": "the writer's version",
    "_name_or_path": "where the writer loaded it from",
    "name_or_path": "where the writer loaded it from",
    "dtype": "the storage dtype: llmc reads the tensors as stored and computes in float32",
    "torch_dtype": "the storage dtype: llmc reads the tensors as stored and computes in float32",
    "use_cache": "a generate() switch: llmc builds both the prefill and the KV-cached decode",
    "initializer_range": "initialisation for training",
    "bos_token_id": _IDS, "eos_token_id": _IDS, "pad_token_id": _IDS, "sep_token_id": _IDS,
    "decoder_start_token_id": _IDS,
    "attention_dropout": _DROPOUT, "hidden_dropout": _DROPOUT, "resid_pdrop": _DROPOUT,
    "embd_pdrop": _DROPOUT, "attn_pdrop": _DROPOUT, "classifier_dropout": _DROPOUT,
    "output_attentions": "what forward() returns besides the logits",
    "output_hidden_states": "what forward() returns besides the logits",
    "return_dict": "what forward() returns besides the logits",
    "tokenizer_class": "the tokenizer, not the network",
    "auto_map": "points at remote code; llmc computes the model_type's transformers layout",
    "id2label": _HEADS, "label2id": _HEADS, "num_labels": _HEADS, "problem_type": _HEADS,
    "task_specific_params": _GEN, "max_length": _GEN, "min_length": _GEN, "do_sample": _GEN,
    "temperature": _GEN, "top_p": _GEN, "num_beams": _GEN, "repetition_penalty": _GEN,
    "length_penalty": _GEN, "no_repeat_ngram_size": _GEN, "num_return_sequences": _GEN,
    "early_stopping": _GEN, "bad_words_ids": _GEN,
    "output_router_logits": "returns the router logits for a training loss",
    "router_aux_loss_coef": "weight of a training loss on the router",
    "router_jitter_noise": "noise on the router's input in training only",
    "pretraining_tp": "pretraining's tensor-parallel split of the same products "
                      "(transformers 5 ignores it)",
}

_GPT2_IGNORED = {
    "summary_type": _HEADS, "summary_use_proj": _HEADS, "summary_activation": _HEADS,
    "summary_proj_to_labels": _HEADS, "summary_first_dropout": _HEADS,
    "summary_last_dropout": _HEADS,
    "reorder_and_upcast_attn": "upcasts attention scores to float32; llmc computes in float32",
    "n_ctx": "older copy of n_positions",
}

# model_type -> (zoo family, transformers 5 defaults for absent keys).
_LLAMA_DEFAULTS = {"rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": False,
                   "num_key_value_heads": None, "head_dim": None}
_TYPES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("llama", _LLAMA_DEFAULTS),
    "yi": ("llama", _LLAMA_DEFAULTS),
    "llmc": ("llama", _LLAMA_DEFAULTS),
    "mistral": ("llama", {**_LLAMA_DEFAULTS, "num_key_value_heads": 8, "sliding_window": 4096}),
    "qwen2": ("llama", {**_LLAMA_DEFAULTS, "num_key_value_heads": 32}),
    "qwen3": ("llama", {**_LLAMA_DEFAULTS, "num_key_value_heads": 32, "head_dim": 128}),
    "phi3": ("llama", {**_LLAMA_DEFAULTS, "rms_norm_eps": 1e-5}),
    "gemma": ("llama", {**_LLAMA_DEFAULTS, "num_key_value_heads": 16, "head_dim": 256,
                        "tie_word_embeddings": True}),
    "mixtral": ("moe", {**_LLAMA_DEFAULTS, "rms_norm_eps": 1e-5, "rope_theta": 1e6,
                        "num_key_value_heads": 8, "num_local_experts": 8,
                        "num_experts_per_tok": 2}),
    "qwen3_moe": ("moe", {**_LLAMA_DEFAULTS, "num_key_value_heads": 4, "num_local_experts": 128,
                          "num_experts_per_tok": 8}),
    "gpt2": ("gpt2", {"layer_norm_epsilon": 1e-5, "tie_word_embeddings": True}),
}
# Checkpoints that store an RMSNorm gain as w and compute with (offset + w):
# the loader adds the offset to the stored gains (Gemma: `x * (1 + w)`).
NORM_OFFSET = {"gemma": 1.0}
# Keys refused whatever their value, with why.
REFUSED_KEYS = {
    "quantization_config": "pre-quantized weights (GPTQ, AWQ, bitsandbytes, ...) are not read; "
                           "give llmc the float checkpoint and --quant",
}
# model_types llmc knows and refuses, with why.
_REFUSED_TYPES = {
    "gpt_oss": "its attention sinks, alternating sliding windows and clamped SwiGLU experts "
               "are not implemented (the zoo's gpt-oss-120b is a shape-only approximation)",
}

_TANH_GELU = ("gelu_pytorch_tanh", "gelu_new")
_ROPE_TYPES = ("default", "linear", "llama3")


class _Keys:
    """The keys of one config.json, tracking which were read and what is refused."""

    def __init__(self, raw: dict[str, Any], mtype: str) -> None:
        self.raw, self.mtype = raw, mtype
        self.defaults = _TYPES[mtype][1]
        self.used: set[str] = set()
        self.ignored: dict[str, str] = {}
        self.refused: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        """The key's value; null gives `default`; absent gives transformers'
        default for this model_type, or `default` where it has none."""
        self.used.add(key)
        if key in self.raw:
            return default if self.raw[key] is None else self.raw[key]
        return self.defaults.get(key, default)

    def first(self, *keys: str) -> Any:
        """The first of several spellings present (GPT-2 names, aliases)."""
        for k in keys:
            self.used.add(k)
        return next((self.raw[k] for k in keys if self.raw.get(k) is not None), None)

    def only(self, key: str, allowed: tuple[Any, ...], why: str) -> Any:
        """A key implemented for the `allowed` values only (absent: transformers'
        default, which must be among them)."""
        value = self.get(key)
        if value is not None and value not in allowed:
            self.refuse(f"{key}={value!r} ({why})")
        return value

    def ignore(self, key: str, why: str) -> None:
        self.used.add(key)
        self.ignored[key] = why

    def refuse(self, what: str) -> None:
        self.refused.append(what)

    def unknown(self) -> list[str]:
        return sorted(k for k in self.raw if k not in self.used and k not in IGNORED
                      and k not in self.ignored)


def _rope(k: _Keys, fields: dict[str, Any]) -> None:
    """rope_parameters (transformers 5) or rope_scaling + rope_theta (4.x)."""
    new, old = k.get("rope_parameters"), k.get("rope_scaling")
    params = new or old or {}
    if not isinstance(params, dict) or any(isinstance(v, dict) for v in params.values()):
        k.refuse("rope_parameters per layer type (not implemented)")
        return
    theta = params.get("rope_theta", k.get("rope_theta"))
    fields["rope_theta"] = float(theta)
    kind = params.get("rope_type", params.get("type", "default"))
    partial = params.get("partial_rotary_factor", k.get("partial_rotary_factor", 1.0))
    if partial not in (None, 1, 1.0):
        k.refuse(f"partial_rotary_factor={partial!r} (RoPE on part of a head is not "
                 f"implemented)")
    if kind not in _ROPE_TYPES:
        k.refuse(f"rope type {kind!r} (implemented: {', '.join(_ROPE_TYPES)})")
        return
    if kind == "default":
        extra = set(params) - {"rope_type", "type", "rope_theta", "partial_rotary_factor"}
        if extra:
            k.refuse(f"rope parameters {', '.join(sorted(extra))} with rope type 'default'")
        return
    need = {"linear": ("factor",),
            "llama3": ("factor", "low_freq_factor", "high_freq_factor")}[kind]
    missing = [p for p in need if params.get(p) is None]
    if missing:
        k.refuse(f"rope type {kind!r} without {', '.join(missing)}")
        return
    scaling: list[tuple[str, object]] = [("rope_type", kind)]
    scaling += [(p, float(params[p])) for p in need]
    if kind == "llama3":
        length = (k.get("original_max_position_embeddings")
                  or params.get("original_max_position_embeddings")
                  or k.get("max_position_embeddings"))
        scaling.append(("original_max_position_embeddings", int(length)))
    fields["rope_scaling"] = tuple(scaling)


def _attention(k: _Keys, fields: dict[str, Any], bias_key: bool) -> None:
    fields["n_kv_heads"] = k.get("num_key_value_heads") or k.raw.get("num_attention_heads")
    head_dim = k.get("head_dim")
    if head_dim:
        fields["head_dim"] = head_dim
    if bias_key:
        fields["attn_bias"] = bool(k.get("attention_bias", False))


def _windows(k: _Keys, n_layers: int, window: int | None,
             layer_types: list[str] | None = None) -> tuple[int, ...]:
    """Per-layer windows: `window` on the layers whose type is sliding_attention
    (all of them when there are no layer types)."""
    if not window:
        return ()
    if not isinstance(window, int) or window < 1:
        k.refuse(f"sliding_window={window!r} (a positive number of keys)")
        return ()
    if layer_types is None:
        return (window,) * n_layers
    bad = sorted({t for t in layer_types if t not in ("full_attention", "sliding_attention")})
    if bad or len(layer_types) != n_layers:
        k.refuse(f"layer_types {layer_types!r} (one of full_attention/sliding_attention per "
                 f"layer)")
        return ()
    return tuple(window if t == "sliding_attention" else 0 for t in layer_types)


def _qwen_windows(k: _Keys, n_layers: int) -> tuple[int, ...]:
    """Qwen2/Qwen3: the window only with use_sliding_window, on the layers
    layer_types says (default: those from max_window_layers on)."""
    use = k.get("use_sliding_window", False)
    window = k.get("sliding_window") if use else None
    if not use:
        k.ignore("sliding_window", "used only with use_sliding_window")
    types = k.get("layer_types")
    start = k.raw.get("max_window_layers", 28)
    k.ignore("max_window_layers", "used only to derive layer_types with use_sliding_window")
    if types is None and window:
        types = ["sliding_attention" if i >= start else "full_attention" for i in range(n_layers)]
    return _windows(k, n_layers, window, types)


def _read_llama_like(k: _Keys, fields: dict[str, Any]) -> None:
    """Keys every RoPE/RMSNorm family shares."""
    fields["hidden"] = k.get("hidden_size")
    fields["n_layers"] = k.get("num_hidden_layers")
    fields["n_heads"] = k.get("num_attention_heads")
    fields["vocab_size"] = k.get("vocab_size")
    fields["max_seq_len"] = k.get("max_position_embeddings")
    fields["norm_eps"] = float(k.get("rms_norm_eps"))
    fields["tie_embeddings"] = bool(k.get("tie_word_embeddings"))
    _rope(k, fields)


def _read(mtype: str, k: _Keys) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if mtype == "gpt2":
        return _read_gpt2(k, fields)
    _read_llama_like(k, fields)
    n_layers = fields["n_layers"] or 0
    if mtype not in ("qwen3_moe",):
        fields["ffn_hidden"] = k.get("intermediate_size")
    act = k.get("hidden_act", "silu")
    if mtype == "gemma":
        # transformers maps Gemma's legacy "gelu" to the tanh approximation
        act = k.get("hidden_activation", act)
        if act not in ("gelu", *_TANH_GELU):
            k.refuse(f"hidden_act={act!r} (Gemma's GeGLU: gelu_pytorch_tanh)")
        fields["act"] = "gelu_tanh"
        fields["embed_scale"] = float(np.float32(math.sqrt(fields["hidden"] or 0)))
        k.only("use_bidirectional_attention", (False,), "causal attention only")
    elif act != "silu":
        k.refuse(f"hidden_act={act!r} (implemented: silu)")
    if mtype in ("llama", "yi", "llmc"):
        _attention(k, fields, bias_key=True)
        fields["mlp_bias"] = bool(k.get("mlp_bias", False))
    elif mtype in ("mistral", "mixtral", "phi3"):
        _attention(k, fields, bias_key=False)
        k.ignore("attention_bias", "not read: transformers' layers of this model_type have no "
                                   "attention bias (bias tensors would be refused as unexpected)")
        fields["layer_windows"] = _windows(k, n_layers, k.get("sliding_window"))
        if mtype == "phi3":
            k.ignore("original_max_position_embeddings",
                     "the pretraining length, used by longrope scaling only")
    elif mtype == "qwen2":
        _attention(k, fields, bias_key=False)
        fields.update(attn_bias=True, o_bias=False)         # q/k/v biases, none on o_proj
        k.ignore("attention_bias", "not read: Qwen2 always has q/k/v biases, none on o_proj")
        fields["layer_windows"] = _qwen_windows(k, n_layers)
    elif mtype == "qwen3":
        _attention(k, fields, bias_key=True)
        fields["qk_norm"] = True
        fields["layer_windows"] = _qwen_windows(k, n_layers)
    elif mtype == "gemma":
        _attention(k, fields, bias_key=True)
    elif mtype == "qwen3_moe":
        _read_qwen3_moe(k, fields, n_layers)
    if mtype in ("mixtral", "qwen3_moe"):
        fields["n_experts"] = k.first("num_local_experts", "num_experts") or k.get(
            "num_local_experts")
        fields["top_k"] = k.get("num_experts_per_tok")
    return fields


def _read_qwen3_moe(k: _Keys, fields: dict[str, Any], n_layers: int) -> None:
    _attention(k, fields, bias_key=True)
    fields["qk_norm"] = True
    fields["ffn_hidden"] = k.get("moe_intermediate_size")
    fields["moe_norm_topk"] = bool(k.get("norm_topk_prob", False))
    k.only("decoder_sparse_step", (1,), "every layer an MoE layer")
    if k.get("mlp_only_layers", []):
        k.refuse(f"mlp_only_layers={k.raw['mlp_only_layers']!r} (dense layers among MoE "
                 f"layers are not implemented)")
    k.ignore("intermediate_size", "the dense MLP's width, used only by mlp_only_layers")
    # transformers applies Qwen3-MoE's window only in flash attention kernels
    k.only("use_sliding_window", (False,), "transformers applies it only with flash attention")
    k.ignore("sliding_window", "used only with use_sliding_window")
    k.ignore("max_window_layers", "used only with use_sliding_window")


def _read_gpt2(k: _Keys, fields: dict[str, Any]) -> dict[str, Any]:
    fields["vocab_size"] = k.get("vocab_size")
    fields["hidden"] = k.first("n_embd", "hidden_size")
    fields["n_layers"] = k.first("n_layer", "num_hidden_layers")
    fields["n_heads"] = k.first("n_head", "num_attention_heads")
    fields["max_seq_len"] = k.first("n_positions", "max_position_embeddings")
    fields["n_kv_heads"] = fields["n_heads"]
    fields["ffn_hidden"] = k.get("n_inner") or 4 * int(fields["hidden"] or 0)
    fields["norm_eps"] = float(k.get("layer_norm_epsilon"))
    fields["tie_embeddings"] = bool(k.get("tie_word_embeddings"))
    fields.update(attn_bias=True, mlp_bias=True)
    act = k.get("activation_function", "gelu_new")
    if act not in (*_TANH_GELU, "gelu"):
        k.refuse(f"activation_function={act!r} (implemented: gelu_new, gelu_pytorch_tanh, gelu)")
    fields["act"] = "gelu" if act == "gelu" else "gelu_tanh"
    k.only("scale_attn_weights", (True,), "unscaled attention scores are not implemented")
    k.only("scale_attn_by_inverse_layer_idx", (False,), "not implemented")
    k.only("add_cross_attention", (False,), "an encoder-decoder's cross attention")
    for key, why in _GPT2_IGNORED.items():
        k.ignore(key, why)
    return fields


_REQUIRED = ("vocab_size", "hidden", "n_layers", "n_heads", "ffn_hidden", "max_seq_len")
_SPELLING = {"hidden": "hidden_size", "n_layers": "num_hidden_layers",
             "n_heads": "num_attention_heads", "ffn_hidden": "intermediate_size",
             "max_seq_len": "max_position_embeddings"}


def config_from_hf(raw: dict[str, Any], name: str) -> ModelConfig:
    """The ModelConfig of a Hugging Face config.json; ModelError naming every
    key (or value) it does not implement, or the sizes it lacks."""
    mtype = raw.get("model_type", "")
    if mtype in _REFUSED_TYPES:
        raise ModelError(f"{name}: model_type {mtype!r} is not supported: "
                         f"{_REFUSED_TYPES[mtype]}")
    if mtype not in _TYPES:
        raise ModelError(f"{name}: model_type {mtype!r} is not supported "
                         f"(supported: {', '.join(sorted(_TYPES))})")
    keys = _Keys(raw, mtype)
    fields = _read(mtype, keys)
    missing = [_SPELLING.get(f, f) for f in _REQUIRED if not fields.get(f)]
    if missing:
        raise ModelError(f"{name}: config.json lacks {', '.join(missing)}")
    for key, why in REFUSED_KEYS.items():
        if key in raw:
            keys.ignore(key, why)
            keys.refuse(f"{key} ({why})")
    unknown = keys.unknown()
    problems = keys.refused + ([f"unknown key(s) {', '.join(unknown)}"] if unknown else [])
    if problems:
        raise ModelError(f"{name}: config.json ({mtype}) has what llmc does not implement: "
                         + "; ".join(problems))
    try:
        return ModelConfig(name=name, family=_TYPES[mtype][0], source=f"{name}/config.json",
                           **fields)
    except TypeError as exc:
        raise ModelError(f"{name}: bad config.json: {exc}") from None
