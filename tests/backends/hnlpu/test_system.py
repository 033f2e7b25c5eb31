"""The HNLPU system model: counted structures, the paper's operating point,
predictions for other models and contexts, NRE from mask counts."""

from __future__ import annotations

import pytest

from llmc import api
from llmc.backends.hnlpu.system import (
    calibrate,
    calibration_workload,
    count_workload,
    paper_point,
    system_report,
)

KEYS = ("decode.tokens_per_s", "decode.energy_j_per_token", "area_mm2", "nre_usd")


@pytest.fixture(scope="module")
def oss_graph():  # noqa: ANN201
    return api.trace("gpt-oss-120b", phase="decode", seq_len=2048).graph


def test_recorded_calibration_counts_match_a_recount(oss_graph) -> None:  # noqa: ANN001
    work = count_workload(oss_graph)
    assert work == calibration_workload()
    # 36 layers x (attention 2880 x 9216 + 128 experts x 3 x 2880^2 + router) + LM head
    assert work.hardwired_weights == 36 * (2880 * 9216 + 128 * 3 * 2880**2 + 2880 * 128) \
        + 201088 * 2880


def test_gpt_oss_120b_within_20_percent_of_the_paper(oss_graph) -> None:  # noqa: ANN001
    rep = system_report(count_workload(oss_graph), calibrate())
    paper = paper_point()
    for k in KEYS:
        assert abs(rep[k] / paper[k] - 1) <= 0.2, (k, rep[k], paper[k])
    assert rep["chips"] == 16 and paper["nre_usd"] <= rep["nre_usd"] <= paper["nre_usd_high"]


@pytest.mark.slow
def test_predictions_follow_the_counted_structures(oss_graph) -> None:  # noqa: ANN001
    cal = calibrate()
    base = system_report(count_workload(oss_graph), cal)
    long = system_report(count_workload(api.trace("gpt-oss-120b", phase="decode",
                                                  seq_len=8192).graph), cal)
    # attention-bound: 4x the keys, 1/4 the tokens/s; the chips do not change
    assert long["chips"] == 16
    assert long["decode.tokens_per_s"] == pytest.approx(base["decode.tokens_per_s"] / 4)
    assert long["decode.energy_j_per_token"] > base["decode.energy_j_per_token"]
    small = system_report(count_workload(api.trace("llama-2-7b", phase="decode",
                                                   seq_len=2048).graph), cal)
    assert small["chips"] == 1 and small["area_mm2"] == pytest.approx(base["area_mm2"] / 16)
    assert small["nre_usd"] < base["nre_usd"]  # fewer metal-embedding mask sets
