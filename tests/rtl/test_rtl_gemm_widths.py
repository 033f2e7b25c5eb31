"""Other operand/accumulator widths, including an accumulator that wraps."""

from __future__ import annotations

import numpy as np
import pytest

from llmc.hw.array import ArraySpec
from llmc.rtl import GemmCase, GemmRun
from llmc.rtl.golden import random_operands, reference_gemm
from tests.rtl.rtl_helpers import SIMS, assert_cases, gemm_runner

pytestmark = pytest.mark.rtl

WRAP = ArraySpec(2, 3, in_bits=4, acc_bits=8)   # sums of 9 products of int4 overflow int8
WIDE = ArraySpec(2, 2, in_bits=16, acc_bits=48)
CASES = {"int4->int8": (WRAP, [GemmCase(5, 7, 9, seed=41), GemmCase(2, 3, 16, seed=42)]),
         "int16->int48": (WIDE, [GemmCase(3, 5, 6, seed=43)])}


def test_wrap_case_really_overflows() -> None:
    """The int4->int8 case only tests wrapping if the exact sums leave int8."""
    a, b = random_operands(5, 7, 9, 4, 41)
    exact = a @ b
    assert np.abs(exact).max() > 127
    assert not np.array_equal(reference_gemm(a, b, 8), exact)


@pytest.fixture(scope="module", params=[(w, s) for w in CASES for s in SIMS],
                ids=[f"{w}-{s}" for w in CASES for s in SIMS])
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> GemmRun:
    widths, sim = request.param
    spec, cases = CASES[widths]
    return gemm_runner(tmp_path_factory, spec, cases, sim)(cases)


def test_widths(results: GemmRun) -> None:
    assert_cases(results)
