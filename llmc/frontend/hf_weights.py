"""Reading *.safetensors into the zoo's parameter names.

Accepts llmc's own names (as shipped for llmc-tiny) and Hugging Face names for
the Llama/Mistral/Qwen2, GPT-2 and Mixtral layouts.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from llmc.errors import ModelError
from llmc.frontend.zoo.config import ModelConfig

_LLAMA = [
    (r"model\.embed_tokens\.weight", "embed.weight"),
    (r"model\.norm\.weight", "norm.weight"),
    (r"lm_head\.weight", "lm_head.weight"),
    (r"model\.layers\.(\d+)\.self_attn\.([qkvo])_proj\.(weight|bias)", r"layers.\1.attn.\2_proj.\3"),
    (r"model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj\.weight", r"layers.\1.ffn.\2.weight"),
    (r"model\.layers\.(\d+)\.input_layernorm\.weight", r"layers.\1.attn_norm.weight"),
    (r"model\.layers\.(\d+)\.post_attention_layernorm\.weight", r"layers.\1.ffn_norm.weight"),
    (r"model\.layers\.(\d+)\.block_sparse_moe\.gate\.weight", r"layers.\1.ffn.router"),
]
_GPT2 = [
    (r"(?:transformer\.)?wte\.weight", "embed.weight"),
    (r"(?:transformer\.)?wpe\.weight", "pos_embed.weight"),
    (r"(?:transformer\.)?ln_f\.(weight|bias)", r"norm.\1"),
    (r"(?:transformer\.)?h\.(\d+)\.ln_1\.(weight|bias)", r"layers.\1.attn_norm.\2"),
    (r"(?:transformer\.)?h\.(\d+)\.ln_2\.(weight|bias)", r"layers.\1.ffn_norm.\2"),
    (r"(?:transformer\.)?h\.(\d+)\.attn\.c_proj\.(weight|bias)", r"layers.\1.attn.o_proj.\2"),
    (r"(?:transformer\.)?h\.(\d+)\.mlp\.c_fc\.(weight|bias)", r"layers.\1.ffn.up.\2"),
    (r"(?:transformer\.)?h\.(\d+)\.mlp\.c_proj\.(weight|bias)", r"layers.\1.ffn.down.\2"),
]
_EXPERT = re.compile(r"model\.layers\.(\d+)\.block_sparse_moe\.experts\.(\d+)\.(w[123])\.weight")
_C_ATTN = re.compile(r"(?:transformer\.)?h\.(\d+)\.attn\.c_attn\.(weight|bias)")


def _read(files: list[Path]) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for f in files:
        try:
            state.update(load_file(str(f)))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelError(f"{f}: cannot read safetensors weights ({exc})") from None
    return state


def load_state_dict(cfg: ModelConfig, files: list[Path]) -> dict[str, torch.Tensor]:
    """The weights in `files`, renamed to the zoo Decoder's state_dict keys."""
    raw = _read(files)
    if "embed.weight" in raw:  # llmc's own names
        return raw
    out: dict[str, torch.Tensor] = {}
    experts: dict[tuple[int, str], dict[int, torch.Tensor]] = {}
    table = _GPT2 if cfg.family == "gpt2" else _LLAMA
    for name, t in raw.items():
        if m := _EXPERT.fullmatch(name):
            experts.setdefault((int(m[1]), m[3]), {})[int(m[2])] = t
            continue
        if m := _C_ATTN.fullmatch(name):  # GPT-2 Conv1D: fused qkv, (in, out)
            parts = t.t().split(cfg.hidden, dim=0) if m[2] == "weight" else t.split(cfg.hidden)
            for p, part in zip("qkv", parts, strict=False):
                out[f"layers.{m[1]}.attn.{p}_proj.{m[2]}"] = part.contiguous()
            continue
        for pattern, repl in table:
            if re.fullmatch(pattern, name):
                key = re.sub(pattern, repl, name)
                gpt2_conv = cfg.family == "gpt2" and key.endswith(".weight") and (
                    ".ffn." in key or "o_proj" in key)
                out[key] = t.t().contiguous() if gpt2_conv else t
                break
    for (layer, w), per_expert in experts.items():
        stacked = torch.stack([per_expert[e] for e in sorted(per_expert)])
        name = {"w1": "w_gate", "w3": "w_up", "w2": "w_down"}[w]
        out[f"layers.{layer}.ffn.{name}"] = stacked
    return out
