"""Finding and building models: zoo names, Hugging Face style directories
(config.json + *.safetensors) and `file.py:factory` for any nn.Module."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from llmc.errors import ModelError
from llmc.frontend.zoo.config import ModelConfig, get_config
from llmc.frontend.zoo.decoder import Decoder, build_model

WEIGHTS_DIR = Path(__file__).parent / "zoo" / "weights"


@dataclass
class LoadedModel:
    """A model ready to trace. `config` is None for a user's own module, which
    then comes with its own example inputs."""

    name: str
    module: nn.Module
    config: ModelConfig | None
    source: str
    example_args: tuple[torch.Tensor, ...] | None = None

    @property
    def is_meta(self) -> bool:
        return any(p.device.type == "meta" for p in self.module.parameters())


def load_model(spec: str, weights: str = "auto") -> LoadedModel:
    """Load `spec`: a zoo name, a directory with config.json, or file.py:factory.

    weights: "auto" (real weights when shipped or present, else meta),
    "meta" (shape only), or "random" (seeded random weights, for small models).
    """
    if weights not in ("auto", "meta", "random"):
        raise ModelError(f"weights must be auto, meta or random, got {weights!r}")
    if ".py:" in spec:
        return _load_factory(spec)
    path = Path(spec)
    if path.is_dir() or spec.endswith("config.json"):
        return _load_hf_dir(path if path.is_dir() else path.parent, weights)
    cfg = get_config(spec)
    shipped = WEIGHTS_DIR / f"{cfg.name}.safetensors"
    if weights == "auto" and shipped.exists():
        return LoadedModel(cfg.name, _with_weights(cfg, [shipped]), cfg, str(shipped))
    device = "cpu" if weights == "random" else "meta"
    return LoadedModel(cfg.name, build_model(cfg, device), cfg, f"zoo ({device} weights)")


def _load_factory(spec: str) -> LoadedModel:
    """Call `factory` of file.py; the file may import modules beside it, as
    a script run from its own folder would."""
    file, _, factory = spec.rpartition(":")
    path = Path(file)
    if not path.is_file():
        raise ModelError(f"model file {file} does not exist")
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        try:
            mod_spec = importlib.util.spec_from_file_location(f"llmc_user_{path.stem}", path)
            assert mod_spec and mod_spec.loader
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[mod_spec.name] = module
            mod_spec.loader.exec_module(module)
        except Exception as exc:  # a user's file can raise anything while importing
            raise ModelError(f"{file}: importing failed: {type(exc).__name__}: {exc}") from None
        fn = getattr(module, factory, None)
        if not callable(fn):
            raise ModelError(f"{file} has no callable {factory!r}")
        try:
            made = fn()
        except Exception as exc:
            raise ModelError(f"{spec}: the factory raised {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(folder)
    model, args = made if isinstance(made, tuple) else (made, None)
    if isinstance(model, Decoder):
        return LoadedModel(path.stem, model.eval(), model.cfg, spec)
    if not isinstance(model, nn.Module) or args is None:
        raise ModelError(f"{spec} must return a zoo Decoder, or (nn.Module, example_args)")
    return LoadedModel(path.stem, model.eval(), None, spec, tuple(args))


# Hugging Face config.json keys -> ModelConfig fields, per model_type.
_HF_KEYS = {
    "vocab_size": ("vocab_size",), "hidden": ("hidden_size", "n_embd"),
    "n_layers": ("num_hidden_layers", "n_layer"), "n_heads": ("num_attention_heads", "n_head"),
    "n_kv_heads": ("num_key_value_heads",), "ffn_hidden": ("intermediate_size", "n_inner"),
    "max_seq_len": ("max_position_embeddings", "n_positions"),
    "norm_eps": ("rms_norm_eps", "layer_norm_epsilon"), "rope_theta": ("rope_theta",),
    "tie_embeddings": ("tie_word_embeddings",), "head_dim": ("head_dim",),
    "n_experts": ("num_local_experts", "num_experts"), "top_k": ("num_experts_per_tok",),
    "attn_bias": ("attention_bias",),
}
_HF_FAMILY = {"gpt2": "gpt2", "llama": "llama", "mistral": "llama", "qwen2": "llama",
              "yi": "llama", "mixtral": "moe", "gpt_oss": "moe", "llmc": "llama"}


def config_from_hf(raw: dict, name: str) -> ModelConfig:
    mtype = raw.get("model_type", "")
    if mtype not in _HF_FAMILY:
        raise ModelError(f"{name}: model_type {mtype!r} is not supported "
                         f"(supported: {', '.join(sorted(_HF_FAMILY))})")
    fields: dict[str, object] = {}
    for field, keys in _HF_KEYS.items():
        for k in keys:
            if raw.get(k) is not None:
                fields[field] = raw[k]
                break
    family = _HF_FAMILY[mtype]
    if family == "gpt2":
        fields.update(tie_embeddings=raw.get("tie_word_embeddings", True), attn_bias=True,
                      mlp_bias=True)
        fields.setdefault("ffn_hidden", 4 * int(fields.get("hidden", 0)))
        fields["n_kv_heads"] = fields.get("n_heads", 0)
    if mtype == "qwen2":
        fields["attn_bias"] = True
    fields.setdefault("n_kv_heads", fields.get("n_heads", 0))
    if family == "moe" and "ffn_hidden" not in fields and raw.get("moe_intermediate_size"):
        fields["ffn_hidden"] = raw["moe_intermediate_size"]
    missing = [f for f in ("vocab_size", "hidden", "n_layers", "n_heads", "ffn_hidden",
                           "max_seq_len") if f not in fields]
    if missing:
        raise ModelError(f"{name}: config.json lacks {', '.join(missing)}")
    try:
        return ModelConfig(name=name, family=family, source=f"{name}/config.json",
                           **fields)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ModelError(f"{name}: bad config.json: {exc}") from None


def _load_hf_dir(path: Path, weights: str) -> LoadedModel:
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise ModelError(f"{path}: no config.json")
    try:
        raw = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{cfg_path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{cfg_path}: expected a JSON object")
    cfg = config_from_hf(raw, path.name)
    files = sorted(path.glob("*.safetensors"))
    if files and weights != "meta":
        return LoadedModel(cfg.name, _with_weights(cfg, files), cfg, str(path))
    device = "cpu" if weights == "random" else "meta"
    return LoadedModel(cfg.name, build_model(cfg, device), cfg, f"{path} ({device} weights)")


def _with_weights(cfg: ModelConfig, files: list[Path]) -> Decoder:
    from llmc.frontend.hf_weights import load_state_dict

    model = build_model(cfg, "meta")
    state = load_state_dict(cfg, files)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    except RuntimeError as exc:
        raise ModelError(f"{files[0].parent}: weights do not fit the config: "
                         f"{str(exc).splitlines()[0]}") from None
    missing = [m for m in missing if not m.startswith("rope_")]
    if cfg.tie_embeddings:
        model.lm_head.weight = model.embed.weight
        missing = [m for m in missing if m != "lm_head.weight"]
    if missing or unexpected:
        raise ModelError(f"{files[0].parent}: weights do not match the config: missing "
                         f"{missing[:3]}{'...' if len(missing) > 3 else ''}, unexpected "
                         f"{unexpected[:3]}{'...' if len(unexpected) > 3 else ''}")
    from llmc.frontend.zoo.layers import rope_tables

    if cfg.family != "gpt2":
        model.rope_cos, model.rope_sin = rope_tables(cfg)
    return model.float().eval()
