"""Scratchpad planning with spills: fit a capacity below the lower bound by
moving buffers out to DRAM and back, moving as few bytes as possible.

A buffer must be in the arena while it is written or read (its *anchors*,
``Buffer.anchors``); in each *gap* between two anchors it may stay, or be
spilled: written to DRAM once (the first time it leaves; the data never
changes) and read back for the next anchor, possibly at another offset. One
CP-SAT model decides every spill and every offset together:

    anchor k of buffer i:  a rectangle, steps [a_k, b_k] x bytes [o_ik, o_ik + S_i)
    gap k (between anchors k and k+1):  steps [b_k + 1, a_{k+1} - 1] x bytes
        [o_ik, o_ik + S_i), present iff kept; kept => o_{i,k+1} = o_ik
    NoOverlap2D over all present rectangles; 0 <= o_ik <= capacity - S_i
    minimise  sum_i size_i * (stored_i + sum_k spilled_ik),  stored_i = OR_k spilled_ik

Offsets obey the buffers' placement rules (``cpsat._base``). Before any
search, each step's anchored bytes are summed: when one step's reads and
writes alone exceed the capacity no spill can help, and the error says what
is missing there. One worker, a fixed seed and a deterministic time limit, as
in ``cpsat.py``, so the same problem gives the same plan.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from llmc.errors import UsageError
from llmc.passes.memplan.cpsat import DET_PER_S, SEED, WALL_BACKSTOP, WORKERS, _base
from llmc.passes.memplan.heuristics import rule_of
from llmc.passes.memplan.problem import Buffer, Plan, Problem, Segment, Spills, lower_bound


def anchored_peak(problem: Problem) -> tuple[int, int, list[Buffer]]:
    """(step, bytes, buffers) where the bytes that must be in the arena
    (anchors: written or read at that step) are largest."""
    delta: dict[int, int] = {}
    for b in problem.buffers:
        s = problem.aligned(b.size)
        for a, e in b.anchors() if s else ():
            delta[a] = delta.get(a, 0) + s
            delta[e + 1] = delta.get(e + 1, 0) - s
    best, live = (0, 0), 0
    for step in sorted(delta):
        live += delta[step]
        if live > best[1]:
            best = (step, live)
    step = best[0]
    held = [b for b in problem.buffers
            if b.size and any(a <= step <= e for a, e in b.anchors())]
    return step, best[1], sorted(held, key=lambda b: (-b.size, b.name))


def _refuse(problem: Problem, capacity: int) -> None:
    """Raise UsageError when no spill plan can exist (module docstring)."""
    for b in problem.buffers:
        if problem.aligned(b.size) > capacity:
            raise UsageError(
                f"no spill plan fits: buffer {b.name!r} alone needs "
                f"{problem.aligned(b.size)} bytes, {problem.aligned(b.size) - capacity} more "
                f"than the arena of {capacity}; enlarge the arena or split the tensor")
    step, need, held = anchored_peak(problem)
    if need > capacity:
        names = ", ".join(f"{b.name} ({b.size} B)" for b in held[:8])
        more = f" and {len(held) - 8} more" if len(held) > 8 else ""
        raise UsageError(
            f"no spill plan fits: at step {step} the tensors read and written need "
            f"{need} bytes, {need - capacity} more than the arena of {capacity} "
            f"({names}{more}); enlarge the arena or tile that op")


class SpillSearchTimeout(UsageError):
    """No spill plan found within the time limit (none proved impossible either)."""


def plan_spills(problem: Problem, capacity: int, time_limit_s: float = 30.0) -> Plan:
    """The plan that fits ``capacity`` bytes moving the fewest bytes to and
    from DRAM (module docstring). Raises UsageError when none exists, SpillSearchTimeout (a
    UsageError) when none is found within ``time_limit_s``."""
    t0 = time.perf_counter()
    _refuse(problem, capacity)
    bufs = [b for b in problem.buffers if b.size]
    unit = _unit(problem, bufs, capacity)
    model = _Model(problem, bufs, capacity // unit, unit)
    res = model.solve(time_limit_s)
    if res is None:
        head = f"no spill plan fits the arena of {capacity} bytes: "
        if model.status == "INFEASIBLE":
            raise UsageError(head + "proved impossible (fragmentation or placement rules)")
        raise SpillSearchTimeout(head + f"none found within {time_limit_s} s; allow more "
                                 "time or enlarge the arena")
    segments, status, bound = res
    offsets = {b.name: 0 for b in problem.buffers}
    spilled: dict[str, tuple[Segment, ...]] = {}
    to_dram = from_dram = 0
    top = 0
    for b in bufs:
        segs = segments[b.name]
        offsets[b.name] = segs[0].offset
        top = max(top, *(s.offset + problem.aligned(b.size) for s in segs))
        if len(segs) > 1:
            spilled[b.name] = segs
            to_dram += b.size
            from_dram += b.size * (len(segs) - 1)
    spills = Spills(capacity, spilled, to_dram, from_dram, bound)
    lb = lower_bound(problem)
    return Plan(offsets=offsets, arena_bytes=top, method="cpsat-spill",
                solve_s=time.perf_counter() - t0, status=status, lower_bound_bytes=lb,
                info={"phases": model.phases, "spilled_buffers": len(spilled)},
                bound_bytes=lb, spills=spills)


def _unit(problem: Problem, bufs: Sequence[Buffer], capacity: int) -> int:
    g = 0
    for b in bufs:
        g = math.gcd(g, problem.aligned(b.size))
        r = rule_of(problem, b)
        if r is not None:
            g = math.gcd(g, math.gcd(r.align, math.gcd(r.period, r.slack)))
    return g or 1


class _Model:
    """The CP-SAT model of the module docstring, in units of ``unit`` bytes."""

    def __init__(self, problem: Problem, bufs: list[Buffer], cap: int, unit: int) -> None:
        from ortools.sat.python import cp_model

        self.m = m = cp_model.CpModel()
        self.bufs, self.unit = bufs, unit
        self.anchors: dict[str, list[tuple[int, int]]] = {}
        self.offs: dict[str, list[Any]] = {}
        self.keep: dict[str, list[Any]] = {}
        xs, ys, cost = [], [], []
        for i, b in enumerate(bufs):
            size = problem.aligned(b.size) // unit
            rule = rule_of(problem, b)
            rule = None if rule is None else rule.scaled(unit)
            anchors = b.anchors()
            offs = [_base(m, rule, cap - size, f"{i}_{k}") for k in range(len(anchors))]
            keep = [m.new_bool_var(f"keep{i}_{k}") for k in range(len(anchors) - 1)]
            for k, (a, e) in enumerate(anchors):
                xs.append(m.new_fixed_size_interval_var(a, e - a + 1, f"ax{i}_{k}"))
                ys.append(m.new_fixed_size_interval_var(offs[k], size, f"ay{i}_{k}"))
            for k, lit in enumerate(keep):
                a, e = anchors[k][1] + 1, anchors[k + 1][0] - 1
                xs.append(m.new_fixed_size_interval_var(a, e - a + 1, f"gx{i}_{k}"))
                ys.append(m.new_optional_fixed_size_interval_var(offs[k], size, lit,
                                                                 f"gy{i}_{k}"))
                m.add(offs[k + 1] == offs[k]).only_enforce_if(lit)
            if keep:
                stored = m.new_bool_var(f"stored{i}")
                m.add_bool_or([k.Not() for k in keep]).only_enforce_if(stored)
                for lit in keep:
                    m.add_implication(lit.Not(), stored)
                cost.append(b.size * stored)
                cost += [b.size * (1 - lit) for lit in keep]
            self.anchors[b.name], self.offs[b.name], self.keep[b.name] = anchors, offs, keep
        m.add_no_overlap_2d(xs, ys)
        m.minimize(sum(cost))
        self.status = "UNKNOWN"
        self.phases: list[dict[str, object]] = []

    def solve(self, time_limit_s: float
              ) -> tuple[dict[str, tuple[Segment, ...]], str, int] | None:
        from ortools.sat.python import cp_model

        solver = cp_model.CpSolver()
        prm = solver.parameters
        prm.num_workers = WORKERS
        prm.random_seed = SEED
        prm.max_deterministic_time = max(0.01, DET_PER_S * time_limit_s)
        prm.max_time_in_seconds = max(0.01, WALL_BACKSTOP * time_limit_s)
        t0 = time.perf_counter()
        code = solver.solve(self.m)
        self.status = solver.status_name(code)
        self.phases.append({"status": self.status, "s": round(time.perf_counter() - t0, 3),
                            "det": round(solver.deterministic_time, 3)})
        if self.status not in ("OPTIMAL", "FEASIBLE"):
            return None
        segments: dict[str, tuple[Segment, ...]] = {}
        for b in self.bufs:
            anchors, offs, keep = self.anchors[b.name], self.offs[b.name], self.keep[b.name]
            segs: list[Segment] = []
            start = anchors[0][0]
            for k, (_, e) in enumerate(anchors):
                if k == len(keep) or not solver.boolean_value(keep[k]):
                    segs.append(Segment(start, e, solver.value(offs[k]) * self.unit))
                    if k < len(keep):
                        start = anchors[k + 1][0]
            segments[b.name] = tuple(segs)
        status = "optimal" if self.status == "OPTIMAL" else "feasible"
        return segments, status, int(solver.best_objective_bound)
