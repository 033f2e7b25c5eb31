"""Hugging Face checkpoint directories against transformers itself: exact or refused.

Each family (and each setting within a family that changes the computation)
is saved by transformers' own `save_pretrained` from a tiny seeded model
(tests/frontend/hf_dirs.py), traced by llmc and run in the IR interpreter:
prefill logits and 8 KV-cached decode steps must match transformers (with its
own cache) to 1e-5 relative. What llmc does not implement is refused in one
line that names it, with exit code 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from llmc import api
from llmc.cli import main
from tests.frontend.hf_dirs import (
    DECODE_STEPS,
    PROMPT,
    VARIANTS,
    hf_decode,
    hf_prefill,
    llmc_decode,
    prompt_tokens,
    rel_err,
    save_tiny,
)

pytest.importorskip("transformers")
TOL = 1e-5


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hf")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_prefill_and_decode_match_transformers(root: Path, variant: str) -> None:
    path, hf = save_tiny(variant, root)
    prompt = prompt_tokens()
    steps = prompt_tokens(seed=1, n=DECODE_STEPS)[0].tolist()

    prefill = api.trace(str(path), "prefill", seq_len=PROMPT)
    out = api.interpret(prefill.graph, [prompt.numpy()])
    assert rel_err(out[0], hf_prefill(hf, prompt)) <= TOL

    decode = api.trace(str(path), "decode", seq_len=PROMPT + 1, cache_len=PROMPT + DECODE_STEPS)
    ours = llmc_decode(decode.graph, out, steps)
    theirs = hf_decode(hf, prompt, steps)
    errors = [rel_err(a, b) for a, b in zip(ours, theirs, strict=True)]
    assert max(errors) <= TOL, errors


@pytest.mark.parametrize("variant, windows", [("mistral", [8, 8]), ("qwen2-window", [None, 8]),
                                              ("llama", [None, None])])
def test_the_traced_ir_carries_the_window(root: Path, variant: str, windows: list) -> None:
    """The window is an attribute of `attention` (as --attention window:W sets
    it), so the cost model and the backends see it, in both phases."""
    path = root / f"tiny-{variant}"
    if not path.exists():
        save_tiny(variant, root)
    for phase in ("prefill", "decode"):
        graph = api.trace(str(path), phase, seq_len=PROMPT).graph
        got = [n.attrs.get("window") for n in graph.nodes if n.op == "attention"]
        assert got == windows, phase


def test_the_window_changes_the_answer(root: Path) -> None:
    """Mistral's window (8) is shorter than the prompt (16): full attention
    would be far off, so the exact match above does test the window."""
    path, hf = save_tiny("mistral", root, name="mistral-nowindow")
    cfg = json.loads((path / "config.json").read_text())
    cfg["sliding_window"] = None
    (path / "config.json").write_text(json.dumps(cfg))
    prompt = prompt_tokens()
    full = api.interpret(api.trace(str(path), "prefill", seq_len=PROMPT).graph, [prompt.numpy()])
    assert rel_err(full[0], hf_prefill(hf, prompt)) > 1e-2


# ---- refusals: one line, exit code 2, naming what is not implemented ------------------


def _edit_config(path: Path, **changes: Any) -> None:
    cfg = json.loads((path / "config.json").read_text())
    for k, v in changes.items():
        if v is ...:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (path / "config.json").write_text(json.dumps(cfg))


def _edit_weights(path: Path, fn: Any) -> None:
    f = path / "model.safetensors"
    state = fn(load_file(str(f)))
    save_file(state, str(f), metadata={"format": "pt"})


def _show_fails(path: Path, capsys: pytest.CaptureFixture) -> str:
    capsys.readouterr()
    assert main(["show", str(path), "--seq-len", "8"]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    return lines[0]


REFUSALS = [
    ("llama", dict(my_new_knob=3), None, ["unknown key(s) my_new_knob"]),
    ("llama", dict(rope_parameters={"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0},
                   foo=1), None, ["rope type 'yarn'", "unknown key(s) foo"]),
    ("mistral", dict(model_type="mamba"), None, ["model_type 'mamba' is not supported"]),
    ("mistral", dict(model_type="gpt_oss"), None, ["model_type 'gpt_oss'", "attention sinks"]),
    ("qwen3_moe", dict(mlp_only_layers=[1]), None, ["mlp_only_layers=[1]"]),
    ("qwen3_moe", dict(use_sliding_window=True), None, ["use_sliding_window=True"]),
    ("gpt2", dict(activation_function="relu"), None, ["activation_function='relu'"]),
    ("gpt2", dict(scale_attn_by_inverse_layer_idx=True), None,
     ["scale_attn_by_inverse_layer_idx=True"]),
    ("gemma", dict(use_bidirectional_attention=True), None,
     ["use_bidirectional_attention=True"]),
    ("phi3", dict(rope_parameters={"rope_type": "default", "rope_theta": 1e4,
                                   "partial_rotary_factor": 0.5}), None,
     ["partial_rotary_factor=0.5"]),
    ("llama", dict(hidden_act="gelu"), None, ["hidden_act='gelu'"]),
    ("qwen2", dict(quantization_config={"quant_method": "awq", "bits": 4}), None,
     ["quantization_config (pre-quantized weights"]),
    ("llama", dict(intermediate_size=100), None,
     ["model.layers.0.mlp.down_proj.weight has shape (64, 96)", "implies (64, 100)"]),
    ("phi3", dict(num_key_value_heads=4), None,
     ["model.layers.0.self_attn.qkv_proj.weight has shape (128, 64)", "implies (192, 64)"]),
    ("mixtral", dict(num_local_experts=5), None,
     ["experts.*.w2.weight covers experts 0, 1, 2, 3", "config has 5"]),
    ("qwen2", {}, lambda s: {k: v for k, v in s.items() if "q_proj.bias" not in k},
     ["missing layers.0.attn.q_proj.bias"]),
    ("llama", {}, lambda s: {**s, "model.layers.0.self_attn.extra.weight": torch.zeros(2)},
     ["unexpected model.layers.0.self_attn.extra.weight"]),
]


@pytest.mark.parametrize("variant, config, weights, needles", REFUSALS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(REFUSALS)])
def test_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, variant: str,
                             config: dict, weights: Any, needles: list[str]) -> None:
    path, _ = save_tiny(variant, tmp_path)
    _edit_config(path, **config)
    if weights is not None:
        _edit_weights(path, weights)
    line = _show_fails(path, capsys)
    for needle in needles:
        assert needle in line, line


# Key sets in the shape of published config.json files (transformers 4.x writers):
# every key is read, checked or ignored with a reason; none is unknown.
PUBLISHED_STYLE = {
    "llama-3.1": {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu",
        "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
        "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama",
        "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": {
            "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.43.0", "use_cache": True, "vocab_size": 128256},
    "phi-3-mini": {
        "_name_or_path": "Phi-3-mini-4k-instruct", "architectures": ["Phi3ForCausalLM"],
        "attention_bias": False, "attention_dropout": 0.0,
        "auto_map": {"AutoConfig": "configuration_phi3.Phi3Config"}, "bos_token_id": 1,
        "embd_pdrop": 0.0, "eos_token_id": 32000, "hidden_act": "silu", "hidden_size": 3072,
        "initializer_range": 0.02, "intermediate_size": 8192, "max_position_embeddings": 4096,
        "model_type": "phi3", "num_attention_heads": 32, "num_hidden_layers": 32,
        "num_key_value_heads": 32, "original_max_position_embeddings": 4096,
        "pad_token_id": 32000, "resid_pdrop": 0.0, "rms_norm_eps": 1e-05, "rope_scaling": None,
        "rope_theta": 10000.0, "sliding_window": 2047, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "transformers_version": "4.40.2", "use_cache": True,
        "vocab_size": 32064},
    "qwen3-moe": {
        "architectures": ["Qwen3MoeForCausalLM"], "attention_bias": False,
        "attention_dropout": 0.0, "bos_token_id": 151643, "decoder_sparse_step": 1,
        "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 2048,
        "initializer_range": 0.02, "intermediate_size": 6144, "max_position_embeddings": 40960,
        "max_window_layers": 48, "mlp_only_layers": [], "model_type": "qwen3_moe",
        "moe_intermediate_size": 768, "norm_topk_prob": True, "num_attention_heads": 32,
        "num_experts": 128, "num_experts_per_tok": 8, "num_hidden_layers": 48,
        "num_key_value_heads": 4, "output_router_logits": False, "rms_norm_eps": 1e-06,
        "rope_scaling": None, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001,
        "sliding_window": None, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.51.0", "use_cache": True, "use_sliding_window": False,
        "vocab_size": 151936},
    "gpt2": {
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1, "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256,
        "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2",
        "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024,
        "resid_pdrop": 0.1, "summary_activation": None, "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True, "summary_type": "cls_index", "summary_use_proj": True,
        "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
        "vocab_size": 50257},
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_STYLE))
def test_published_style_configs_are_read(name: str) -> None:
    from llmc.frontend.hf_config import config_from_hf

    cfg = config_from_hf(PUBLISHED_STYLE[name], name)
    expect = {"llama-3.1": dict(rope_theta=500000.0, n_kv_heads=8, layer_windows=()),
              "phi-3-mini": dict(layer_windows=(2047,) * 32, head_dim=96),
              "qwen3-moe": dict(n_experts=128, top_k=8, ffn_hidden=768, moe_norm_topk=True,
                                qk_norm=True, head_dim=128, rope_theta=1e6),
              "gpt2": dict(act="gelu_tanh", ffn_hidden=3072, tie_embeddings=True)}[name]
    assert {k: getattr(cfg, k) for k in expect} == expect
    if name == "llama-3.1":
        assert dict(cfg.rope_scaling)["original_max_position_embeddings"] == 8192


def test_irrelevant_keys_are_accepted(tmp_path: Path) -> None:
    """Dropout, token ids, generation settings: no effect on the logits."""
    path, hf = save_tiny("llama", tmp_path)
    _edit_config(path, attention_dropout=0.3, bos_token_id=5, temperature=0.7,
                 torch_dtype="bfloat16", pretraining_tp=2)
    prompt = prompt_tokens()
    loaded = api.load_model(str(path))
    with torch.no_grad():
        assert rel_err(loaded.module(prompt)[0], hf_prefill(hf, prompt)) <= TOL


def test_cli_exit_code(tmp_path: Path) -> None:
    path, _ = save_tiny("llama", tmp_path)
    _edit_config(path, my_new_knob=3)
    proc = subprocess.run([sys.executable, "-m", "llmc.cli", "show", str(path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "my_new_knob" in lines[0] and "Traceback" not in proc.stderr


FACTORY = """
import torch
class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(8, 4)
    def forward(self, x):
        return torch.tanh(self.lin(x))
def factory():
    torch.manual_seed(0)
    return M().eval(), (torch.randn(2, 8),)
"""


def test_bench_runs_a_factory_when_one_exists(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import frontend_bench

    monkeypatch.setattr(frontend_bench, "FACTORIES", tmp_path)
    assert frontend_bench.measure_factory("llama") == {"status": "not built"}
    (tmp_path / "llama.py").write_text(FACTORY)
    got = frontend_bench.measure_factory("llama")
    assert got["status"] == "yes" and got["rel_err"] <= TOL and got["ops"] == 2


@pytest.mark.parametrize("variant", ["mistral", "qwen2-window", "qwen3", "gemma", "qwen3_moe",
                                     "gpt2-gelu", "qwen2"])
@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_cost_model_synthesizes_what_is_traced(root: Path, variant: str, phase: str) -> None:
    """`llmc report DIR` costs a directory from its config alone (costmodel/synth.py):
    the variants' ops (windows, q/k norms, biases, activations, embedding scale,
    MoE gate share) must be the traced ones, node for node, attributes included."""
    from collections import Counter

    from llmc.costmodel.synth import synth_graph
    from llmc.ir.cost import graph_cost
    from tests.costmodel.test_cm_synth import signature

    def attrs(g: Any) -> Counter:
        return Counter((n.op, n.loc, tuple(sorted((k, str(v)) for k, v in n.attrs.items())))
                       for n in g.nodes if n.op not in ("param", "input"))

    path = root / f"tiny-{variant}"
    if not path.exists():
        save_tiny(variant, root)
    loaded = api.load_model(str(path), weights="meta")
    traced = api.trace(loaded, phase, batch=2, seq_len=PROMPT).graph    # prompt > window
    synth = synth_graph(loaded.config, phase, 2, PROMPT if phase == "prefill" else 1, PROMPT)
    assert signature(synth) == signature(traced)
    assert attrs(synth) == attrs(traced)
    assert graph_cost(synth) == graph_cost(traced)
