"""Simulate one GEMM on the systolic array (or the vector unit) of a `SimHardware`.

Timing goes beyond SCALE-Sim 3.0's compute model (which `compute_cycles`
reproduces exactly) in three ways, each optional or neutral by default:

* fold overlap (`fold_overlap=True`, double-buffered PEs): the next fold's
  preload and fill overlap the current fold, so folds issue every max(T, R)
  cycles instead of every P;
* DMA/compute overlap with a double-buffered scratchpad, and stalls when DRAM
  bandwidth runs short (`pipeline.py`), counted once per stalled cycle;
* scratchpad-port stalls when explicit banks cannot feed the array.

With infinite DRAM bandwidth, zero latency and an ideal scratchpad, `cycles`
equals `compute_cycles`.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from llmc.errors import UsageError
from llmc.hw.array import (
    Dataflow,
    compute_cycles,
    fold_counts,
    fold_cycles,
    mapping,
)
from llmc.sim.actions import Actions, mac_key
from llmc.sim.energy import energy_breakdown_pj
from llmc.sim.hardware import SimHardware
from llmc.sim.limits import check_gemm_size
from llmc.sim.pipeline import run_pipeline
from llmc.sim.result import SimResult
from llmc.sim.tiling import FoldPlan, plan_folds


def fold_overlap_cycles(m: int, n: int, k: int, spec) -> int:
    """Stall-free cycles with double-buffered PEs: P + (folds − 1)·max(T, R) − 1.

    The next fold's operands enter right behind the current fold's (a new fold
    every T cycles), but no faster than the R cycles it takes to preload the
    stationary tile (ws/is) or shift the finished outputs out (os).
    """
    fr, fc = fold_counts(m, n, k, spec)
    _, _, t = mapping(m, n, k, spec.dataflow)
    return fold_cycles(m, n, k, spec) + (fr * fc - 1) * max(t, spec.rows) - 1


@dataclass(frozen=True)
class _FoldTimes:
    latency: np.ndarray   # issue -> done, per fold
    interval: np.ndarray  # issue -> earliest next issue, per fold
    ideal: int            # stall-free compute cycles (no SRAM stalls)


def _fold_times(m: int, n: int, k: int, hw: SimHardware, plan: FoldPlan,
                fold_overlap: bool) -> _FoldTimes:
    spec = hw.array
    nfold = plan.folds
    p = fold_cycles(m, n, k, spec)
    _, _, t = mapping(m, n, k, spec.dataflow)
    # scratchpad ports: a fold cannot finish before the SRAM has moved its bytes
    supply = hw.sram_bytes_per_cycle
    if math.isinf(supply):
        extra = np.zeros(nfold)
    else:
        extra = np.maximum(0.0, np.ceil(plan.array_bytes / supply) - p)
    latency = p + extra
    if fold_overlap:
        interval = np.maximum(t + extra, spec.rows)
        ideal = fold_overlap_cycles(m, n, k, spec)
    else:
        interval = latency.copy()
        ideal = compute_cycles(m, n, k, spec)
    latency[-1] -= 1  # SCALE-Sim does not count the last fold's final cycle
    interval[-1] = latency[-1]
    return _FoldTimes(latency, interval, ideal)


@lru_cache(maxsize=4096)
def _gemm_core(m: int, n: int, k: int, hw: SimHardware, fold_overlap: bool,
               out_bits: int | None, want_timeline: bool):
    """Memoised core of `simulate_gemm` (hardware specs are frozen, so hashable)."""
    plan = plan_folds(m, n, k, hw.array, hw.sram.bytes,
                      double_buffered=hw.sram.double_buffered, out_bits=out_bits)
    times = _fold_times(m, n, k, hw, plan, fold_overlap)
    compute_sram = float(times.interval[:-1].sum() + times.latency[-1])
    cpb = 1.0 / hw.dram_bytes_per_cycle          # 0.0 for infinite bandwidth
    lat = hw.dram_latency_cycles
    timeline = None
    if cpb == 0.0 and lat == 0.0 and not want_timeline:
        end = compute_sram                        # closed form: memory is free
    else:
        buffers = 2 if hw.sram.double_buffered else 1
        timeline = run_pipeline(plan.load_bytes, plan.store_bytes, times.latency,
                                times.interval, buffers, cpb, lat)
        end = float(timeline[0])
    return plan, times, compute_sram, end, timeline


def _check_out_bits(out_bits: int | None) -> None:
    if out_bits is not None and (not isinstance(out_bits, int) or out_bits < 1):
        raise UsageError(f"out_bits must be a positive integer, got {out_bits!r}")


def simulate_gemm(m: int, n: int, k: int, hw: SimHardware, *, fold_overlap: bool = False,
                  out_bits: int | None = None, trace: bool = False,
                  name: str = "gemm") -> SimResult:
    """Simulate C[M×N] = A[M×K]·B[K×N] on `hw`'s systolic array.

    `out_bits`: width of the outputs written back (default: acc_bits).
    `trace=True` records per-fold events for `SimResult.write_trace`.
    A GEMM whose folds would need more than `MAX_SIM_BYTES` is a UsageError
    (llmc.sim.limits), raised before anything is allocated.
    """
    check_gemm_size(m, n, k, hw.array, trace=bool(trace))  # also validates the sizes
    _check_out_bits(out_bits)
    plan, times, compute_sram, end, timeline = _gemm_core(
        int(m), int(n), int(k), hw, bool(fold_overlap), out_bits, bool(trace))
    cycles = int(math.ceil(end - 1e-9))
    compute = times.ideal
    sram_stall = int(math.ceil(compute_sram - 1e-9)) - compute
    macs = int(m) * int(n) * int(k)
    actions = Actions(
        macs=Counter({mac_key(hw.mac_dtype, hw.acc_dtype): macs}),
        sram_read_bytes=plan.sram_read_bytes, sram_write_bytes=plan.sram_write_bytes,
        dram_read_bytes=plan.dram_read_bytes, dram_write_bytes=plan.dram_write_bytes,
    )
    seconds = cycles / (hw.clock_ghz * 1e9)
    sr, sc, t = mapping(m, n, k, hw.array.dataflow)
    result = SimResult(
        name=name, cycles=cycles, compute_cycles=compute, sram_stall_cycles=sram_stall,
        dram_stall_cycles=cycles - compute - sram_stall, macs=macs,
        peak_macs_per_cycle=hw.array.pes, clock_ghz=hw.clock_ghz, actions=actions,
        energy_breakdown_pj=energy_breakdown_pj(actions, hw, seconds),
        compute_roofline_cycles=float(compute),
        memory_roofline_cycles=actions.dram_bytes / hw.dram_bytes_per_cycle,
        details={"kind": "gemm", "m": int(m), "n": int(n), "k": int(k),
                 "unit": "array", "dataflow": hw.array.dataflow.value,
                 "array": f"{hw.array.rows}x{hw.array.cols}", "sr_sc_t": [sr, sc, t],
                 "folds": plan.folds, "rows_folds": plan.rows_folds,
                 "cols_folds": plan.cols_folds, "loop_order": plan.order,
                 "fold_overlap": bool(fold_overlap),
                 "ideal_cycles": -(-macs // hw.array.pes)},
    )
    if trace:
        from llmc.sim.trace import gemm_events

        result.trace_events = gemm_events(name, hw, plan, timeline)
    return result


def simulate_vector_gemm(m: int, n: int, k: int, hw: SimHardware, *,
                         out_bits: int | None = None, name: str = "gemm") -> SimResult:
    """The same GEMM on the vector/MAC unit: lanes over N, one MAC per lane per cycle.

    cycles_compute = M·K·⌈N/lanes⌉ + pipeline depth; operands stream once with
    DMA overlapped (time = depth + max(compute, memory) + latency).
    """
    mapping(m, n, k, Dataflow.OS)
    _check_out_bits(out_bits)
    vec = hw.need_vector()
    compute = int(m) * int(k) * -(-int(n) // vec.lanes) + vec.pipeline_depth
    in_b, out_b = vec.in_bits / 8, (out_bits or vec.acc_bits) / 8
    rd = (m * k + k * n) * in_b
    wr = m * n * out_b
    from llmc.sim.steps import streamed_step

    return streamed_step(
        name, hw, compute_cycles=compute, dram_read_bytes=rd, dram_write_bytes=wr,
        vector_ops={f"{'fp' if hw.numeric == 'fp' else 'int'}{vec.in_bits}": m * n * k},
        details={"kind": "gemm", "unit": "vector", "m": int(m), "n": int(n), "k": int(k)},
        macs=int(m) * int(n) * int(k), peak=vec.lanes)


def clear_cache() -> None:
    """Forget memoised GEMM results (for benchmarks that time cold runs)."""
    _gemm_core.cache_clear()
