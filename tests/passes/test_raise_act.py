"""raise-act: activations written by hand (GPT-2's gelu_new, x * sigmoid(x))
become one op each, the same function (interpreted before and after)."""

from __future__ import annotations

import numpy as np
import pytest

from llmc.ir import interpret, parse_graph, print_graph, verify
from llmc.numerics import assert_close
from llmc.passes.manager import get_pass

# transformers' NewGELUActivation as GPT-2 converts:
# 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
BRACKET = """  %c_6 = const() {dtype=f32, shape=[], value=3.0} : f32[] loc("mlp.act")
  %pow_1 = pow(%x, %c_6) : f32[2,3,8] loc("mlp.act")
  %c_7 = const() {dtype=f32, shape=[], value=CUBIC} : f32[] loc("mlp.act")
  %mul_1 = mul(%pow_1, %c_7) : f32[2,3,8] loc("mlp.act")
  %add_5 = add(%x, %mul_1) : f32[2,3,8] loc("mlp.act")
  %c_8 = const() {dtype=f32, shape=[], value=0.7978845608028654} : f32[] loc("mlp.act")
  %mul_2 = mul(%add_5, %c_8) : f32[2,3,8] loc("mlp.act")
  %tanh = tanh(%mul_2) : f32[2,3,8] loc("mlp.act")
  %c_9 = const() {dtype=f32, shape=[], value=1.0} : f32[] loc("mlp.act")
  %add_6 = add(%tanh, %c_9) : f32[2,3,8] loc("mlp.act")
  %c_5 = const() {dtype=f32, shape=[], value=0.5} : f32[] loc("mlp.act")
"""
HALF_X = """  %mul = mul(%x, %c_5) : f32[2,3,8] loc("mlp.act")
  %mul_3 = mul(%mul, %add_6) : f32[2,3,8] loc("mlp.act")
"""
HALF_BRACKET = """  %mul = mul(%c_5, %add_6) : f32[2,3,8] loc("mlp.act")
  %mul_3 = mul(%x, %mul) : f32[2,3,8] loc("mlp.act")
"""
GELU_AFTER = """graph @act {
  %x = input() : f32[2,3,8]
  %mul_3_1 = gelu(%x) {approximate="tanh"} : f32[2,3,8] loc("mlp.act")
  return %mul_3_1
}
"""


def act(body: str, cubic: float = 0.044715):  # noqa: ANN201
    text = "graph @act {\n  %x = input() : f32[2,3,8]\n" + body + "  return %mul_3\n}\n"
    return parse_graph(text.replace("CUBIC", str(cubic)))


def check_same(before, after) -> None:  # noqa: ANN001
    verify(after)
    x = 3 * np.random.default_rng(1).standard_normal((2, 3, 8)).astype(np.float32)
    assert_close(interpret(after, [x])[0], interpret(before, [x])[0], rel_tol=1e-6)


@pytest.mark.parametrize("half", [HALF_X, HALF_BRACKET], ids=["0.5x", "0.5bracket"])
def test_tanh_gelu_becomes_one_gelu(half: str) -> None:
    before = act(BRACKET + half)
    after = get_pass("raise-act")(before)
    assert print_graph(after) == GELU_AFTER
    check_same(before, after)


def test_a_different_constant_is_not_gelu() -> None:
    before = act(BRACKET + HALF_X, cubic=0.05)
    assert print_graph(get_pass("raise-act")(before)) == print_graph(before)


def test_x_times_sigmoid_x_becomes_silu() -> None:
    before = act("""  %sig = sigmoid(%x) : f32[2,3,8] loc("mlp.act")
  %mul_3 = mul(%sig, %x) : f32[2,3,8] loc("mlp.act")
""")
    after = get_pass("raise-act")(before)
    assert print_graph(after) == GELU_AFTER.replace('gelu(%x) {approximate="tanh"}', "silu(%x)")
    check_same(before, after)
