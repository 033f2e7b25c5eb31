"""A fast spill plan for problems too large for the CP-SAT spill model.

The same plans as ``spill.py`` (a buffer stays in the arena over its anchors;
in a gap between two it may be spilled: stored to DRAM once, loaded back
for the next anchor, possibly at another offset), found greedily in two
steps, each fast on tens of thousands of buffers (a row-tiled prefill of a
7B model):

1. Which gaps to spill (Belady's rule): while the bytes resident at some step
   exceed the target, spill, among the gaps that step lies in, the one whose
   buffer is needed again furthest in the future (the larger on ties).
2. Where each stay goes: the stays are packed as buffers of their own by
   best-fit and greedy-by-size (``heuristics.py``), the lower kept. When
   fragmentation leaves the packing above the capacity, the target is
   lowered by the excess and step 1 spills more.

No optimality is claimed (status "heuristic"; the bound is the spill plan's
trivial 0). `plan_spills_greedy` raises UsageError as ``plan_spills`` does
when no spill can help, or when the packing still exceeds the capacity after
`ROUNDS` rounds.
"""

from __future__ import annotations

import time

import numpy as np

from llmc.errors import UsageError
from llmc.passes.memplan.heuristics import best_fit, greedy_by_size
from llmc.passes.memplan.problem import Buffer, Plan, Problem, Segment, Spills, lower_bound
from llmc.passes.memplan.spill import _refuse

ROUNDS = 8
SEP = "\x00"  # stay names: buffer name, SEP, stay index


def plan_spills_greedy(problem: Problem, capacity: int) -> Plan:
    """A spill plan that fits ``capacity`` bytes (module docstring)."""
    t0 = time.perf_counter()
    _refuse(problem, capacity)
    bufs = [b for b in problem.buffers if b.size]
    anchors = [b.anchors() for b in bufs]
    sizes = np.array([problem.aligned(b.size) for b in bufs], np.int64)
    owner, gs, ge = [], [], []
    for i, an in enumerate(anchors):
        for (_, e), (a, _) in zip(an, an[1:], strict=False):
            owner.append(i)
            gs.append(e + 1)
            ge.append(a - 1)
    owner_a, gs_a, ge_a = (np.array(x, np.int64) for x in (owner, gs, ge))
    gsize = sizes[owner_a] if owner else np.zeros(0, np.int64)
    spilled = np.zeros(len(owner), bool)
    steps = max((b.end for b in bufs), default=0) + 2
    load = np.zeros(steps + 1, np.int64)
    for b, s in zip(bufs, sizes, strict=True):
        load[b.start] += s
        load[b.end + 1] -= s
    load = np.cumsum(load)[:steps]
    target = capacity
    for _ in range(ROUNDS):
        _spill_down(load, target, spilled, gs_a, ge_a, gsize)
        segs = _segments(bufs, anchors, owner_a, gs_a, ge_a, spilled)
        offsets, top = _pack(problem, bufs, segs)
        if top <= capacity:
            return _plan(problem, bufs, segs, offsets, top, capacity, t0)
        target -= top - capacity
    raise UsageError(f"no spill plan fits the arena of {capacity} bytes: the greedy spill "
                     f"plan's packing stays above it after {ROUNDS} rounds; enlarge the arena")


def _spill_down(load: np.ndarray, target: int, spilled: np.ndarray, gs: np.ndarray,
                ge: np.ndarray, gsize: np.ndarray) -> None:
    """Spill gaps (Belady) until no step holds more than `target` bytes."""
    while True:
        s = int(np.argmax(load))
        if load[s] <= target:
            return
        cand = np.flatnonzero(~spilled & (gs <= s) & (ge >= s))
        if cand.size == 0:
            raise UsageError(f"no spill plan fits the arena of {target} bytes: at step {s} "
                             f"the buffers in the arena ({int(load[s])} bytes) are all read "
                             "or written there; enlarge the arena or tile that op")
        best = cand[np.lexsort((gsize[cand], ge[cand]))[-1]]
        spilled[best] = True
        load[gs[best]:ge[best] + 1] -= gsize[best]


def _segments(bufs: list[Buffer], anchors: list[list[tuple[int, int]]], owner: np.ndarray,
              gs: np.ndarray, ge: np.ndarray, spilled: np.ndarray
              ) -> list[list[tuple[int, int]]]:
    """Each buffer's stays in the arena: its lifetime cut at its spilled gaps."""
    cuts: dict[int, list[tuple[int, int]]] = {}
    for g in np.flatnonzero(spilled):
        cuts.setdefault(int(owner[g]), []).append((int(gs[g]), int(ge[g])))
    out = []
    for i, b in enumerate(bufs):
        stays, start = [], b.start
        for a, e in sorted(cuts.get(i, [])):
            stays.append((start, a - 1))
            start = e + 1
        stays.append((start, b.end))
        out.append(stays)
    return out


def _pack(problem: Problem, bufs: list[Buffer], segs: list[list[tuple[int, int]]]
          ) -> tuple[dict[str, int], int]:
    stays = Problem([Buffer(f"{b.name}{SEP}{k}", b.size, a, e, alignment=b.alignment,
                            bank=b.bank)
                     for b, ss in zip(bufs, segs, strict=True) for k, (a, e) in enumerate(ss)],
                    problem.alignment, problem.bank_bytes)
    best = min((best_fit(stays), greedy_by_size(stays)), key=lambda p: p.arena_bytes)
    return best.offsets, best.arena_bytes


def _plan(problem: Problem, bufs: list[Buffer], segs: list[list[tuple[int, int]]],
          offsets: dict[str, int], top: int, capacity: int, t0: float) -> Plan:
    placed = {b.name: 0 for b in problem.buffers}
    spilled: dict[str, tuple[Segment, ...]] = {}
    to_dram = from_dram = 0
    for b, ss in zip(bufs, segs, strict=True):
        stays = tuple(Segment(a, e, offsets[f"{b.name}{SEP}{k}"])
                      for k, (a, e) in enumerate(ss))
        placed[b.name] = stays[0].offset
        if len(stays) > 1:
            spilled[b.name] = stays
            to_dram += b.size
            from_dram += b.size * (len(stays) - 1)
    lb = lower_bound(problem)
    return Plan(offsets=placed, arena_bytes=top, method="greedy-spill",
                solve_s=time.perf_counter() - t0, status="heuristic", lower_bound_bytes=lb,
                info={"spilled_buffers": len(spilled)}, bound_bytes=lb,
                spills=Spills(capacity, spilled, to_dram, from_dram, 0))


__all__ = ["plan_spills_greedy"]
