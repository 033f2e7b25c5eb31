"""Degenerate arrays under both simulators: a 1×6 row and a 5×1 column."""

from __future__ import annotations

import pytest

from llmc.hw.array import ArraySpec
from llmc.rtl import GemmCase, GemmRun
from tests.rtl.rtl_helpers import SIMS, assert_cases, gemm_runner

pytestmark = pytest.mark.rtl

ARRAYS = {
    "1x6": (ArraySpec(1, 6), [
        GemmCase(5, 13, 4, seed=21),   # 5x3 folds
        GemmCase(1, 1, 3, seed=22),    # smaller than the array
        GemmCase(1, 6, 2, seed=23),    # exactly the array
        GemmCase(3, 7, 1, seed=24),    # K = 1
    ]),
    "5x1": (ArraySpec(5, 1), [
        GemmCase(11, 2, 5, seed=31),   # 3x2 folds
        GemmCase(5, 1, 1, seed=32),    # exactly the array, K = 1
        GemmCase(2, 3, 4, seed=33),    # fewer rows than the array
    ]),
}


@pytest.fixture(scope="module", params=[(a, s) for a in ARRAYS for s in SIMS],
                ids=[f"{a}-{s}" for a in ARRAYS for s in SIMS])
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> GemmRun:
    array, sim = request.param
    spec, cases = ARRAYS[array]
    return gemm_runner(tmp_path_factory, spec, cases, sim)(cases)


def test_skinny_array(results: GemmRun) -> None:
    assert_cases(results)
