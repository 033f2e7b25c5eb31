"""simulate_gemm: rooflines, stalls, traffic, fold overlap, bad input."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmc.errors import UsageError
from llmc.sim import (
    ArraySpec,
    DramSpec,
    SimHardware,
    SramSpec,
    compute_cycles,
    fold_overlap_cycles,
    from_device,
    simulate_gemm,
)
from llmc.sim.gemm import _fold_times
from llmc.sim.tiling import min_sram_bytes, plan_folds


def hw_of(r=16, c=16, df="os", gbps=math.inf, lat=0.0, kb=2048.0, banks=None,
          double=True, **kw) -> SimHardware:
    """The npu's device with the figures these tests are about overridden
    (64-bit dual-ported banks, so that one bank starves a 16x16 array)."""
    return from_device("npu", array=ArraySpec(r, c, df), dram_gbps=gbps, dram_latency_ns=lat,
                       sram_kb=kb, sram_banks=banks, sram_bank_bits=64, sram_ports=2,
                       double_buffered=double, clock_ghz=1.0, **kw)


@pytest.mark.parametrize("df", ["os", "ws", "is"])
@pytest.mark.parametrize("shape", [(64, 64, 64), (100, 50, 300), (1, 4096, 512), (513, 1, 7)])
def test_infinite_bandwidth_equals_compute_roofline(df, shape):
    hw = hw_of(32, 32, df)
    res = simulate_gemm(*shape, hw)
    assert res.cycles == res.compute_cycles == compute_cycles(*shape, hw.array)
    assert res.stall_cycles == 0
    assert res.macs == math.prod(shape)
    assert res.utilization == pytest.approx(res.macs / (1024 * res.cycles))


settings.register_profile("sim", max_examples=60, deadline=None, derandomize=True)

_shapes = st.tuples(st.integers(1, 80), st.integers(1, 80), st.integers(1, 80))
_arrays = st.tuples(st.integers(1, 12), st.integers(1, 12))


@settings(settings.get_profile("sim"))
@given(shape=_shapes, array=_arrays, df=st.sampled_from(["os", "ws", "is"]),
       gbps=st.floats(0.01, 1e4), lat=st.floats(0, 300), double=st.booleans(),
       overlap=st.booleans(), sram_factor=st.sampled_from([1.0, 1.5, 4.0, 1000.0]),
       banks=st.sampled_from([None, 1, 3]))
def test_never_faster_than_either_roofline(shape, array, df, gbps, lat, double, overlap,
                                           sram_factor, banks):
    spec = ArraySpec(*array, df)
    kb = min_sram_bytes(spec, 2 if double else 1) * sram_factor / 1024
    hw = hw_of(*array, df, gbps, lat, kb, banks, double)
    res = simulate_gemm(*shape, hw, fold_overlap=overlap)
    assert res.cycles >= res.compute_roofline_cycles == res.compute_cycles
    assert res.cycles >= res.memory_roofline_cycles
    # compulsory traffic: every operand read once, every output written once
    m, n, k = shape
    assert res.actions.dram_read_bytes >= m * k + k * n - 1e-6
    assert res.actions.dram_write_bytes >= m * n * 4 - 1e-6
    # and never slower than running loads, whole folds and write-backs one after another
    plan = plan_folds(*shape, spec, hw.sram.bytes, double_buffered=double)
    whole_folds = _fold_times(*shape, hw, plan, fold_overlap=False).latency.sum()
    serial = whole_folds + res.memory_roofline_cycles + 2 * plan.folds * hw.dram_latency_cycles
    assert res.cycles <= math.ceil(serial) + 1
    assert res.stall_cycles == res.dram_stall_cycles + res.sram_stall_cycles >= 0


@settings(settings.get_profile("sim"))
@given(shape=_shapes, array=_arrays, df=st.sampled_from(["os", "ws", "is"]))
def test_tiny_bandwidth_equals_memory_roofline(shape, array, df):
    hw = hw_of(*array, df, gbps=1e-6, lat=0.0)
    res = simulate_gemm(*shape, hw)
    assert res.cycles >= res.memory_roofline_cycles
    assert res.cycles <= res.memory_roofline_cycles * (1 + 1e-4) + 1


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_fold_overlap(df):
    spec = ArraySpec(8, 8, df)
    for shape in [(40, 40, 40), (3, 50, 60), (64, 64, 2)]:
        overlapped = fold_overlap_cycles(*shape, spec)
        assert math.ceil(math.prod(shape) / spec.pes) <= overlapped <= compute_cycles(*shape, spec)
        res = simulate_gemm(*shape, hw_of(8, 8, df), fold_overlap=True)
        assert res.cycles == res.compute_cycles == overlapped
    # one fold: nothing to overlap
    assert fold_overlap_cycles(8, 8, 8, spec) == compute_cycles(8, 8, 8, spec)


def test_dma_overlaps_compute_only_when_double_buffered():
    args = dict(r=8, c=8, df="ws", gbps=8.0, lat=50.0)
    double = simulate_gemm(64, 64, 64, hw_of(**args, double=True))
    single = simulate_gemm(64, 64, 64, hw_of(**args, double=False))
    assert double.cycles < single.cycles
    assert double.compute_cycles == single.compute_cycles


def test_bandwidth_bound_stalls_counted_once():
    # 1×4096×4096 GEMV on 32×32 os: memory-bound at 10 GB/s; stalls = time − compute
    hw = hw_of(32, 32, "os", gbps=10.0)
    res = simulate_gemm(1, 4096, 4096, hw)
    assert res.dram_stall_cycles == res.cycles - res.compute_cycles > 0
    assert res.cycles == pytest.approx(res.memory_roofline_cycles, rel=0.02)


def test_small_sram_refetches_and_big_sram_is_compulsory():
    m, n, k = 256, 256, 256
    big = simulate_gemm(m, n, k, hw_of(16, 16, "os", kb=4096))
    assert big.actions.dram_read_bytes == m * k + k * n
    assert big.actions.dram_write_bytes == m * n * 4
    small = simulate_gemm(m, n, k, hw_of(16, 16, "os", kb=min_sram_bytes(ArraySpec(16, 16), 2) / 1024))
    assert small.actions.dram_read_bytes > big.actions.dram_read_bytes
    assert small.details["loop_order"].endswith("streamed")


def test_ws_spills_partial_sums_when_they_do_not_fit():
    spec = ArraySpec(8, 8, "ws")
    plan = plan_folds(512, 64, 64, spec, min_sram_bytes(spec, 2))
    # psums re-read: more than compulsory traffic
    assert plan.dram_read_bytes > 512 * 64 + 64 * 64
    roomy = plan_folds(512, 64, 64, spec, 10 << 20)
    assert roomy.dram_read_bytes == 512 * 64 + 64 * 64
    assert roomy.dram_write_bytes == 512 * 64 * 4


def test_sram_ports_can_starve_the_array():
    ideal = simulate_gemm(64, 64, 64, hw_of(16, 16, "os"))
    starved = simulate_gemm(64, 64, 64, hw_of(16, 16, "os", banks=1))
    assert starved.sram_stall_cycles > 0 == ideal.sram_stall_cycles
    assert starved.cycles == starved.compute_cycles + starved.sram_stall_cycles
    plenty = simulate_gemm(64, 64, 64, hw_of(16, 16, "os", banks=64))
    assert plenty.cycles == ideal.cycles


def test_last_fold_convention():
    hw = hw_of(4, 4, "os")
    plan = plan_folds(8, 8, 8, hw.array, hw.sram.bytes)
    times = _fold_times(8, 8, 8, hw, plan, fold_overlap=False)
    assert list(times.latency) == [14, 14, 14, 13]  # P = 4+4+8-2; SCALE-Sim drops one cycle


def test_action_counts_and_energy():
    hw = hw_of(16, 16, "os", gbps=100.0, lat=100.0)
    res = simulate_gemm(32, 48, 64, hw)
    assert res.actions.macs == {"int8:int32": 32 * 48 * 64}
    assert res.actions.sram_write_bytes >= res.actions.dram_read_bytes
    assert set(res.energy_breakdown_pj) == {"array", "vector", "sram", "dram", "link", "leakage"}
    assert res.energy_pj == pytest.approx(sum(res.energy_breakdown_pj.values()))
    assert res.energy_breakdown_pj["dram"] == pytest.approx(res.actions.dram_bytes * 160.0)


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_array_bigger_than_sram_can_feed(df):
    with pytest.raises(UsageError, match="needs at least 160.0 KB of SRAM"):
        simulate_gemm(64, 64, 64, hw_of(128, 128, df, kb=64))


@pytest.mark.parametrize("bad", [(0, 8, 8), (8, -1, 8), (8, 8, 0)])
def test_bad_sizes(bad):
    with pytest.raises(UsageError, match="positive integer"):
        simulate_gemm(*bad, hw_of())


@pytest.mark.parametrize("field", [
    dict(dram=dict(gbps=0)), dict(dram=dict(gbps=-1)), dict(dram=dict(latency_ns=-1)),
    dict(sram=dict(kb=0)), dict(sram=dict(banks=0)), dict(clock_ghz=0), dict(numeric="posit"),
])
def test_bad_hardware(field):
    with pytest.raises(UsageError):
        if "dram" in field:
            DramSpec(**{"gbps": 1.0, "latency_ns": 0.0, **field["dram"]})
        elif "sram" in field:
            SramSpec(**{"kb": 64.0, "banks": None, "bank_width_bits": 64, "ports_per_bank": 1,
                        "double_buffered": True, **field["sram"]})
        else:
            dataclasses.replace(hw_of(), **field)
