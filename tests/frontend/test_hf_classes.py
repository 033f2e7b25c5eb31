"""transformers model classes through `file.py:factory`: the interpreter's
logits match transformers' (float32, rel. error <= 1e-5) for prefill, and
step by step for decode with a StaticCache; MoE routing arrives as moe_ffn.

The factories (tests/frontend/hf_factories/) build tiny seeded models; each
is traced once per session.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from llmc import api  # noqa: E402
from llmc.cli import main  # noqa: E402
from llmc.errors import UnsupportedOpError  # noqa: E402
from llmc.frontend.loader import LoadedModel, load_model  # noqa: E402
from llmc.numerics import assert_close  # noqa: E402

FACTORIES = Path(__file__).parent / "hf_factories"
FAMILIES = ["llama", "mistral", "qwen2", "qwen3", "phi3", "gemma", "gpt2", "mixtral",
            "qwen3_moe"]
# Mistral's sliding-window StaticCache layer branches on a Python int (see _decode.py)
DECODE = [f for f in FAMILIES if f != "mistral"]
MOE = {"mixtral": True, "qwen3_moe": False}   # family -> gates renormalised over the top k
ROUTING = {"grouped_mm", "sort", "histc", "topk", "softmax"}


@functools.cache
def loaded(family: str, fn: str) -> LoadedModel:
    return load_model(f"{FACTORIES / family}.py:{fn}")


@functools.cache
def traced(family: str, fn: str) -> api.Traced:
    return api.trace(loaded(family, fn))


@functools.cache
def reference(family: str) -> np.ndarray:
    """transformers' logits for the whole example prompt, no cache."""
    m = loaded(family, "factory")
    with torch.no_grad():
        return m.module(*m.example_args).numpy()


@pytest.mark.parametrize("family", FAMILIES)
def test_prefill_matches_transformers(family: str) -> None:
    t = traced(family, "factory")
    got = api.interpret(t.graph, t.inputs)
    assert len(got) == 1
    assert_close(got[0], reference(family), what=f"{family} prefill logits")


@pytest.mark.parametrize("family", DECODE)
def test_decode_steps_match_transformers(family: str) -> None:
    """From empty caches, one token at a time: each step's logits are the
    no-cache logits at that position; the caches come back as outputs."""
    t = traced(family, "decode")
    ids = loaded(family, "factory").example_args[0].numpy()
    caches = list(t.inputs[2:])
    for pos in range(ids.shape[1]):
        out = api.interpret(t.graph, [ids[:, pos:pos + 1], np.array(pos), *caches])
        assert_close(out[0], reference(family)[:, pos:pos + 1], what=f"{family} step {pos}")
        caches = out[1:]
        assert [c.shape for c in caches] == [c.shape for c in t.inputs[2:]]


@pytest.mark.parametrize("family", sorted(MOE))
@pytest.mark.parametrize("fn", ["factory", "decode"])
def test_moe_routing_becomes_moe_ffn(family: str, fn: str) -> None:
    g = traced(family, fn).graph
    moe = [n for n in g.nodes if n.op == "moe_ffn"]
    assert len(moe) == 2 and not ROUTING & {n.op for n in g.nodes}
    assert {n.attrs["norm_topk"] for n in moe} == {MOE[family]}
    assert moe[0].attrs["top_k"] == 2 and moe[0].inputs[2].type.shape[0] == 8
    gate = moe[0].inputs[2].node.attrs["name"]
    assert gate.endswith("experts.gate_up_proj.gate"), gate
    params = api.summarize(g)
    assert params["params_active"] < params["params_total"]


def test_batched_mm_experts_become_moe_ffn_too() -> None:
    """transformers' other exportable experts form gathers each pair's weights."""
    m = loaded("mixtral", "factory")
    module = copy.deepcopy(m.module)
    module.model.set_experts_implementation("batched_mm")
    t = api.trace(LoadedModel("mixtral_batched", module, None, "test", m.example_args))
    assert sum(n.op == "moe_ffn" for n in t.graph.nodes) == 2
    assert not ROUTING & {n.op for n in t.graph.nodes}
    assert_close(api.interpret(t.graph, t.inputs)[0], reference("mixtral"))


def test_mistral_window_is_shorter_than_the_prompt() -> None:
    """Without its window the same weights give other logits, so the exact
    match above holds for the sliding-window mask, not a causal one."""
    model = loaded("mistral", "factory").module.model
    ids = loaded("mistral", "factory").example_args[0]
    assert model.config.sliding_window < ids.shape[1]
    model.config.sliding_window = None
    try:
        with torch.no_grad():
            full = model(input_ids=ids, use_cache=False).logits.numpy()
    finally:
        model.config.sliding_window = 4
    assert np.abs(full - reference("mistral")).max() > 1e-3


def test_cli_show_prints_the_ir_summary(capsys) -> None:  # noqa: ANN001
    assert main(["show", f"{FACTORIES / 'llama'}.py:factory"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("@llama: ") and "attention 2" in out and "linear 15" in out


def test_unrecognised_routing_is_refused_in_one_line() -> None:
    """GELU experts are not moe_ffn's SwiGLU: the dispatch stays, and is refused."""
    from transformers import MixtralConfig, MixtralForCausalLM

    torch.manual_seed(0)
    cfg = MixtralConfig(vocab_size=32, hidden_size=16, intermediate_size=8, num_hidden_layers=1,
                        num_attention_heads=2, num_key_value_heads=1, head_dim=8,
                        num_local_experts=4, num_experts_per_tok=2, hidden_act="gelu")
    wrapper = loaded("mixtral", "factory").module.__class__(MixtralForCausalLM(cfg).eval())
    m = LoadedModel("gelu_moe", wrapper, None, "test", (torch.zeros(1, 4, dtype=torch.long),))
    with pytest.raises(UnsupportedOpError) as err:
        api.trace(m)
    msg = str(err.value)
    assert "\n" not in msg and "grouped_mm" in msg
    assert "at model.model.layers.0.mlp.experts" in msg


class _Unmappable(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.special.i0(x)
        return torch.cumprod(y, dim=-1) + torch.special.i0(y)


def test_unsupported_ops_are_listed_at_once_with_their_source_lines() -> None:
    m = LoadedModel("odd", _Unmappable(), None, "test", (torch.ones(2, 3),))
    with pytest.raises(UnsupportedOpError) as err:
        api.trace(m)
    msg = str(err.value)
    lines = _Unmappable.forward.__code__.co_firstlineno
    assert msg.startswith("2 unsupported operator(s): ")
    assert f"aten.cumprod.default x1 (at {__file__}:{lines + 2})" in msg
    assert f"aten.i0.default x2 (at {__file__}:{lines + 1})" in msg


def test_bfloat16_moe_through_torch_grouped_mm() -> None:
    """In bfloat16 transformers dispatches experts with torch._grouped_mm:
    recognised too, within bfloat16's bound (rel. error 1e-2)."""
    m = loaded("mixtral", "factory")
    module = copy.deepcopy(m.module).to(torch.bfloat16)
    t = api.trace(LoadedModel("mixtral_bf16", module, None, "test", m.example_args))
    assert sum(n.op == "moe_ffn" for n in t.graph.nodes) == 2
    with torch.no_grad():
        ref = module(*m.example_args).float().numpy()
    assert_close(api.interpret(t.graph, t.inputs)[0], ref, dtype="bf16")
