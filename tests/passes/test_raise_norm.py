"""raise-norm: RMSNorm as transformers writes it becomes one rms_norm, the
same function (interpreted before and after, float32, <= 1e-6)."""

from __future__ import annotations

import numpy as np
import pytest

from llmc.ir import interpret, parse_graph, print_graph, verify
from llmc.numerics import assert_close
from llmc.passes.manager import get_pass, run_pipeline

HEAD = """graph @norm {
  %x = input() : f32[2,3,8]
  %w = param() {name="norm.weight"} : f32[8]
"""
# LlamaRMSNorm in float32: x * rsqrt(mean(x^2, -1) + eps), then w * that
SQUARE = """  %c = const() {dtype=f32, shape=[], value=2.0} : f32[] loc("norm")
  %pow_1 = pow(%x, %c) : f32[2,3,8] loc("norm")
"""
NORM = """  %mean = mean(%pow_1) {dims=[2], keepdim=true} : f32[2,3,1] loc("norm")
  %eps = const() {dtype=f32, shape=[], value=1e-06} : f32[] loc("norm")
  %add = add(%mean, %eps) : f32[2,3,1] loc("norm")
  %rsqrt = rsqrt(%add) : f32[2,3,1] loc("norm")
  %mul = mul(%x, %rsqrt) : f32[2,3,8] loc("norm")
"""
LLAMA = HEAD + SQUARE + NORM + """  %mul_1 = mul(%w, %mul) : f32[2,3,8] loc("norm")
  return %mul_1
}
"""
LLAMA_AFTER = HEAD + """  %mul_1_1 = rms_norm(%x, %w) {eps=1e-06} : f32[2,3,8] loc("norm")
  return %mul_1_1
}
"""
# GemmaRMSNorm: the normalised x times (1 + w)
GEMMA = HEAD + SQUARE + NORM + """  %one = const() {dtype=f32, shape=[], value=1.0} : f32[] loc("norm")
  %gain = add(%w, %one) : f32[8] loc("norm")
  %mul_1 = mul(%mul, %gain) : f32[2,3,8] loc("norm")
  return %mul_1
}
"""
GEMMA_AFTER = HEAD.replace('  %w = param() {name="norm.weight"} : f32[8]\n', "") + \
    """  %norm.weight.folded = param() {name="norm.weight.folded"} : f32[8]
  %mul_1_1 = rms_norm(%x, %norm.weight.folded) {eps=1e-06} : f32[2,3,8] loc("norm")
  return %mul_1_1
}
"""


def graph(text: str):  # noqa: ANN201
    w = np.random.default_rng(0).standard_normal(8).astype(np.float32)
    return parse_graph(text, {"norm.weight": w})


def check_same(before, after, rel: float = 1e-6) -> None:  # noqa: ANN001
    verify(after)
    x = np.random.default_rng(1).standard_normal((2, 3, 8)).astype(np.float32)
    assert_close(interpret(after, [x])[0], interpret(before, [x])[0], rel_tol=rel)


def test_llama_rms_norm_becomes_one_op() -> None:
    before = graph(LLAMA)
    after = get_pass("raise-norm")(before)
    assert print_graph(after) == LLAMA_AFTER
    check_same(before, after)


def test_gemma_one_plus_w_gain_is_folded_into_the_weight() -> None:
    """raise-norm takes (1 + w) as the gain; fold-constants stores it as one
    param, a weight (not a buffer) named after the weight it came from."""
    before = graph(GEMMA)
    after = run_pipeline(before, ["raise-norm", "fold-constants"])
    assert print_graph(after) == GEMMA_AFTER
    assert np.array_equal(after.params["norm.weight.folded"], before.params["norm.weight"] + 1)
    check_same(before, after)


@pytest.mark.parametrize("square, root", [
    ("  %pow_1 = mul(%x, %x) : f32[2,3,8] loc(\"norm\")\n", "rsqrt"),
    (SQUARE, "sqrt"),
])
def test_other_spellings(square: str, root: str) -> None:
    """x * x for the square; x / sqrt(...) for the inverse root."""
    text = HEAD + square + NORM + """  %mul_1 = mul(%w, %mul) : f32[2,3,8] loc("norm")
  return %mul_1
}
"""
    if root == "sqrt":
        text = text.replace("rsqrt(%add)", "sqrt(%add)").replace("mul(%x, %rsqrt)",
                                                                  "div(%x, %rsqrt)")
    before = graph(text)
    after = get_pass("raise-norm")(before)
    assert [n.op for n in after.nodes] == ["input", "param", "rms_norm"]
    check_same(before, after)


def test_bfloat16_casts_around_the_float32_norm() -> None:
    """LlamaRMSNorm on bf16: normalise in float32, cast back, then the gain."""
    before = parse_graph("""graph @norm {
  %x = input() : bf16[2,3,8]
  %w = param() {name="norm.weight"} : bf16[8]
  %x32 = cast(%x) {dtype=f32} : f32[2,3,8] loc("norm")
  %c = const() {dtype=f32, shape=[], value=2.0} : f32[] loc("norm")
  %pow_1 = pow(%x32, %c) : f32[2,3,8] loc("norm")
  %mean = mean(%pow_1) {dims=[2], keepdim=true} : f32[2,3,1] loc("norm")
  %eps = const() {dtype=f32, shape=[], value=1e-06} : f32[] loc("norm")
  %add = add(%mean, %eps) : f32[2,3,1] loc("norm")
  %rsqrt = rsqrt(%add) : f32[2,3,1] loc("norm")
  %mul = mul(%x32, %rsqrt) : f32[2,3,8] loc("norm")
  %y = cast(%mul) {dtype=bf16} : bf16[2,3,8] loc("norm")
  %mul_1 = mul(%w, %y) : bf16[2,3,8] loc("norm")
  return %mul_1
}
""", {"norm.weight": np.random.default_rng(0).standard_normal(8).astype(np.float32)})
    after = get_pass("raise-norm")(before)
    assert [(n.op, str(n.type)) for n in after.nodes[2:]] == [
        ("cast", "f32[2,3,8]"), ("rms_norm", "f32[2,3,8]"), ("cast", "bf16[2,3,8]")]
    check_same(before, after, rel=1e-2)   # one bf16 rounding moves (after the gain)


def test_a_mean_over_another_dim_is_not_a_norm() -> None:
    before = graph(LLAMA.replace("dims=[2], keepdim=true} : f32[2,3,1]",
                                 "dims=[1], keepdim=true} : f32[2,1,8]")
                   .replace("f32[2,3,1]", "f32[2,1,8]"))
    assert print_graph(get_pass("raise-norm")(before)) == print_graph(before)
