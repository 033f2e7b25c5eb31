"""Schedules of steps: sums, repetition, vector/DMA/link steps, bad input."""

from __future__ import annotations

import math

import pytest

from llmc.errors import UsageError
from llmc.sim import (
    AllReduceStep,
    ArraySpec,
    DmaStep,
    GemmStep,
    LinkStep,
    VectorStep,
    from_device,
    simulate_gemm,
    simulate_schedule,
    simulate_vector_gemm,
)

# the npu's device with the figures these tests count cycles with
HW = from_device("npu", array=ArraySpec(16, 16, "ws"), dram_gbps=50.0, dram_latency_ns=100.0,
                 clock_ghz=1.0, link_gbps=25.0, link_latency_ns=200.0)


def test_schedule_is_the_sum_of_its_steps():
    steps = [GemmStep(32, 64, 48, name="a"), GemmStep(1, 64, 64, name="b", count=3),
             VectorStep(4096, ops_per_element=2, read_bytes=8192, write_bytes=8192),
             DmaStep(write_bytes=1000)]
    res = simulate_schedule(steps, HW)
    a = simulate_gemm(32, 64, 48, HW)
    b = simulate_gemm(1, 64, 64, HW)
    assert [s["name"] for s in res.steps] == ["a", "b", "vector", "dma"]
    parts = sum(s["cycles"] * s["count"] for s in res.steps)
    assert res.cycles == parts
    assert res.steps[0]["cycles"] == a.cycles and res.steps[1]["cycles"] == b.cycles
    assert res.macs == a.macs + 3 * b.macs
    assert res.actions.dram_bytes == pytest.approx(
        a.actions.dram_bytes + 3 * b.actions.dram_bytes + 16384 + 1000)
    assert res.cycles >= max(res.compute_roofline_cycles, res.memory_roofline_cycles)
    assert res.stall_cycles == res.cycles - res.compute_cycles


def test_vector_step_is_compute_or_memory_bound():
    lanes = HW.vector.lanes
    compute_bound = simulate_schedule([VectorStep(lanes * 1000)], HW)
    assert compute_bound.cycles == 1000 + HW.vector.pipeline_depth
    memory_bound = simulate_schedule([VectorStep(lanes, read_bytes=50_000)], HW)
    assert memory_bound.cycles == math.ceil(50_000 / 50.0 + 100.0)


def test_vector_gemm():
    res = simulate_vector_gemm(4, 300, 8, HW)
    assert res.compute_cycles == 4 * 8 * math.ceil(300 / HW.vector.lanes) + HW.vector.pipeline_depth
    assert res.cycles >= res.compute_cycles
    sched = simulate_schedule([GemmStep(4, 300, 8, unit="vector")], HW)
    assert sched.cycles == res.cycles


def test_link_and_allreduce():
    link = simulate_schedule([LinkStep(10_000, hops=2)], HW)
    assert link.cycles == math.ceil(2 * (200 + 10_000 / 25.0))
    assert link.actions.link_bytes == 20_000
    ar = simulate_schedule([AllReduceStep(8000, chips=4)], HW)
    assert ar.cycles == math.ceil(6 * (200 + 2000 / 25.0))       # 2(n−1) phases of n/4 bytes
    assert ar.actions.link_bytes == pytest.approx(6 * 2000)
    assert ar.energy_breakdown_pj["link"] > 0
    assert simulate_schedule([AllReduceStep(8000, chips=1)], HW).cycles == 0


def test_memoised_results_are_independent():
    one = simulate_gemm(64, 64, 64, HW)
    two = simulate_gemm(64, 64, 64, HW)
    two.actions.macs["int8:int32"] += 1
    assert one.actions.macs != two.actions.macs


@pytest.mark.parametrize("make", [
    lambda: GemmStep(0, 1, 1), lambda: GemmStep(1, 1, 1, count=0),
    lambda: GemmStep(1, 1, 1, unit="gpu"), lambda: VectorStep(0),
    lambda: VectorStep(4, read_bytes=-1), lambda: DmaStep(read_bytes=float("inf")),
    lambda: LinkStep(10, hops=0), lambda: AllReduceStep(10, chips=0),
    lambda: simulate_schedule([], HW), lambda: simulate_schedule(["gemm"], HW),
])
def test_bad_steps(make):
    with pytest.raises(UsageError):
        make()
