"""Optimal placement with OR-Tools CP-SAT: one NoOverlap2D, searched bottom-left.

Every part of every item (``_items``) is a rectangle: a fixed interval of
steps by an interval of addresses of fixed size that starts at the item's
base plus the part's relative offset. One ``NoOverlap2D`` over the rectangles
says that no two share a byte while both live, and the arena ``M`` is at
least every item's top. This is the geometric model of dynamic storage
allocation; unlike the pairwise big-M MIP (``mip.py``) it needs no binary per
pair, and CP-SAT's propagation reasons over all rectangles at once.

* Sizes, offsets and rules are divided by their GCD (as in ``mip.py``);
  placement rules become ``base = align * k`` and ``base - period * q`` in
  ``[0, slack]``.
* Symmetry: of two items with the same parts and rule, the one whose name
  sorts first is below (swapping them maps any plan to one that obeys this).
* Search, in two phases, each on one worker with a fixed seed, so the same
  problem gives the same plan:

  1. *Is there a plan at the live-bytes lower bound?* ``M`` is fixed at it
     and the search branches bottom-left: the item whose base can be lowest
     goes there first (``CHOOSE_LOWEST_MIN`` / ``SELECT_MIN_VALUE``, items
     in order of their first step) -- a greedy skyline with backtracking and
     propagation. Most problems end here, proved optimal.
  2. Otherwise (the bound was proved unreachable, or phase 1 ran out of its
     share of time), minimise ``M`` between the bound and the greedy plan,
     which is given as a hint; CP-SAT's bound proves the gap that is left.

* Time limits are CP-SAT's *deterministic* time (a count of work, not of
  seconds; ``DET_PER_S`` per second of the caller's limit), so a search cut
  short stops at the same point on every run; a wall-clock limit of twice
  the caller's is a backstop that only a much slower machine reaches.
* The solver's bases are compacted (``_items.compact``) and re-verified; the
  result is never worse than the warm start.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from typing import Any

from llmc.errors import LlmcError
from llmc.passes.memplan import _items
from llmc.passes.memplan._items import Item
from llmc.passes.memplan.heuristics import items_of
from llmc.passes.memplan.mip import SolverTimeoutWarning, _scale, _unit, warm_offsets
from llmc.passes.memplan.problem import Plan, Problem, arena_of, lower_bound

log = logging.getLogger("llmc.memplan")

SEED = 0
WORKERS = 1  # one worker: CP-SAT's parallel portfolio is not deterministic
# Deterministic time allowed per wall-clock second of the caller's limit. On a
# busy 2-core x86 machine CP-SAT counted 0.1-0.4 deterministic units per second
# on these models, so the deterministic limit is the one that stops it.
DET_PER_S = 0.1
PHASE1_SHARE = 0.5  # of the time limit, for the search at the lower bound
WALL_BACKSTOP = 2.0  # the wall-clock limit, in time limits: only a much slower machine hits it


def solve_items_cpsat(
    items: Sequence[Item], warm: Sequence[int], lb: int, time_limit_s: float
) -> tuple[list[int], str, dict[str, object]]:
    """Least-height bases for ``items`` (bytes) from the valid placement ``warm``.

    Returns (offsets, status, info) like ``mip.solve_items``: status
    "optimal", "feasible" (time limit hit with a plan) or "warm" (nothing
    better found). ``info["bound_bytes"]`` is the proved lower bound on the
    height (at least ``lb``).
    """
    cons = _items.conflicts(items)
    warm = _items.compact(items, warm, cons)
    ub_bytes = _items.height(items, warm)
    info: dict[str, object] = {"items": len(items), "bound_bytes": lb}
    if ub_bytes <= lb:
        return warm, "optimal", info
    if time_limit_s <= 0:
        return warm, "warm", info
    unit = _unit(items)
    scaled = [_scale(it, unit) for it in items]
    lbu, ub = -(-lb // unit), ub_bytes // unit
    t0 = time.perf_counter()
    try:
        sol, status, bound, phases = _search(scaled, [w // unit for w in warm], lbu, ub,
                                             time_limit_s)
    except Exception as e:  # a missing or crashing solver must not lose the plan
        if isinstance(e, LlmcError):
            raise
        log.warning("CP-SAT failed: %s", e)
        info["error"] = f"solver failed: {e}"
        return warm, "warm", info
    info.update(phases=phases, bound_bytes=max(lb, bound * unit),
                cpsat_s=round(time.perf_counter() - t0, 3))
    if sol is None:
        return warm, "warm", info
    offs = [o * unit for o in _items.compact(scaled, sol, cons)]
    if not _items.valid(items, offs, cons) or _items.height(items, offs) > ub_bytes:
        log.warning("CP-SAT solution failed verification; keeping the warm start")
        return warm, "warm", info
    return offs, status, info


def _search(items: list[Item], warm: list[int], lb: int, ub: int, time_limit_s: float
            ) -> tuple[list[int] | None, str, int, list[dict[str, object]]]:
    """The two phases (module docstring), in scaled units: (bases or None,
    status, proved bound, per-phase statistics). Phase 2 gets the
    deterministic time phase 1 left, so the split never depends on the clock."""
    det = DET_PER_S * time_limit_s
    backstop = time.perf_counter() + WALL_BACKSTOP * time_limit_s
    phases: list[dict[str, object]] = []
    sol, st, _ = _solve(items, lb, lb, None, PHASE1_SHARE * det,
                        PHASE1_SHARE * WALL_BACKSTOP * time_limit_s, phases)
    if sol is not None:
        return sol, "optimal", lb, phases
    low = lb + 1 if st == "INFEASIBLE" else lb
    if low >= ub:  # the greedy plan is one unit above a bound proved unreachable
        return None, "optimal", ub, phases
    left = max(0.0, det - float(phases[-1]["det"]))  # type: ignore[arg-type]
    sol, st, bound = _solve(items, low, ub, warm, left, backstop - time.perf_counter(), phases)
    if sol is None:
        return None, "warm", max(low, bound), phases
    return sol, "optimal" if st == "OPTIMAL" else "feasible", max(low, bound), phases


def _solve(items: list[Item], lo: int, hi: int, hint: list[int] | None, det: float,
           wall_s: float, phases: list[dict[str, object]]
           ) -> tuple[list[int] | None, str, int]:
    """One CP-SAT run with lo <= M <= hi (feasibility when lo == hi, else
    minimise M) within ``det`` deterministic time (and ``wall_s`` seconds):
    (bases or None, CP-SAT's status name, its bound on M)."""
    from ortools.sat.python import cp_model

    m = cp_model.CpModel()
    peak = m.new_int_var(lo, hi, "M")
    bases, xs, ys = [], [], []
    for i, it in enumerate(items):
        top = it.height
        b = _base(m, it.rule, max(0, hi - top), i)
        bases.append(b)
        if top:
            m.add(b + top <= peak)
        for k, p in enumerate(it.parts):
            if p.size:
                xs.append(m.new_fixed_size_interval_var(p.start, p.end - p.start + 1,
                                                        f"x{i}_{k}"))
                ys.append(m.new_fixed_size_interval_var(b + p.rel, p.size, f"y{i}_{k}"))
    m.add_no_overlap_2d(xs, ys)
    _symmetry(m, items, bases)
    order = sorted(range(len(items)), key=lambda i: (
        min((p.start for p in items[i].parts), default=0), -items[i].biggest, items[i].name))
    m.add_decision_strategy([bases[i] for i in order], cp_model.CHOOSE_LOWEST_MIN,
                            cp_model.SELECT_MIN_VALUE)
    if lo < hi:
        m.minimize(peak)
    if hint is not None:
        for b, w in zip(bases, _ordered_hint(items, hint), strict=True):
            m.add_hint(b, w)
    solver = cp_model.CpSolver()
    prm = solver.parameters
    prm.num_workers = WORKERS
    prm.random_seed = SEED
    prm.max_deterministic_time = max(0.001, det)
    prm.max_time_in_seconds = max(0.01, wall_s)
    if lo == hi:
        prm.search_branching = prm.FIXED_SEARCH
    t0 = time.perf_counter()
    code = solver.solve(m)
    st = solver.status_name(code)
    found = st in ("OPTIMAL", "FEASIBLE")
    bound = int(solver.best_objective_bound) if lo < hi and found else lo
    phases.append({"M": [lo, hi], "status": st, "s": round(time.perf_counter() - t0, 3),
                   "det": solver.deterministic_time})
    if not found:
        return None, st, bound
    return [solver.value(b) for b in bases], st, bound


MAX_DOMAIN = 100_000  # intervals a rule's domain may list before it becomes constraints


def _base(m: Any, rule: _items.Rule | None, hi: int, i: int) -> Any:
    """An item's base in [0, hi], restricted to the bases its rule allows:
    listed as the variable's domain (one interval per bank window, or one
    value per aligned base), so that search jumps straight to the next
    allowed base; on a huge domain, base = align * k and base - period * q
    in [0, slack] as constraints instead."""
    from ortools.sat.python import cp_model

    if rule is None:
        return m.new_int_var(0, hi, f"b{i}")
    step = rule.period or rule.align
    per = (rule.slack // rule.align + 1) if rule.period and rule.align > 1 else 1
    if (hi // step + 1) * per <= MAX_DOMAIN:
        spans: list[list[int]] = []
        for q in range(0, hi + 1, step):
            if not rule.period:
                spans.append([q, q])
            elif rule.align == 1:
                spans.append([q, min(q + rule.slack, hi)])
            else:
                spans += [[v, v] for v in range(q, min(q + rule.slack, hi) + 1, rule.align)]
        return m.new_int_var_from_domain(cp_model.Domain.from_intervals(spans), f"b{i}")
    b = m.new_int_var(0, hi, f"b{i}")
    if rule.align > 1:
        k = m.new_int_var(0, hi // rule.align, f"k{i}")
        m.add(b == rule.align * k)
    if rule.period:
        q = m.new_int_var(0, hi // rule.period, f"q{i}")
        m.add(b - rule.period * q >= 0)
        m.add(b - rule.period * q <= rule.slack)
    return b


def _groups(items: Sequence[Item]) -> list[list[int]]:
    """Items with the same parts and rule, in name order (groups of two or more)."""
    groups: dict[tuple, list[int]] = {}
    for i, it in enumerate(items):
        if it.height:
            groups.setdefault((it.parts, it.rule), []).append(i)
    return [sorted(g, key=lambda i: items[i].name) for g in groups.values() if len(g) > 1]


def _symmetry(m: Any, items: Sequence[Item], bases: list) -> None:
    for g in _groups(items):
        for a, b in zip(g, g[1:], strict=False):
            gap = items[a].height if len(items[a].parts) == 1 else 1
            m.add(bases[a] + gap <= bases[b])


def _ordered_hint(items: Sequence[Item], warm: list[int]) -> list[int]:
    """``warm`` with each group of identical items re-ordered to obey the
    symmetry breaking (still valid: the items are interchangeable)."""
    warm = list(warm)
    for g in _groups(items):
        for i, o in zip(g, sorted(warm[i] for i in g), strict=True):
            warm[i] = o
    return warm


def solve_cpsat(problem: Problem, time_limit_s: float = 30.0,
                warm_start: Plan | None = None) -> Plan:
    """Plan ``problem`` with CP-SAT (module docstring) within ``time_limit_s``.

    The best greedy plan (or ``warm_start``, if valid and lower) is the
    hint; the result is never worse. On a time-out the best plan found is
    returned with a :class:`SolverTimeoutWarning`, ``status="feasible"`` and
    the proved bound in ``bound_bytes``.
    """
    t0 = time.perf_counter()
    lb = lower_bound(problem)
    items = items_of(problem)
    warm = warm_offsets(problem, warm_start)
    offs, status, info = solve_items_cpsat(items, warm, lb, time_limit_s)
    bound = int(info.get("bound_bytes", lb))  # type: ignore[call-overload]
    if status == "warm":
        status = "optimal" if _items.height(items, offs) <= bound else "feasible"
    if status == "feasible":
        why = info.get("error") or f"stopped at its {time_limit_s} s time limit"
        warnings.warn(f"CP-SAT {why}; the plan is the best found, within "
                      f"{_items.height(items, offs) / max(bound, 1) - 1:.2%} of the proved "
                      "bound", SolverTimeoutWarning, stacklevel=2)
    named = {b.name: o for b, o in zip(problem.buffers, offs, strict=True)}
    arena = arena_of(problem, named)
    return Plan(offsets=named, arena_bytes=arena, method="cpsat",
                solve_s=time.perf_counter() - t0, status=status, lower_bound_bytes=lb,
                info=info, bound_bytes=arena if status == "optimal" else bound)
