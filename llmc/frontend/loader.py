"""Finding and building models: zoo names, Hugging Face style directories
(config.json + *.safetensors) and `file.py:factory` for any nn.Module.

A directory's config.json is read by llmc/frontend/hf_config.py (every key
implemented or refused by name) and its weights by hf_weights.py; the model
is the zoo's decoder (llmc/frontend/zoo) for that config.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from llmc.errors import ModelError
from llmc.frontend.hf_config import NORM_OFFSET, config_from_hf
from llmc.frontend.zoo.config import ModelConfig, get_config
from llmc.frontend.zoo.decoder import Decoder, build_model
from llmc.frontend.zoo.event_lm import EVENT_CONFIGS, EventLM, load_event_model

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
    def is_event(self) -> bool:
        """An event-based LM (llmc.frontend.zoo.event_lm): it writes its own IR."""
        return isinstance(self.module, EventLM)

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
    if spec.endswith(".nir"):  # an event network in NIR (llmc/frontend/zoo/event_nir.py)
        from llmc.frontend.zoo.event_nir import load_nir_model

        module = load_nir_model(spec)
        return LoadedModel(module.cfg.name, module, None, spec)
    path = Path(spec)
    if path.is_dir() or spec.endswith("config.json"):
        return _load_hf_dir(path if path.is_dir() else path.parent, weights)
    if spec in EVENT_CONFIGS:  # event-based LMs (EGRU, LIF): their own modules
        module, source = load_event_model(spec, weights)
        return LoadedModel(spec, module, None, source)
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
        module = _with_weights(cfg, files, NORM_OFFSET.get(raw.get("model_type", ""), 0.0))
        return LoadedModel(cfg.name, module, cfg, str(path))
    device = "cpu" if weights == "random" else "meta"
    return LoadedModel(cfg.name, build_model(cfg, device), cfg, f"{path} ({device} weights)")


def _with_weights(cfg: ModelConfig, files: list[Path], norm_offset: float = 0.0) -> Decoder:
    """The zoo decoder of `cfg` holding the weights in `files`; ModelError naming
    the tensors that are missing, unexpected or of the wrong shape."""
    from llmc.frontend.hf_weights import load_state_dict

    where = files[0].parent
    model = build_model(cfg, "meta")
    state, source, unknown = load_state_dict(cfg, files, norm_offset)
    want = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.startswith("rope_")}
    if cfg.tie_embeddings and "lm_head.weight" in state:
        lm, emb = state.pop("lm_head.weight"), state.get("embed.weight")
        if emb is None or not torch.equal(lm, emb):
            raise ModelError(f"{where}: tie_word_embeddings is set but {source['lm_head.weight']}"
                             " differs from the embeddings")
    if cfg.tie_embeddings:
        want.pop("lm_head.weight", None)
    for key, t in sorted(state.items(), key=lambda kv: source[kv[0]]):
        if key in want and tuple(t.shape) != want[key]:
            raise ModelError(f"{where}: weights do not fit the config: {source[key]} has shape "
                             f"{tuple(t.shape)}, the config implies {want[key]}"
                             + (f" (for {key})" if source[key] != key else ""))
    missing = sorted(set(want) - set(state))
    unexpected = unknown + sorted(source[k] for k in state if k not in want)
    if missing or unexpected:
        raise ModelError(f"{where}: weights do not match the config: "
                         + "; ".join(p for p in (_some("missing", missing),
                                                 _some("unexpected", unexpected)) if p))
    model.load_state_dict(state, strict=False, assign=True)
    if cfg.tie_embeddings:
        model.lm_head.weight = model.embed.weight
    from llmc.frontend.zoo.layers import rope_tables

    if cfg.family != "gpt2":
        model.rope_cos, model.rope_sin = rope_tables(cfg)
    return model.float().eval()


def _some(what: str, names: list[str]) -> str:
    if not names:
        return ""
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return f"{what} {', '.join(names[:3])}{more}"
