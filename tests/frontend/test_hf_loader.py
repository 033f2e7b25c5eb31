"""Hugging Face style directories: config.json keys and safetensors names."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from llmc.frontend.loader import load_model
from llmc.frontend.zoo.config import get_config
from llmc.frontend.zoo.decoder import build_model


def hf_llama_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        k = (k.replace("embed.weight", "model.embed_tokens.weight")
              .replace("layers.", "model.layers.").replace(".attn.", ".self_attn.")
              .replace(".ffn.gate.", ".mlp.gate_proj.").replace(".ffn.up.", ".mlp.up_proj.")
              .replace(".ffn.down.", ".mlp.down_proj.")
              .replace(".attn_norm.", ".input_layernorm.")
              .replace(".ffn_norm.", ".post_attention_layernorm."))
        if k == "norm.weight":
            k = "model.norm.weight"
        out[k] = v.contiguous()
    return out


def hf_gpt2_names(state: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    out = {"transformer.wte.weight": state["embed.weight"],
           "transformer.wpe.weight": state["pos_embed.weight"],
           "transformer.ln_f.weight": state["norm.weight"],
           "transformer.ln_f.bias": state["norm.bias"]}
    for i in range(layers):
        p, h = f"layers.{i}.", f"transformer.h.{i}."
        for ours, theirs in (("attn_norm", "ln_1"), ("ffn_norm", "ln_2")):
            for t in ("weight", "bias"):
                out[f"{h}{theirs}.{t}"] = state[f"{p}{ours}.{t}"]
        qkv = [state[f"{p}attn.{x}_proj.weight"] for x in "qkv"]
        out[f"{h}attn.c_attn.weight"] = torch.cat(qkv, 0).t().contiguous()  # Conv1D (in, out)
        out[f"{h}attn.c_attn.bias"] = torch.cat([state[f"{p}attn.{x}_proj.bias"] for x in "qkv"])
        for ours, theirs in (("attn.o_proj", "attn.c_proj"), ("ffn.up", "mlp.c_fc"),
                             ("ffn.down", "mlp.c_proj")):
            out[f"{h}{theirs}.weight"] = state[f"{p}{ours}.weight"].t().contiguous()
            out[f"{h}{theirs}.bias"] = state[f"{p}{ours}.bias"]
    return out


def same_logits(a, b) -> None:  # noqa: ANN001
    tokens = torch.randint(0, 128, (1, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(a(tokens)[0], b(tokens)[0], rtol=0, atol=0)


def test_llama_directory(tmp_path: Path) -> None:
    cfg = get_config("llama-tiny")
    ref = build_model(cfg, seed=3)
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "llama", "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden,
        "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads, "intermediate_size": cfg.ffn_hidden,
        "max_position_embeddings": cfg.max_seq_len, "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta, "tie_word_embeddings": False}))
    save_file(hf_llama_names(ref.state_dict()), str(tmp_path / "model.safetensors"))
    loaded = load_model(str(tmp_path))
    assert loaded.config.n_kv_heads == 2 and not loaded.is_meta
    same_logits(loaded.module, ref)
    assert load_model(str(tmp_path), weights="meta").is_meta


def test_gpt2_directory(tmp_path: Path) -> None:
    cfg = get_config("gpt2-tiny")
    ref = build_model(cfg, seed=4)
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "gpt2", "vocab_size": cfg.vocab_size, "n_embd": cfg.hidden,
        "n_layer": cfg.n_layers, "n_head": cfg.n_heads, "n_positions": cfg.max_seq_len,
        "layer_norm_epsilon": cfg.norm_eps}))
    state = {k: v for k, v in ref.state_dict().items() if k != "lm_head.weight"}
    save_file(hf_gpt2_names(state, cfg.n_layers), str(tmp_path / "model.safetensors"))
    loaded = load_model(str(tmp_path))
    same_logits(loaded.module, ref)


def test_config_without_weights_is_shape_only(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "mixtral", "vocab_size": 1000, "hidden_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 96, "max_position_embeddings": 128, "num_local_experts": 4,
        "num_experts_per_tok": 2}))
    loaded = load_model(str(tmp_path))
    assert loaded.is_meta and loaded.config.family == "moe" and loaded.config.top_k == 2
