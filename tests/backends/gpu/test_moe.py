"""MoE expert dispatch on the gpu backend (op `moe_ffn`: routing, grouped
expert GEMMs, combine with the residual add), through Triton's interpreter
against the IR interpreter (float32 within 1e-5 relative, bf16 within 1e-2),
and a tiny Mixtral compiled for a100 generating the reference backend's
greedy tokens."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from llmc.ir import TensorType, dtypes, interpret
from llmc.numerics import assert_close

pytest.importorskip("triton")

from llmc.backends.gpu.check import run_graph  # noqa: E402
from tests.backends.gpu.helpers import graph  # noqa: E402

f32 = dtypes.f32


def rand(rng, *shape, scale: float = 1.0) -> np.ndarray:  # noqa: ANN001
    return dtypes.round_bf16((rng.standard_normal(shape) * scale).astype(np.float32))


def _moe(b, rng, top_k: int, norm_topk: bool, residual: bool):  # noqa: ANN001, ANN202
    B, T, D, E, F = 3, 7, 40, 6, 24            # 21 tokens, odd widths, 6 experts
    x = b.input("x", TensorType((B, T, D), f32))
    ps = {"router": (E, D), "wg": (E, F, D), "wu": (E, F, D), "wd": (E, D, F)}
    w = {k: b.param(k, TensorType(s, f32), rand(rng, *s, scale=0.3)) for k, s in ps.items()}
    flat = b.op("reshape", x, shape=[B * T, D])
    y = b.op("moe_ffn", flat, w["router"], w["wg"], w["wu"], w["wd"], top_k=top_k,
             norm_topk=norm_topk, fusion=0)
    y = b.op("reshape", y, shape=[B, T, D])
    if residual:
        y = b.op("add", x, y, fusion=0)
    return [y], [rand(rng, B, T, D)]


@pytest.mark.parametrize(("act", "top_k", "norm_topk", "residual"), [
    ("f32", 2, True, True),       # Mixtral: gates renormalised over the top 2
    ("f32", 3, False, False),     # Qwen3-MoE style: softmax over all experts, not renormalised
    ("bf16", 2, True, True),
])
def test_moe_matches_the_interpreter(tmp_path, act, top_k, norm_topk, residual):  # noqa: ANN001
    g, xs = graph(lambda b, rng: _moe(b, rng, top_k, norm_topk, residual))
    (ref,) = interpret(g, xs)
    (got,) = run_graph(g, xs, tmp_path, act=act)
    assert_close(got, ref, act)
    steps = json.loads((tmp_path / "program.json").read_text())["phases"]["prefill"]["steps"]
    kernels = [s["op"] for s in steps if s["op"] not in ("view", "host")]
    assert kernels == ["moe"]                     # the residual add is the combine's epilogue
    (moe,) = [s for s in steps if s["op"] == "moe"]
    assert (moe["res"] is not None) == residual


def test_every_token_on_one_expert(tmp_path):  # noqa: ANN001
    """A router that sends every token to the same two experts: their row
    tiles are full, the other experts' are empty."""
    def build(b, rng):  # noqa: ANN001, ANN202
        ys, xs = _moe(b, rng, 2, True, False)
        r = b.graph.params["router"]
        r[:] = 0.0
        r[4, :] = 1.0
        r[1, :] = 0.5
        xs[0] = np.abs(xs[0]) + 0.1
        return ys, xs
    g, xs = graph(build)
    (ref,) = interpret(g, xs)
    (got,) = run_graph(g, xs, tmp_path, act="f32")
    assert_close(got, ref, "f32")


@pytest.fixture(scope="module")
def mixtral(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int], list[int]]:
    pytest.importorskip("transformers")
    from llmc import api
    from llmc.backends.generate import Shapes, generate
    from tests.frontend.hf_dirs import prompt_tokens, save_tiny

    root = tmp_path_factory.mktemp("gpu-moe")
    path, _ = save_tiny("mixtral", root)
    out = root / "out"
    c = api.compile(str(path), "a100", out, seq_len=24)
    pre, dec = c.graphs["prefill"], c.graphs["decode"]
    caches = [np.zeros(x.type.shape, x.type.dtype.np) for x in dec.inputs[2:]]
    prompt = prompt_tokens()[0].tolist()
    ref = generate(lambda xs: interpret(pre, xs), lambda xs: interpret(dec, xs), caches,
                   Shapes.from_json(c.manifest["generate"]), prompt, 8)
    return out, prompt, ref.tokens


def _run(mixtral, n: int) -> None:  # noqa: ANN001
    from llmc import api

    out, prompt, want = mixtral
    program = json.loads((out / "program.json").read_text())
    assert not program["unsupported"]
    assert program["kernel_steps"]["moe"] == 4          # 2 layers x (prefill, decode)
    assert api.run(out, prompt, max_new_tokens=n).tokens == want[:n]


def test_tiny_mixtral_first_tokens_match_the_reference_backend(mixtral):  # noqa: ANN001
    _run(mixtral, 2)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("LLMC_LONG_TESTS"), reason="LLMC_LONG_TESTS=1 runs it")
def test_tiny_mixtral_8_tokens_match_the_reference_backend(mixtral):  # noqa: ANN001
    _run(mixtral, 8)
