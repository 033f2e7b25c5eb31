"""Reading *.safetensors into the zoo's parameter names.

Accepts llmc's own names (as shipped for llmc-tiny) and Hugging Face names:
the Llama layout (Llama, Mistral, Qwen2, Qwen3, Gemma), Phi-3's fused
qkv_proj / gate_up_proj, GPT-2's Conv1D layout, and experts per tensor
(Mixtral's w1/w2/w3, Qwen3-MoE's gate/up/down_proj) or stacked
(transformers 5's experts.gate_up_proj / experts.down_proj). Every tensor
of the checkpoint is used or named in the refusal; a few buffers that
transformers itself recomputes are skipped (`_SKIPPED`).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from llmc.errors import ModelError
from llmc.frontend.zoo.config import ModelConfig

_L = r"(?:model\.)?layers\.(\d+)\."
_LLAMA = [
    (r"(?:model\.)?embed_tokens\.weight", "embed.weight"),
    (r"(?:model\.)?norm\.weight", "norm.weight"),
    (r"lm_head\.weight", "lm_head.weight"),
    (_L + r"self_attn\.([qkvo])_proj\.(weight|bias)", r"layers.\1.attn.\2_proj.\3"),
    (_L + r"self_attn\.([qk])_norm\.weight", r"layers.\1.attn.\2_norm.weight"),
    (_L + r"mlp\.(gate|up|down)_proj\.(weight|bias)", r"layers.\1.ffn.\2.\3"),
    (_L + r"input_layernorm\.weight", r"layers.\1.attn_norm.weight"),
    (_L + r"post_attention_layernorm\.weight", r"layers.\1.ffn_norm.weight"),
    (_L + r"(?:block_sparse_moe|mlp)\.gate\.weight", r"layers.\1.ffn.router"),
]
_GPT2 = [
    (r"(?:transformer\.)?wte\.weight", "embed.weight"),
    (r"(?:transformer\.)?wpe\.weight", "pos_embed.weight"),
    (r"(?:transformer\.)?ln_f\.(weight|bias)", r"norm.\1"),
    (r"lm_head\.weight", "lm_head.weight"),
    (r"(?:transformer\.)?h\.(\d+)\.ln_1\.(weight|bias)", r"layers.\1.attn_norm.\2"),
    (r"(?:transformer\.)?h\.(\d+)\.ln_2\.(weight|bias)", r"layers.\1.ffn_norm.\2"),
    (r"(?:transformer\.)?h\.(\d+)\.attn\.c_proj\.(weight|bias)", r"layers.\1.attn.o_proj.\2"),
    (r"(?:transformer\.)?h\.(\d+)\.mlp\.c_fc\.(weight|bias)", r"layers.\1.ffn.up.\2"),
    (r"(?:transformer\.)?h\.(\d+)\.mlp\.c_proj\.(weight|bias)", r"layers.\1.ffn.down.\2"),
]
# Buffers, not weights: transformers recomputes them from the config too.
_SKIPPED = re.compile(r"(?:model\.)?layers\.\d+\.self_attn\.rotary_emb\.inv_freq"
                      r"|(?:transformer\.)?h\.\d+\.attn\.(?:masked_)?bias")
_EXPERT = re.compile(_L + r"(?:block_sparse_moe|mlp)\.experts\.(\d+)\."
                     r"(w1|w2|w3|gate_proj|up_proj|down_proj)\.weight")
_EXPERT_NAME = {"w1": "w_gate", "gate_proj": "w_gate", "w3": "w_up", "up_proj": "w_up",
                "w2": "w_down", "down_proj": "w_down"}
_STACKED = re.compile(_L + r"(?:block_sparse_moe|mlp)\.experts\.(gate_up_proj|down_proj)")
_QKV = re.compile(_L + r"self_attn\.qkv_proj\.(weight|bias)")
_GATE_UP = re.compile(_L + r"mlp\.gate_up_proj\.weight")
_C_ATTN = re.compile(r"(?:transformer\.)?h\.(\d+)\.attn\.c_attn\.(weight|bias)")
_NORM = re.compile(r"(?:layers\.\d+\.(?:attn|ffn)_norm|norm|layers\.\d+\.attn\.[qk]_norm)\.weight")


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


class _Split:
    """Cuts fused checkpoint tensors into the zoo's, checking their sizes."""

    def __init__(self, cfg: ModelConfig, where: Path) -> None:
        self.cfg, self.where = cfg, where
        self.out: dict[str, torch.Tensor] = {}
        self.source: dict[str, str] = {}

    def put(self, key: str, t: torch.Tensor, name: str) -> None:
        self.out[key] = t
        self.source[key] = name

    def split(self, name: str, t: torch.Tensor, dim: int, parts: list[tuple[str, int]]) -> None:
        sizes = [n for _, n in parts]
        if t.shape[dim] != sum(sizes):
            want = list(t.shape)
            want[dim] = sum(sizes)
            raise ModelError(f"{self.where}: weights do not fit the config: {name} has shape "
                             f"{tuple(t.shape)}, the config implies {tuple(want)}")
        for (key, _), part in zip(parts, t.split(sizes, dim=dim), strict=True):
            self.put(key, part.contiguous(), name)


def load_state_dict(cfg: ModelConfig, files: list[Path], norm_offset: float = 0.0,
                    ) -> tuple[dict[str, torch.Tensor], dict[str, str], list[str]]:
    """The weights in `files` renamed to the zoo Decoder's state_dict keys:
    (state, zoo key -> checkpoint tensor name, checkpoint names not understood).
    norm_offset: added to every RMSNorm gain (Gemma stores w and computes with 1 + w)."""
    raw = _read(files)
    if "embed.weight" in raw:  # llmc's own names
        return raw, {k: k for k in raw}, []
    s = _Split(cfg, files[0].parent)
    experts: dict[tuple[int, str], dict[int, tuple[str, torch.Tensor]]] = {}
    unknown: list[str] = []
    table = _GPT2 if cfg.family == "gpt2" else _LLAMA
    f, q, kv = cfg.ffn_hidden, cfg.q_dim, cfg.kv_dim
    for name, t in sorted(raw.items()):
        if _SKIPPED.fullmatch(name):
            continue
        if m := _EXPERT.fullmatch(name):
            experts.setdefault((int(m[1]), _EXPERT_NAME[m[3]]), {})[int(m[2])] = (name, t)
        elif m := _STACKED.fullmatch(name):
            if m[2] == "down_proj":
                s.put(f"layers.{m[1]}.ffn.w_down", t, name)
            else:
                s.split(name, t, 1, [(f"layers.{m[1]}.ffn.w_gate", f),
                                     (f"layers.{m[1]}.ffn.w_up", f)])
        elif m := _QKV.fullmatch(name):  # Phi-3: q, k, v stacked on the output dim
            s.split(name, t, 0, [(f"layers.{m[1]}.attn.{p}_proj.{m[2]}", n)
                                 for p, n in (("q", q), ("k", kv), ("v", kv))])
        elif m := _GATE_UP.fullmatch(name):  # Phi-3: gate first, then up
            s.split(name, t, 0, [(f"layers.{m[1]}.ffn.gate.weight", f),
                                 (f"layers.{m[1]}.ffn.up.weight", f)])
        elif m := _C_ATTN.fullmatch(name):  # GPT-2 Conv1D: fused qkv, (in, out)
            w = t.t() if m[2] == "weight" else t
            s.split(name, w, 0, [(f"layers.{m[1]}.attn.{p}_proj.{m[2]}", cfg.hidden)
                                 for p in "qkv"])
        elif key := _rename(table, name):
            conv = cfg.family == "gpt2" and key.endswith(".weight") and (
                ".ffn." in key or "o_proj" in key)             # Conv1D stores (in, out)
            s.put(key, t.t().contiguous() if conv else t, name)
        else:
            unknown.append(name)
    for (layer, w), per_expert in sorted(experts.items()):
        _stack_experts(s, cfg, layer, w, per_expert)
    if norm_offset:
        for key, t in s.out.items():
            if _NORM.fullmatch(key):
                s.out[key] = t.float() + norm_offset
    return s.out, s.source, sorted(unknown)


def _rename(table: list[tuple[str, str]], name: str) -> str | None:
    for pattern, repl in table:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, repl, name)
    return None


def _stack_experts(s: _Split, cfg: ModelConfig, layer: int, w: str,
                   per_expert: dict[int, tuple[str, torch.Tensor]]) -> None:
    """One (E, ...) tensor from the per-expert tensors of a layer."""
    names = [n for n, _ in per_expert.values()]
    pattern = re.sub(r"experts\.\d+\.", "experts.*.", names[0])
    if sorted(per_expert) != list(range(cfg.n_experts)):
        raise ModelError(f"{s.where}: weights do not fit the config: {pattern} covers experts "
                         f"{_ranges(sorted(per_expert))}, the config has "
                         f"{cfg.n_experts} (0..{cfg.n_experts - 1})")
    shapes = {tuple(t.shape) for _, t in per_expert.values()}
    if len(shapes) > 1:
        raise ModelError(f"{s.where}: weights do not fit the config: {pattern} has experts "
                         f"of shapes {sorted(shapes)}")
    s.put(f"layers.{layer}.ffn.{w}", torch.stack([per_expert[e][1] for e in sorted(per_expert)]),
          pattern)


def _ranges(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids[:8]) + (", ..." if len(ids) > 8 else "")
