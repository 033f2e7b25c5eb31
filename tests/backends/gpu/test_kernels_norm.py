"""LayerNorm, GELU and the float elementwise ops of GPT-2-style models on the
gpu backend, through Triton's interpreter against the IR interpreter
(float32 within 1e-5 relative, bf16 within 1e-2): LayerNorm with and
without its affine parameters, GELU (erf and tanh forms) fused as the
epilogue of the linear before it, GELU on its own, and a broadcast add (token
+ position embeddings)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmc.ir import TensorType, dtypes, interpret
from llmc.numerics import assert_close

pytest.importorskip("triton")

from llmc.backends.gpu.check import run_graph  # noqa: E402
from tests.backends.gpu.helpers import graph  # noqa: E402

f32 = dtypes.f32


def check(build, tmp_path, act: str) -> list[dict]:  # noqa: ANN001
    """Run build(b, rng) -> (outputs, input values) both ways; the program's steps."""
    g, xs = graph(build)
    for r, o in zip(interpret(g, xs), run_graph(g, xs, tmp_path, act=act), strict=True):
        assert_close(o, r, act)
    return json.loads((tmp_path / "program.json").read_text())["phases"]["prefill"]["steps"]


def rand(rng, *shape, scale: float = 1.0) -> np.ndarray:  # noqa: ANN001
    return (rng.standard_normal(shape) * scale + 0.3).astype(np.float32)


@pytest.mark.parametrize("act", ["f32", "bf16"])
@pytest.mark.parametrize("affine", [0, 1, 2])
def test_layer_norm(tmp_path, act, affine):  # noqa: ANN001
    def build(b, rng):  # noqa: ANN001, ANN202
        x = b.input("x", TensorType((3, 7, 40), f32))
        ps = [b.param(n, TensorType((40,), f32), rand(rng, 40)) for n in ("w", "b")[:affine]]
        return [b.op("layer_norm", x, *ps, eps=1e-5, fusion=0)], [rand(rng, 3, 7, 40, scale=2)]
    (s,) = check(build, tmp_path, act)
    assert s["op"] == "layer_norm"


@pytest.mark.parametrize("act", ["f32", "bf16"])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_is_the_epilogue_of_the_linear_before_it(tmp_path, act, approximate):  # noqa: ANN001
    def build(b, rng):  # noqa: ANN001, ANN202
        x = b.input("x", TensorType((2, 5, 24), f32))
        w = b.param("w", TensorType((37, 24), f32), rand(rng, 37, 24, scale=0.4))
        bias = b.param("bias", TensorType((37,), f32), rand(rng, 37))
        y = b.op("gelu", b.op("linear", x, w, bias, fusion=0), approximate=approximate,
                 fusion=0)
        return [y], [rand(rng, 2, 5, 24)]
    (s,) = check(build, tmp_path, act)
    name = "gelu_tanh" if approximate == "tanh" else "gelu"
    assert s["kernel"] == f"gemm_dense_bias_{name}"
    assert f"def gemm_dense_bias_{name}(" in (tmp_path / "kernels/gemm.py").read_text()


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_on_its_own(tmp_path, approximate):  # noqa: ANN001
    def build(b, rng):  # noqa: ANN001, ANN202
        x = b.input("x", TensorType((3, 5, 19), f32))
        return [b.op("gelu", x, approximate=approximate, fusion=0)], [rand(rng, 3, 5, 19, scale=3)]
    (s,) = check(build, tmp_path, "f32")
    assert (s["op"], s["fn"]) == ("pointwise", "gelu_tanh" if approximate == "tanh" else "gelu")


@pytest.mark.parametrize("act", ["f32", "bf16"])
@pytest.mark.parametrize(("op", "other"), [("add", (7, 24)), ("sub", (2, 7, 24)),
                                           ("mul", (1, 24)), ("sub", (2, 1, 24))])
def test_broadcast_binary_op(tmp_path, act, op, other):  # noqa: ANN001
    """e.g. GPT-2's token embeddings (B, T, C) + position embeddings (T, C)."""
    def build(b, rng):  # noqa: ANN001, ANN202
        x = b.input("x", TensorType((2, 7, 24), f32))
        y = b.input("y", TensorType(other, f32))
        return [b.op(op, x, y, fusion=0)], [rand(rng, 2, 7, 24), rand(rng, *other)]
    (s,) = check(build, tmp_path, act)
    assert (s["op"], s["fn"]) == ("pointwise", op)
