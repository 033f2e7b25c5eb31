"""The plan checker: the executable invariant every plan must pass.

A plan is valid when (1) every buffer of the problem, and nothing else, has
an offset, (2) every offset is a non-negative multiple of the alignment,
(3) every buffer fits below the arena size, and (4) no two buffers whose
lifetimes share a step share a byte.
"""

from __future__ import annotations

from llmc.errors import IRError
from llmc.passes.memplan.problem import Plan, Problem


def check_plan(problem: Problem, plan: Plan, arena_bytes: int | None = None) -> None:
    """Raise :class:`IRError` naming what is wrong with ``plan``; return None if valid.

    ``arena_bytes`` is the capacity to fit in; by default ``plan.arena_bytes``.
    Overlaps are found by a sweep over lifetimes, comparing each buffer only
    with those still live when it starts.
    """
    offs = plan.offsets
    names = {b.name for b in problem.buffers}
    missing = sorted(names - offs.keys())
    if missing:
        raise IRError(f"memory plan has no offset for buffer(s) {missing[:10]}")
    extra = sorted(offs.keys() - names)
    if extra:
        raise IRError(f"memory plan places unknown buffer(s) {extra[:10]}")
    limit = plan.arena_bytes if arena_bytes is None else arena_bytes
    if arena_bytes is not None and plan.arena_bytes > arena_bytes:
        raise IRError(
            f"memory plan needs {plan.arena_bytes} bytes but the arena has {arena_bytes}"
        )
    for b in problem.buffers:
        o = offs[b.name]
        if not isinstance(o, int) or isinstance(o, bool) or o < 0:
            raise IRError(f"buffer {b.name!r}: offset {o!r} is not a non-negative integer")
        if o % problem.alignment:
            raise IRError(
                f"buffer {b.name!r}: offset {o} is not a multiple of the alignment "
                f"{problem.alignment}"
            )
        if b.size and o + b.size > limit:
            raise IRError(
                f"buffer {b.name!r} ({b.size} bytes at offset {o}) ends at byte "
                f"{o + b.size}, past the arena of {limit} bytes"
            )
    _check_overlaps(problem, offs)


def _check_overlaps(problem: Problem, offs: dict[str, int]) -> None:
    bufs = sorted((b for b in problem.buffers if b.size), key=lambda b: (b.start, b.name))
    active: list = []
    for b in bufs:
        active = [a for a in active if a.end >= b.start]
        lo, hi = offs[b.name], offs[b.name] + b.size
        for a in active:
            alo, ahi = offs[a.name], offs[a.name] + a.size
            if lo < ahi and alo < hi:
                s0, s1 = max(a.start, b.start), min(a.end, b.end)
                raise IRError(
                    f"buffers {a.name!r} (bytes {alo}..{ahi - 1}, steps {a.start}..{a.end}) "
                    f"and {b.name!r} (bytes {lo}..{hi - 1}, steps {b.start}..{b.end}) "
                    f"overlap at bytes {max(lo, alo)}..{min(hi, ahi) - 1} while both live "
                    f"at steps {s0}..{s1}"
                )
        active.append(b)
