"""Chrome/Perfetto traces and the utilisation summary."""

from __future__ import annotations

import json

from llmc.sim import (
    ArraySpec,
    GemmStep,
    VectorStep,
    from_device,
    simulate_gemm,
    simulate_schedule,
)
from llmc.sim.trace import utilization_summary

HW = from_device("npu", array=ArraySpec(8, 8, "os"), dram_gbps=20.0, dram_latency_ns=50.0)


def test_gemm_trace(tmp_path):
    res = simulate_gemm(24, 16, 32, HW, trace=True)
    folds = [e for e in res.trace_events if e["cat"] == "array"]
    assert len(folds) == res.details["folds"] == 6
    dma = [e for e in res.trace_events if e["cat"] == "dram"]
    assert dma and all(e["dur"] >= 0 for e in dma)
    end_us = max(e["ts"] + e["dur"] for e in res.trace_events)
    assert end_us <= HW.cycles_to_us(res.cycles) + 1e-9
    # folds do not overlap on the array track
    spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in folds)
    assert all(a[1] <= b[0] + 1e-9 for a, b in zip(spans, spans[1:], strict=False))
    path = res.write_trace(tmp_path / "t.json")
    doc = json.loads(path.read_text())
    assert {e["ph"] for e in doc["traceEvents"]} == {"M", "X"}
    util = doc["otherData"]["utilization"]
    assert 0 < util["array"] <= 1 and 0 < util["dram"] <= 1


def test_trace_does_not_change_the_result():
    plain = simulate_gemm(24, 16, 32, HW)
    traced = simulate_gemm(24, 16, 32, HW, trace=True)
    assert plain.cycles == traced.cycles and plain.trace_events is None


def test_schedule_trace_levels():
    steps = [GemmStep(16, 16, 16, name="g", count=2), VectorStep(256, name="softmax")]
    by_step = simulate_schedule(steps, HW, trace=True)
    assert [e["name"] for e in by_step.trace_events] == ["g ×2", "softmax"]
    assert by_step.trace_events[1]["ts"] == HW.cycles_to_us(by_step.steps[0]["cycles"] * 2)
    by_fold = simulate_schedule(steps, HW, trace="folds")
    assert sum(e["cat"] == "array" for e in by_fold.trace_events) == 2 * 4
    assert simulate_schedule(steps, HW).trace_events is None
    assert set(utilization_summary(by_step)) == {"array", "vector"}
