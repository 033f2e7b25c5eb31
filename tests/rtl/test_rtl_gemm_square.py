"""4×4 output-stationary core under both simulators: outputs bit-exact with
numpy, cycles equal to compute_cycles; and the scoreboard catches a wrong value."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from llmc.hw.array import ArraySpec, compute_cycles
from llmc.rtl import GemmCase, GemmRun
from tests.rtl.rtl_helpers import SIMS, assert_cases, gemm_runner

pytestmark = pytest.mark.rtl

SPEC = ArraySpec(4, 4)
CASES = [
    GemmCase(4, 4, 4, seed=1),     # exactly one fold
    GemmCase(10, 9, 7, seed=2),    # 3x3 folds, partial tiles in both dims
    GemmCase(8, 8, 12, seed=3),    # 2x2 full folds
    GemmCase(16, 3, 5, seed=4),    # tall: 4 row folds, one partial column fold
    GemmCase(2, 3, 1, seed=5),     # smaller than the array, K = 1
    GemmCase(1, 1, 1, seed=6),     # a single MAC
]


@pytest.fixture(scope="module", params=SIMS)
def runner(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., GemmRun]:
    return gemm_runner(tmp_path_factory, SPEC, CASES, request.param, waves=True)


@pytest.fixture(scope="module")
def results(runner: Callable[..., GemmRun]) -> GemmRun:
    return runner(CASES)


@pytest.mark.parametrize("idx", range(len(CASES)), ids=[c.shape for c in CASES])
def test_case(results: GemmRun, idx: int) -> None:
    r = results.cases[idx]
    assert r.passed, r.errors
    assert r.output_errors == 0
    assert r.rtl_cycles == r.monitor_cycles == compute_cycles(r.case.m, r.case.n, r.case.k, SPEC)
    # start -> done adds a fixed R + 3 edges around the compute cycles (gemm_core docs)
    assert r.sim_cycles == r.expected_cycles + SPEC.rows + 3


def test_all_cases_ran(results: GemmRun) -> None:
    assert len(results.cases) == len(CASES)
    assert_cases(results)


def test_scoreboard_catches_a_wrong_value(runner: Callable[..., GemmRun]) -> None:
    """Negative test: expect a wrong C[2][5]; the run must fail and say where."""
    run = runner([GemmCase(6, 7, 3, seed=9, inject=(2, 5))], waves=True)
    assert not run.passed
    r = run.cases[0]
    assert r.output_errors == 1 and r.rtl_cycles == r.expected_cycles
    msg = run.first_error
    assert msg is not None and "C[2][5]" in msg and "!= numpy" in msg
    assert run.sim.waves is not None and run.sim.waves.is_file()
    assert str(run.sim.waves) in msg


def test_backdoor_run(runner: Callable[..., GemmRun]) -> None:
    """The benchmarks' mode: operands and results through the hierarchy, no
    monitor; outputs still checked (a wrong expectation still fails)."""
    good = runner([GemmCase(10, 9, 7, seed=8)], monitor=False, backdoor=True)
    assert good.passed, good.first_error
    r = good.cases[0]
    assert r.load_cycles is None and r.read_cycles is None and r.monitor_cycles is None
    assert r.rtl_cycles == r.expected_cycles
    bad = runner([GemmCase(5, 6, 4, seed=8, inject=(4, 5))], monitor=False, backdoor=True)
    assert not bad.passed and "C[4][5]" in (bad.first_error or "")
