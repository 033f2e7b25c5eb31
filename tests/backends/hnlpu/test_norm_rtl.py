"""Integer RMSNorm in RTL (the vector unit's normalisation): bit-exact with the
interpreter on a real decode step and seeded inputs, cycle-exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmc.errors import UsageError
from llmc.ir import interpret
from llmc.rtl.hn_norm import NormSpec, generate_norm, run_norm
from llmc.rtl.lint import lint
from tests.rtl.rtl_helpers import SIMS


def _norms(compiled):  # noqa: ANN001, ANN202
    """(spec, real x, the interpreter's y) of the first two int_rms_norm of a decode step:
    layer 0's attention norm (i16 embeddings in) and FFN norm (i32 residual in)."""
    graph, prefill = compiled.graphs["decode"], compiled.graphs["prefill"]
    nodes = [n for n in graph.nodes if n.op == "int_rms_norm"][:2]
    tokens = np.zeros(prefill.inputs[0].type.shape, np.int64)
    tokens[0, :3] = [104, 105, 33]
    caches = interpret(prefill, [tokens])[1:]
    names = {n.name for n in nodes} | {n.inputs[0].node.name for n in nodes}
    vals: dict[str, np.ndarray] = {}
    interpret(graph, [np.array([[7]]), np.array([3]), *caches],
              lambda n, o: vals.__setitem__(n.name, o[0]) if n.name in names else None)
    out = []
    for n in nodes:
        a = n.attrs
        gains = tuple(int(v) for v in graph.params[n.inputs[1].node.attrs["name"]])
        spec = NormSpec(n.loc, int(n.inputs[0].type.dtype.bits), gains, int(a["eps"]),
                        int(a["rbits"]), int(a["shift"]))
        out.append((spec, vals[n.inputs[0].node.name].reshape(-1), vals[n.name].reshape(-1)))
    return out


def test_reference_is_the_interpreter(tiny_artifact) -> None:  # noqa: ANN001
    for spec, x, y in _norms(tiny_artifact):
        assert np.array_equal(spec.reference(x), y)
        assert spec.cycles() == 64 + 1 + 64 + 64 * 9 + 1
    with pytest.raises(UsageError, match="power of two"):
        NormSpec("n", 16, (1,) * 48, 1, 7, 14)


@pytest.mark.rtl
def test_norm_lints_clean(tiny_artifact, tmp_path: Path) -> None:  # noqa: ANN001
    spec, _, _ = _norms(tiny_artifact)[1]
    design = generate_norm(spec)
    assert lint(design.write(tmp_path), design.top) == []


@pytest.mark.rtl
@pytest.mark.parametrize("sim", SIMS)
def test_norm_bit_and_cycle_exact(tiny_artifact, tmp_path: Path, sim: str) -> None:  # noqa: ANN001
    for i, (spec, x, y) in enumerate(_norms(tiny_artifact)):
        rng = np.random.default_rng(i)
        # seeded inputs in the range where the interpreter's int64 sums cannot wrap
        other = rng.integers(-(2 ** min(spec.x_bits - 2, 20)), 2 ** min(spec.x_bits - 2, 20),
                             x.shape)
        xs = np.stack([x, other])
        ys = np.stack([y, spec.reference(other)])
        ok, rows, log = run_norm(spec, sim, tmp_path / str(i), xs, ys)
        assert ok, (rows, log)
        assert [r["cycles"] for r in rows] == [spec.cycles()] * 2
