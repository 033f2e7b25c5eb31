"""Hardwired linear layers in RTL: bit-exact with the interpreter's int_linear,
cycle-exact with the cycle model, under Icarus and Verilator, lint-clean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmc.backends.hnlpu.layers import layer_of, linear_nodes
from llmc.errors import UsageError
from llmc.ir.ops import get_op
from llmc.rtl.hn import STYLES, HnLayer, csd, generate, generate_step
from llmc.rtl.hn_sim import build_hn, random_inputs, run_hn
from llmc.rtl.lint import lint
from tests.rtl.rtl_helpers import FIRST, SIMS


def test_csd_digits_sum_to_the_constant_and_are_never_adjacent() -> None:
    for v in range(0, 2100):
        digits = csd(v)
        assert sum(s << sh for s, sh in digits) == v
        shifts = [sh for _, sh in digits]
        assert all(b - a >= 2 for a, b in zip(shifts, shifts[1:], strict=False))
    assert csd(7) == [(-1, 0), (1, 3)]  # 8 - 1: two adds, not three


def test_weights_not_4_bit_are_refused() -> None:
    with pytest.raises(UsageError, match="not 4-bit codes.*--quant w4a8"):
        HnLayer("l", np.full((2, 32), 9), np.ones((2, 1), np.int64), 32)


def _k_proj(compiled) -> tuple[HnLayer, object, object]:  # noqa: ANN001
    graph = compiled.graphs["decode"]
    node = next(n for n in linear_nodes(graph) if n.loc == "layers.0.attn.k_proj")
    return layer_of(graph, node), node, graph


def _interpreter(node, graph, xs: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """The IR interpreter's int_linear (the registry's semantics) on xs (V, K)."""
    args = [xs.astype(np.int8)] + [np.asarray(graph.params[v.node.attrs["name"]])
                                   for v in node.inputs[1:]]
    return np.asarray(get_op("int_linear").run(args, node.attrs), np.int64)


def test_layer_from_the_graph_computes_what_the_interpreter_does(tiny_artifact) -> None:  # noqa: ANN001
    layer, node, graph = _k_proj(tiny_artifact)
    xs = random_inputs(layer.k, 5, seed=3)
    assert np.array_equal(np.stack([layer.reference(x) for x in xs]),
                          _interpreter(node, graph, xs))
    assert layer.cycles("me") == 9 and layer.cycles("csd") == 1


@pytest.mark.rtl
@pytest.mark.parametrize("style", STYLES)
def test_generated_layers_lint_clean(tiny_artifact, tmp_path: Path, style: str) -> None:  # noqa: ANN001
    layer, _, _ = _k_proj(tiny_artifact)
    design = generate_step([layer, layer_of(*_first_two(tiny_artifact))], style)
    assert lint(design.write(tmp_path), design.top) == []


def _first_two(compiled):  # noqa: ANN001, ANN202
    graph = compiled.graphs["decode"]
    return graph, linear_nodes(graph)[0]


ROWS = 8  # the first neurons of the layer: the Verilator build stays small


@pytest.mark.rtl
@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("style", STYLES)
def test_layer_bit_and_cycle_exact(tiny_artifact, tmp_path: Path, sim: str, style: str) -> None:  # noqa: ANN001
    full, node, graph = _k_proj(tiny_artifact)
    layer = HnLayer(full.name, full.codes[:ROWS], full.scales[:ROWS], full.group)
    xs = random_inputs(layer.k, 4, seed=7)
    want = _interpreter(node, graph, xs)[:, :ROWS]
    build = build_hn([layer], style, sim, tmp_path)
    run = run_hn(build, [layer], style, [xs], [want], tmp_path / "run")
    assert run.passed, (run.problem, run.mismatches, run.cycles)
    assert run.cycles == (layer.cycles(style),) * 4
    assert [list(y[0]) for y in run.outputs] == want.tolist()


@pytest.mark.rtl
@pytest.mark.parametrize("sim", SIMS)
def test_compact_neurons_compute_what_the_wired_ones_do(tiny_artifact, tmp_path: Path,
                                                        sim: str) -> None:  # noqa: ANN001
    """The whole k_proj (64 x 256) with one llmc_hn_neuron per neuron: lint
    clean, bit-exact with the interpreter, the wired form's cycles."""
    layer, node, graph = _k_proj(tiny_artifact)
    design = generate(layer, "me", compact=True)
    text = design.generated[0][1]
    assert "llmc_hn_neuron" in text and "llmc_popcount" not in text
    assert design.top == layer.top("me") + "_c" and design.blocks == ("llmc_hn_neuron",)
    if sim == SIMS[0]:
        assert lint(design.write(tmp_path / "lint"), design.top) == []
    xs = random_inputs(layer.k, 3, seed=11)
    want = _interpreter(node, graph, xs)
    build = build_hn([layer], "me", sim, tmp_path, compact=True)
    run = run_hn(build, [layer], "me", [xs], [want], tmp_path / "run")
    assert run.passed and run.cycles == (layer.cycles("me"),) * 3, (run.problem, run.cycles)
    want[2, 5] -= 1
    bad = run_hn(build, [layer], "me", [xs], [want], tmp_path / "bad")
    assert not bad.passed and bad.mismatches == (0, 0, 1)


def test_compact_is_the_metal_embedding_form_only(tiny_artifact) -> None:  # noqa: ANN001
    layer, _, _ = _k_proj(tiny_artifact)
    with pytest.raises(UsageError, match="compact form is the Metal-Embedding one"):
        generate(layer, "csd", compact=True)


@pytest.mark.rtl
def test_scoreboard_fails_a_wrong_answer(tiny_artifact, tmp_path: Path) -> None:  # noqa: ANN001
    layer, node, graph = _k_proj(tiny_artifact)
    xs = random_inputs(layer.k, 2, seed=1)
    want = _interpreter(node, graph, xs)
    want[1, 3] += 1
    build = build_hn([layer], "me", FIRST, tmp_path)
    run = run_hn(build, [layer], "me", [xs], [want], tmp_path / "run")
    assert not run.passed and run.mismatches == (0, 1)


def test_generated_text_is_deterministic(tiny_artifact) -> None:  # noqa: ANN001
    layer, _, _ = _k_proj(tiny_artifact)
    for style in STYLES:
        assert generate(layer, style).generated == generate(layer, style).generated
    text = generate(layer, "me").generated[0][1]
    assert "`timescale 1ns / 1ps" in text and "llmc_popcount" in text
