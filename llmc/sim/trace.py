"""Timelines in Chrome/Perfetto trace-event JSON, and a utilisation summary.

Open the written file in https://ui.perfetto.dev (or chrome://tracing). Each
component is one track ("thread") of one process: array, vector, dram, link.
Times are microseconds, as the format wants (`ts`, `dur`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from llmc.sim.hardware import SimHardware
    from llmc.sim.result import SimResult
    from llmc.sim.tiling import FoldPlan

TRACKS = {"array": 1, "vector": 2, "dram": 3, "link": 4}


def _event(name: str, track: str, start_cycles: float, dur_cycles: float,
           hw: SimHardware, args: dict | None = None) -> dict:
    return {"name": name, "cat": track, "ph": "X", "pid": 1, "tid": TRACKS[track],
            "ts": hw.cycles_to_us(start_cycles), "dur": hw.cycles_to_us(dur_cycles),
            "args": args or {}}


def gemm_events(name: str, hw: SimHardware, plan: FoldPlan, timeline: tuple | None,
                offset: float = 0.0) -> list[dict]:
    """One event per fold on the array track and per DMA transfer on the dram track."""
    if timeline is None:
        return []
    _, issue, done, ld_s, ld_e, st_s, st_e = timeline
    lat = hw.dram_latency_cycles
    events = []
    fc = plan.cols_folds
    outer_is_rows = plan.order.startswith("rows")
    for f in range(plan.folds):
        o, p = divmod(f, plan.cols_folds if outer_is_rows else plan.rows_folds)
        i, j = (o, p) if outer_is_rows else (p, o)
        events.append(_event(f"{name} fold ({i},{j})", "array", offset + issue[f],
                             done[f] - issue[f], hw, {"fold": f, "of": plan.folds}))
        if plan.load_bytes[f] > 0:
            events.append(_event(f"{name} load {f}", "dram", offset + ld_s[f],
                                 max(ld_e[f] - lat - ld_s[f], 0.0), hw,
                                 {"bytes": float(plan.load_bytes[f])}))
        if plan.store_bytes[f] > 0:
            events.append(_event(f"{name} store {f}", "dram", offset + st_s[f],
                                 max(st_e[f] - lat - st_s[f], 0.0), hw,
                                 {"bytes": float(plan.store_bytes[f])}))
    del fc
    return events


def step_events(res: SimResult, hw: SimHardware, start: float, count: int) -> list[dict]:
    """Events of one schedule step (repeated `count` times) starting at cycle `start`."""
    kind = res.details.get("kind", "gemm")
    track = {"gemm": "vector" if res.details.get("unit") == "vector" else "array",
             "vector": "vector", "dma": "dram", "link": "link", "allreduce": "link"}[kind]
    if res.trace_events:  # fold-level detail: shift the GEMM's own events
        shifted = []
        for rep in range(count):
            off = hw.cycles_to_us(start + rep * res.cycles)
            shifted += [{**e, "ts": e["ts"] + off} for e in res.trace_events]
        return shifted
    args = {"count": count, "cycles_each": res.cycles, "compute_cycles_each": res.compute_cycles,
            "dram_bytes_each": res.actions.dram_bytes, "utilization": res.utilization}
    label = res.name if count == 1 else f"{res.name} ×{count}"
    return [_event(label, track, start, res.cycles * count, hw, args)]


def utilization_summary(res: SimResult) -> dict[str, float]:
    """Busy fraction of each track over the run, from the trace events."""
    if not res.trace_events or res.cycles == 0:
        return {"array": res.utilization}
    span_us = res.cycles / (res.clock_ghz * 1e3)
    busy: dict[str, float] = {}
    for e in res.trace_events:
        busy[e["cat"]] = busy.get(e["cat"], 0.0) + e["dur"]
    return {track: float(np.clip(us / span_us, 0.0, 1.0)) for track, us in busy.items()}


def write_trace(res: SimResult, path: str | Path) -> Path:
    """Write `res`'s events as a Chrome trace JSON file; returns the path."""
    path = Path(path)
    meta = [{"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": track}}
            for track, tid in TRACKS.items()]
    meta.append({"name": "process_name", "ph": "M", "pid": 1, "args": {"name": f"llmc sim: {res.name}"}})
    doc = {"traceEvents": meta + list(res.trace_events or []), "displayTimeUnit": "ns",
           "otherData": {"cycles": res.cycles, "clock_ghz": res.clock_ghz,
                         "utilization": utilization_summary(res)}}
    path.write_text(json.dumps(doc))
    return path
