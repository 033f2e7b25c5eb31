"""Optimal placement as a mixed-integer program, solved by CBC through PuLP.

The formulation is MEMO's (Zhao et al., "MEMO: Fine-grained Tensor
Management For Ultra-long Context LLM Training", arXiv 2407.12117), which is
the classic dynamic-storage-allocation MIP:

    minimise  M
    s.t.      A_i >= 0,  A_i + S_i <= M                       for every buffer i
              A_i + S_i <= A_j + z_ij * Mcap                  for every pair i, j
              A_j + S_j <= A_i + (1 - z_ij) * Mcap            live at a common step

with binary ``z_ij`` (0: i below j). Here:

* sizes and offsets are divided by their GCD (a multiple of the alignment),
  which keeps the numbers small without losing any plan: a compacted plan has
  every offset equal to a sum of sizes;
* ``Mcap`` is the warm start's arena, the tightest valid big-M, and
  ``LB <= M <= Mcap`` with LB the live-bytes lower bound, so CBC stops as soon
  as a plan meets the bound and never returns worse than the warm start;
* symmetry breaking: of two buffers with the same size and lifetime, the one
  whose name sorts first is below; and, since mirroring a plan upside down
  keeps it valid, one pair of distinct buffers is fixed the right way up;
* the warm start is the best of several greedy plans (or one given), passed to
  CBC as an initial incumbent;
* the solver's offsets are compacted to integers (see ``_items.compact``) and
  re-verified; on a time-out the best plan found is returned with a warning.

Items with several parts (rigid blocks, see ``blocks.py``) get one binary per
pair of time-overlapping parts.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Sequence

from llmc.errors import LlmcError
from llmc.passes.memplan import _items
from llmc.passes.memplan._items import Item, Part
from llmc.passes.memplan.check import check_plan
from llmc.passes.memplan.heuristics import best_heuristic, items_of
from llmc.passes.memplan.problem import Plan, Problem, arena_of, lower_bound

log = logging.getLogger("llmc.memplan")


class SolverTimeoutWarning(UserWarning):
    """The MIP stopped at its time limit; the plan is the best found, not proved optimal."""


def solve_items(
    items: Sequence[Item],
    warm: Sequence[int],
    lb: int,
    time_limit_s: float,
) -> tuple[list[int], str, dict[str, object]]:
    """Optimal bases for ``items`` (bytes), starting from the valid placement ``warm``.

    Returns (offsets, status, info) with status "optimal", "feasible"
    (time limit hit with a plan) or "warm" (the solver found nothing better
    or failed; ``warm`` compacted is returned). Never worse than ``warm``.
    """
    cons = _items.conflicts(items)
    warm = _items.compact(items, warm, cons)
    ub_bytes = _items.height(items, warm)
    info: dict[str, object] = {"items": len(items)}
    if ub_bytes <= lb:
        return warm, "optimal", info
    unit = _unit(items)
    scaled = [_scale(it, unit) for it in items]
    ub, lbu = ub_bytes // unit, -(-lb // unit)
    if time_limit_s <= 0:
        return warm, "warm", info
    try:
        sol, status, extra = _cbc(scaled, cons, [w // unit for w in warm], lbu, ub, time_limit_s)
    except Exception as e:  # a missing or crashing solver must not lose the plan
        if isinstance(e, LlmcError):
            raise
        log.warning("MIP solver failed: %s", e)
        info["error"] = f"solver failed: {e}"
        return warm, "warm", info
    info.update(extra)
    if sol is None:
        return warm, "warm", info
    offs = [o * unit for o in _items.compact(scaled, sol, cons)]
    if not _items.valid(items, offs, cons) or _items.height(items, offs) > ub_bytes:
        log.warning("MIP solution failed verification; keeping the warm start")
        return warm, "warm", info
    return offs, status, info


def _unit(items: Sequence[Item]) -> int:
    """The largest unit every size, relative offset and rule is a multiple of."""
    g = 0
    for it in items:
        for p in it.parts:
            g = math.gcd(g, math.gcd(p.size, p.rel))
        if it.rule is not None:
            g = math.gcd(g, math.gcd(it.rule.align, math.gcd(it.rule.period, it.rule.slack)))
    return g or 1


def _scale(it: Item, unit: int) -> Item:
    return Item(it.name, tuple(
        Part(p.rel // unit, p.size // unit, p.start, p.end) for p in it.parts),
        None if it.rule is None else it.rule.scaled(unit))


def _pairs(items: Sequence[Item], cons: list[list[_items.Conflict]]
           ) -> list[tuple[int, int, int, int]]:
    """Distinct (i, j, offset gap i->j below, offset gap j->i below) constraints, i < j."""
    seen: set[tuple[int, int, int, int]] = set()
    out = []
    for i, cl in enumerate(cons):
        for j, k, q in cl:
            if j <= i:
                continue
            p, r = items[i].parts[k], items[j].parts[q]
            # i's part below j's: A_i + rel_p + size_p <= A_j + rel_q
            key = (i, j, p.rel + p.size - r.rel, r.rel + r.size - p.rel)
            if key not in seen:
                seen.add(key)
                out.append(key)
    return sorted(out)


def _symmetry(items: Sequence[Item], cons: list[list[_items.Conflict]]) -> set[tuple[int, int]]:
    """Pairs (i, j) fixed with i below j; see the module docstring."""
    fixed: set[tuple[int, int]] = set()
    groups: dict[tuple, list[int]] = {}
    for i, it in enumerate(items):
        groups.setdefault((it.parts, it.rule), []).append(i)
    single = all(len(it.parts) == 1 for it in items)
    for members in groups.values():
        if len(members) > 1 and single:
            members.sort(key=lambda i: items[i].name)
            for a in range(len(members)):
                for b in range(a + 1, len(members)):
                    fixed.add((members[a], members[b]))
    if single and all(it.rule is None for it in items):  # a mirror image breaks rules
        alone = {ms[0] for ms in groups.values() if len(ms) == 1}
        cands = sorted(
            (-items[i].biggest, -items[j].biggest, items[i].name, items[j].name, i, j)
            for i, cl in enumerate(cons) for j, _, _ in cl
            if i in alone and j in alone and items[i].name < items[j].name
        )
        if cands:
            fixed.add((cands[0][4], cands[0][5]))
    return fixed


def _respect(items: Sequence[Item], warm: list[int], fixed: set[tuple[int, int]], ub: int
             ) -> list[int]:
    """Rewrite a valid placement so it obeys the symmetry-breaking pairs."""
    warm = list(warm)
    if not fixed:
        return warm
    mirror = [(i, j) for i, j in fixed if items[i].parts != items[j].parts]
    for i, j in mirror:
        if warm[i] > warm[j]:
            warm = [ub - o - it.height for o, it in zip(warm, items, strict=True)]
    if all(len(it.parts) == 1 for it in items):
        groups: dict[tuple, list[int]] = {}
        for i, it in enumerate(items):
            groups.setdefault((it.parts, it.rule), []).append(i)
        for members in groups.values():
            names = sorted(members, key=lambda i: items[i].name)
            for i, o in zip(names, sorted(warm[m] for m in members), strict=True):
                warm[i] = o
    return warm


def _cbc(
    items: Sequence[Item],
    cons: list[list[_items.Conflict]],
    warm: list[int],
    lb: int,
    ub: int,
    time_limit_s: float,
) -> tuple[list[float] | None, str, dict[str, object]]:
    import pulp

    fixed = _symmetry(items, cons)
    warm = _respect(items, warm, fixed, ub)
    with warnings.catch_warnings():  # PuLP 3.x deprecation notices about its own API
        warnings.simplefilter("ignore", DeprecationWarning)
        prob = pulp.LpProblem("memplan", pulp.LpMinimize)
        peak = prob.add_variable("M", lowBound=lb, upBound=ub)
        prob += peak
        base = []
        for i, it in enumerate(items):
            v = prob.add_variable(f"A{i}", lowBound=0, upBound=max(0, ub - it.height))
            v.setInitialValue(warm[i])
            base.append(v)
            if it.height:
                prob += v + it.height <= peak
            if it.rule is not None:
                _rule_rows(prob, v, it.rule, i, warm[i])
        peak.setInitialValue(max(w + it.height for w, it in zip(warm, items, strict=True)))
        nbin = 0
        for i, j, up, down in _pairs(items, cons):
            if (i, j) in fixed:
                prob += base[i] + up <= base[j]
            elif (j, i) in fixed:
                prob += base[j] + down <= base[i]
            else:
                z = prob.add_variable(f"z{nbin}", cat="Binary")
                nbin += 1
                prob += base[i] + up <= base[j] + ub * z
                prob += base[j] + down <= base[i] + ub * (1 - z)
                z.setInitialValue(0 if warm[i] + up <= warm[j] else 1)
        solver = pulp.PULP_CBC_CMD(
            msg=False, timeLimit=max(time_limit_s, 0.01), warmStart=True, threads=1,
            gapAbs=0.999, **_quiet())
        t0 = time.perf_counter()
        prob.solve(solver)
    info: dict[str, object] = {"binaries": nbin, "cbc_s": round(time.perf_counter() - t0, 3),
                               "cbc_status": pulp.LpSolution.get(prob.sol_status, "?")}
    values = [v.value() for v in base]
    if prob.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible) or any(
        x is None for x in values
    ):
        return None, "warm", info
    status = "optimal" if prob.sol_status == pulp.LpSolutionOptimal else "feasible"
    return [float(x) for x in values], status, info


def _rule_rows(prob: object, v: object, rule: _items.Rule, i: int, warm: int) -> None:
    """base = align * k, and base - period * q in [0, slack] (k, q integers)."""
    k = prob.add_variable(f"k{i}", lowBound=0, cat="Integer")  # type: ignore[attr-defined]
    k.setInitialValue(warm // rule.align)
    prob += v == rule.align * k  # type: ignore[operator]
    if rule.period:
        q = prob.add_variable(f"q{i}", lowBound=0, cat="Integer")  # type: ignore[attr-defined]
        q.setInitialValue(warm // rule.period)
        prob += v - rule.period * q >= 0  # type: ignore[operator]
        prob += v - rule.period * q <= rule.slack  # type: ignore[operator]


def _quiet() -> dict[str, object]:
    import inspect

    import pulp

    params = inspect.signature(pulp.PULP_CBC_CMD.__init__).parameters
    return {"_skip_v4_deprecation": True} if "_skip_v4_deprecation" in params else {}


def warm_offsets(problem: Problem, warm_start: Plan | None) -> list[int]:
    """The solvers' starting offsets, in buffer order: the best greedy plan's,
    or ``warm_start``'s when it is valid and lower (an invalid one is ignored
    with a warning)."""
    greedy = best_heuristic(problem)
    best = greedy
    if warm_start is not None:
        try:
            check_plan(problem, warm_start)
        except LlmcError as e:
            warnings.warn(f"ignoring invalid warm start: {e}", stacklevel=3)
        else:
            if warm_start.arena_bytes < greedy.arena_bytes:
                best = warm_start
    return [best.offsets[b.name] for b in problem.buffers]


def solve_mip(
    problem: Problem, time_limit_s: float = 30.0, warm_start: Plan | None = None
) -> Plan:
    """Plan ``problem`` with the MEMO MIP (module docstring), within ``time_limit_s``.

    ``warm_start`` (a valid plan) is used if it beats the built-in greedy
    ones. On a time-out the best plan found is returned with a
    :class:`SolverTimeoutWarning` and ``status="feasible"``; the result is
    never worse than the warm start.
    """
    t0 = time.perf_counter()
    lb = lower_bound(problem)
    items = items_of(problem)
    warm = warm_offsets(problem, warm_start)
    offs, status, info = solve_items(items, warm, lb, time_limit_s)
    if status == "warm":
        status = "optimal" if _items.height(items, offs) <= lb else "feasible"
        if status != "optimal":
            cbc = info.get("cbc_status", "not run")
            why = info.get("error") or f"no better plan found within {time_limit_s} s: {cbc}"
            warnings.warn(f"MIP: {why}; using the greedy warm start", SolverTimeoutWarning,
                          stacklevel=2)
    elif status == "feasible":
        warnings.warn(f"MIP stopped at its {time_limit_s} s time limit; the plan is the best "
                      "found, not proved optimal", SolverTimeoutWarning, stacklevel=2)
    named = {b.name: o for b, o in zip(problem.buffers, offs, strict=True)}
    return Plan(
        offsets=named,
        arena_bytes=arena_of(problem, named),
        method="mip",
        solve_s=time.perf_counter() - t0,
        status=status,
        lower_bound_bytes=lb,
        info=info,
    )
