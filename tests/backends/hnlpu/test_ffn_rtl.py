"""A SwiGLU block in RTL (hardwired gate/up/down + the vector unit): the
interpreter's values on real inputs, bit-exact and cycle-exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmc.backends.hnlpu.ffn import ffn_blocks
from llmc.ir import interpret
from llmc.rtl.hn_ffn import VEC_CYCLES, ffn_reference, generate_ffn, slice_ffn
from llmc.rtl.hn_sim import build_ffn, random_inputs, run_ffn
from llmc.rtl.lint import lint
from tests.rtl.rtl_helpers import SIMS


def _decode_values(compiled):  # noqa: ANN001, ANN202
    """The decode graph, its SwiGLU blocks and every value of one real decode step."""
    graph = compiled.graphs["decode"]
    prefill = compiled.graphs["prefill"]
    tokens = np.zeros(prefill.inputs[0].type.shape, np.int64)
    tokens[0, :3] = [104, 105, 33]
    caches = interpret(prefill, [tokens])[1:]
    values: dict[str, np.ndarray] = {}
    interpret(graph, [np.array([[7]]), np.array([3]), *caches],
              lambda node, outs: values.__setitem__(node.name, outs[0]))
    return graph, ffn_blocks(graph), values


def test_blocks_found_and_reference_is_the_interpreter(tiny_artifact) -> None:  # noqa: ANN001
    _, blocks, values = _decode_values(tiny_artifact)
    assert [b.spec.name for b in blocks] == ["layers.0.ffn", "layers.1.ffn"]
    for b in blocks:
        h, y = ffn_reference(b.spec, values[b.x.name].reshape(-1))
        assert np.array_equal(h, values[b.h.name].reshape(-1))
        assert np.array_equal(y, values[b.y.name].reshape(-1))
        assert b.spec.cycles() == 9 + 1 + 160 * VEC_CYCLES + 1 + 9 + 2


@pytest.mark.rtl
def test_block_lints_clean(tiny_artifact, tmp_path: Path) -> None:  # noqa: ANN001
    _, blocks, _ = _decode_values(tiny_artifact)
    design = generate_ffn(slice_ffn(blocks[0].spec, 16, 8))
    assert lint(design.write(tmp_path), design.top) == []


@pytest.mark.rtl
@pytest.mark.parametrize("sim", SIMS)
def test_block_bit_and_cycle_exact(tiny_artifact, tmp_path: Path, sim: str) -> None:  # noqa: ANN001
    _, blocks, values = _decode_values(tiny_artifact)
    spec = slice_ffn(blocks[1].spec, 16, 8)
    real = values[blocks[1].x.name].reshape(-1)
    xs = np.concatenate([real[None], random_inputs(spec.gate.k, 2, seed=5)])
    hs, ys = zip(*(ffn_reference(spec, x) for x in xs), strict=True)
    run = run_ffn(build_ffn(spec, sim, tmp_path), spec, xs, hs, ys, tmp_path / "run")
    assert run.passed, (run.problem, run.mismatches, run.cycles)
    assert run.cycles == (spec.cycles(),) * 3 == (9 + 1 + 16 * VEC_CYCLES + 1 + 9 + 2,) * 3
