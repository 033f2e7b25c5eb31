"""Compute cycles of the systolic array: SCALE-Sim 3.0 closed form vs a register-level model."""

from __future__ import annotations

import numpy as np
import pytest

from llmc.errors import UsageError
from llmc.hw.array import (
    ArraySpec,
    Dataflow,
    compute_cycles,
    fold_counts,
    fold_cycles,
    mapping,
    preload_cycles,
)
from llmc.sim.systolic_ref import run_gemm

DATAFLOWS = ["os", "ws", "is"]


@pytest.mark.parametrize(("shape", "expected"), [
    ((64, 64, 64), {"os": 503, "ws": 631, "is": 631}),
    ((100, 50, 300), {"os": 2895, "ws": 3879, "is": 5759}),
])
def test_scalesim_examples_on_32x32(shape, expected):
    # docs/references.md "Systolic arrays": figures confirmed on SCALE-Sim 3.0 runs
    for df, cycles in expected.items():
        assert compute_cycles(*shape, ArraySpec(32, 32, df)) == cycles


def _closed_form(m, n, k, r, c, df):
    """folds·P − 1 written out by hand, independent of systolic.py's helpers."""
    sr, sc, t = {"os": (m, n, k), "ws": (k, n, m), "is": (k, m, n)}[df]
    folds = -(-sr // r) * -(-sc // c)
    p = r + c + t - 2 if df == "os" else 2 * r + c + t - 2
    return folds * p - 1


# shapes on a 4×3 array: fit, exceed each dimension alone, exceed all, degenerate
SHAPES = [
    (4, 3, 4), (3, 2, 1),                 # fit the array
    (9, 3, 4), (4, 7, 4), (4, 3, 13),     # exceed M, N, K alone
    (9, 7, 13), (17, 5, 6),               # exceed several
    (1, 9, 5), (1, 1, 7), (9, 1, 5),      # 1×N, N×1 and GEMV-like
    (1, 1, 1), (12, 6, 8),                # smallest; exact multiples
]


@pytest.mark.parametrize("df", DATAFLOWS)
@pytest.mark.parametrize("shape", SHAPES)
def test_closed_form_matches_register_model(shape, df):
    m, n, k = shape
    spec = ArraySpec(4, 3, df)
    rng = np.random.default_rng(m * 1000 + n * 100 + k)
    a = rng.integers(-8, 8, size=(m, k))
    b = rng.integers(-8, 8, size=(k, n))
    c, folds = run_gemm(a, b, spec)
    np.testing.assert_array_equal(c, a @ b)            # the mapping computes the GEMM
    assert len(folds) == np.prod(fold_counts(m, n, k, spec))
    assert set(folds) == {fold_cycles(m, n, k, spec)}  # partial folds pay full R and C
    assert sum(folds) - 1 == compute_cycles(m, n, k, spec) == _closed_form(m, n, k, 4, 3, df)


@pytest.mark.parametrize("df", DATAFLOWS)
@pytest.mark.parametrize("array", [(1, 1), (1, 8), (8, 1), (16, 16), (128, 128), (32, 64)])
def test_closed_form_on_other_arrays(array, df):
    r, c = array
    for m, n, k in [(1, 4096, 4096), (2048, 11008, 4096), (7, 1, 3), (300, 200, 100)]:
        assert compute_cycles(m, n, k, ArraySpec(r, c, df)) == _closed_form(m, n, k, r, c, df)


def test_mapping_and_preload():
    assert mapping(2, 3, 5, "os") == (2, 3, 5)
    assert mapping(2, 3, 5, "ws") == (5, 3, 2)
    assert mapping(2, 3, 5, "is") == (5, 2, 3)
    assert preload_cycles(ArraySpec(8, 4, "os")) == 0
    assert preload_cycles(ArraySpec(8, 4, "ws")) == 8


def test_dataflow_parsing():
    assert Dataflow.parse("WS") is Dataflow.WS
    assert Dataflow.parse(Dataflow.IS) is Dataflow.IS
    assert ArraySpec(2, 2, "is").dataflow is Dataflow.IS
    assert Dataflow("os") == "os"
    with pytest.raises(UsageError, match="unknown dataflow"):
        ArraySpec(2, 2, "rs")


@pytest.mark.parametrize("bad", [0, -1, 2.5, "8", True, None])
def test_array_sizes_are_validated(bad):
    with pytest.raises(UsageError):
        ArraySpec(bad, 4)
    with pytest.raises(UsageError):
        ArraySpec(4, bad)


@pytest.mark.parametrize("bad", [(0, 4, 4), (4, -2, 4), (4, 4, 0), (1.5, 2, 2)])
def test_gemm_sizes_are_validated(bad):
    with pytest.raises(UsageError, match="positive integer"):
        compute_cycles(*bad, ArraySpec(4, 4))


def test_array_spec_parse():
    spec = ArraySpec.parse("128x64", "ws")
    assert (spec.rows, spec.cols, spec.dataflow) == (128, 64, Dataflow.WS)
    assert ArraySpec.parse("8×8").pes == 64
    for bad in ["128", "0x4", "ax4", "4x4x4"]:
        with pytest.raises(UsageError):
            ArraySpec.parse(bad)
