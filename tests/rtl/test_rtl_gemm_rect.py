"""Non-square 3×5 core under both simulators."""

from __future__ import annotations

import pytest

from llmc.hw.array import ArraySpec
from llmc.rtl import GemmCase, GemmRun
from tests.rtl.rtl_helpers import SIMS, assert_cases, gemm_runner

pytestmark = pytest.mark.rtl

SPEC = ArraySpec(3, 5)
CASES = [
    GemmCase(7, 11, 6, seed=11),   # 3x3 folds, partial in both dims
    GemmCase(3, 5, 2, seed=12),    # exactly the array
    GemmCase(2, 2, 9, seed=13),    # smaller than the array, long K
    GemmCase(9, 5, 1, seed=14),    # K = 1
    GemmCase(1, 16, 4, seed=15),   # one row, 4 column folds
]


@pytest.fixture(scope="module", params=SIMS)
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> GemmRun:
    return gemm_runner(tmp_path_factory, SPEC, CASES, request.param)(CASES)


def test_rect_array(results: GemmRun) -> None:
    assert len(results.cases) == len(CASES)
    assert_cases(results)
