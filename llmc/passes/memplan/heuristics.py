"""Greedy planners after TensorFlow Lite's arena planner.

TFLite (``tensorflow/lite/simple_planner.cc`` / TFLM
``greedy_memory_planner.cc``) sorts tensors by size, largest first, and puts
each at the first gap, among the already placed tensors whose lifetimes
overlap its own, that is large enough. The best-fit variant takes the
smallest such gap instead of the first.
"""

from __future__ import annotations

import time

from llmc.passes.memplan import _items
from llmc.passes.memplan.problem import Buffer, Plan, Problem, arena_of, lower_bound


def items_of(problem: Problem) -> list[_items.Item]:
    """One single-part item per buffer, sizes rounded up to the alignment,
    with the buffer's placement rule where it has one."""
    return [
        _items.Item(b.name, (_items.Part(0, problem.aligned(b.size), b.start, b.end),),
                    rule_of(problem, b))
        for b in problem.buffers
    ]


def rule_of(problem: Problem, b: Buffer) -> _items.Rule | None:
    """The placement rule of ``b`` (None: the problem's alignment is enough,
    as sizes are multiples of it)."""
    align, slack = problem.align_of(b), problem.slack_of(b)
    if slack is None:
        return None if align == problem.alignment else _items.Rule(align)
    return _items.Rule(align, problem.bank_bytes or 0, slack)


def _plan(problem: Problem, offsets: list[int], method: str, t0: float) -> Plan:
    offs = {b.name: o for b, o in zip(problem.buffers, offsets, strict=True)}
    arena = arena_of(problem, offs)
    lb = lower_bound(problem)
    return Plan(
        offsets=offs,
        arena_bytes=arena,
        method=method,
        solve_s=time.perf_counter() - t0,
        status="optimal" if arena == lb else "heuristic",
        lower_bound_bytes=lb,
    )


def greedy_by_size(problem: Problem) -> Plan:
    """TFLite greedy-by-size: largest first (ties: earlier start, then name), first gap."""
    t0 = time.perf_counter()
    items = items_of(problem)
    cons = _items.conflicts(items)
    offsets = _items.place(items, _items.size_order(items), cons, fit="first")
    return _plan(problem, offsets, "greedy", t0)


def best_fit(problem: Problem) -> Plan:
    """Largest first, like :func:`greedy_by_size`, but into the smallest gap that fits."""
    t0 = time.perf_counter()
    items = items_of(problem)
    cons = _items.conflicts(items)
    offsets = _items.place(items, _items.size_order(items), cons, fit="best")
    return _plan(problem, offsets, "bestfit", t0)


def best_heuristic(problem: Problem) -> Plan:
    """The lowest of several greedy orders and fits (the MIP's warm start)."""
    t0 = time.perf_counter()
    items = items_of(problem)
    cons = _items.conflicts(items)
    return _plan(problem, _items.best_heuristic(items, cons), "heuristic", t0)
