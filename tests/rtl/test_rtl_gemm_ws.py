"""Weight-stationary cores under both simulators: every write of C (each fold
of K's partial sum, then the final value) bit-exact with numpy, cycles equal
to compute_cycles' weight-stationary formula, the load / start-to-done /
read-back phases as the cycle contract says; and the scoreboard catches a
wrong value. Verilator builds are slow, so its runs are also marked slow."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pytest

from llmc.hw.array import ArraySpec, compute_cycles, fold_counts
from llmc.rtl import GemmCase, GemmRun
from llmc.rtl.golden import random_operands
from tests.rtl.rtl_helpers import SIMS, assert_cases, gemm_runner

pytestmark = pytest.mark.rtl

ARRAYS = {
    "3x4": (ArraySpec(3, 4, "ws"), [
        GemmCase(5, 4, 3, seed=51),     # exactly one fold (K = R, N = C)
        GemmCase(10, 9, 7, seed=52),    # 3 K folds x 3 N folds, partial in both
        GemmCase(2, 3, 1, seed=53),     # K = 1 < R, N < C
        GemmCase(1, 1, 1, seed=54),     # a single MAC
        GemmCase(4, 5, 13, seed=55),    # 5 folds of K: C accumulates 5 times
    ]),
    "1x5": (ArraySpec(1, 5, "ws"), [GemmCase(3, 7, 4, seed=56)]),   # R = 1: a fold per k
    "4x1-int4": (ArraySpec(4, 1, "ws", in_bits=4, acc_bits=8),      # sums leave int8: wrap
                 [GemmCase(6, 3, 9, seed=58)]),
}
LONG = bool(os.environ.get("LLMC_LONG_TESTS"))


def _marks(array: str, sim: str) -> list[pytest.MarkDecorator]:
    """Verilator builds take 10-25 s each: the 3x4 one runs by default (marked
    slow), the others with LLMC_LONG_TESTS=1."""
    if sim != "verilator":
        return []
    long = pytest.mark.skipif(array != "3x4" and not LONG,
                              reason="a Verilator build per array; LLMC_LONG_TESTS=1 runs it")
    return [pytest.mark.slow, long]


PARAMS = [pytest.param((a, s), id=f"{a}-{s}", marks=_marks(a, s)) for a in ARRAYS for s in SIMS]


@pytest.fixture(scope="module", params=PARAMS)
def setup(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[str, Callable[..., GemmRun]]:
    array, sim = request.param
    spec, cases = ARRAYS[array]
    return array, gemm_runner(tmp_path_factory, spec, cases, sim)


def test_ws_cases(setup: tuple[str, Callable[..., GemmRun]]) -> None:
    array, run = setup
    spec, cases = ARRAYS[array]
    results = run(cases)
    assert len(results.cases) == len(cases)
    assert_cases(results)
    for r in results.cases:
        c = r.case
        assert r.expected_cycles == compute_cycles(c.m, c.n, c.k, spec)
        assert r.sim_cycles == r.expected_cycles + 3      # start -> done (gemm_core_ws)
        assert r.load_cycles == max(c.m * c.k, c.k * c.n)
        assert r.read_cycles == c.m * c.n


def test_wrap_case_really_overflows() -> None:
    """The int4->int8 case tests wrapping only if its exact sums leave int8."""
    a, b = random_operands(6, 3, 9, 4, 58)
    assert np.abs(a @ b).max() > 127


def test_ws_formula_is_scalesim() -> None:
    """The weight-stationary count the RTL meets: folds = ceil(K/R)*ceil(N/C),
    P = 2R + C + M - 2, folds*P - 1 (llmc.hw.array)."""
    spec = ArraySpec(3, 4, "ws")
    assert fold_counts(10, 9, 7, spec) == (3, 3)
    assert compute_cycles(10, 9, 7, spec) == 9 * (6 + 4 + 10 - 2) - 1


def test_ws_scoreboard_catches_a_wrong_value(setup: tuple[str, Callable[..., GemmRun]]) -> None:
    array, run = setup
    if array != "3x4":
        pytest.skip("one array is enough")
    got = run([GemmCase(6, 7, 5, seed=59, inject=(2, 5))])
    assert not got.passed
    r = got.cases[0]
    assert r.output_errors == 1 and r.rtl_cycles == r.expected_cycles
    msg = got.first_error
    assert msg is not None and "C[2][5]" in msg and "!= numpy" in msg
