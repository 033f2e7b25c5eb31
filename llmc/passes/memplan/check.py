"""The plan checker: the executable invariant every plan must pass.

A plan is valid when (1) every buffer of the problem, and nothing else, has
an offset, (2) every offset is a non-negative multiple of the buffer's
alignment and obeys its bank rule, (3) every buffer fits below the arena
size, and (4) no two buffers whose lifetimes share a step share a byte.

A plan with spills (``Plan.spills``) is checked the same way stay by stay:
a spilled buffer's segments must lie inside its lifetime, in order, begin
at its first step and end at its last, and cover every step it is written
or read (its anchors); each segment obeys (2)-(4) against every other
buffer's stay. Every live byte is then either in the arena at a
non-overlapping offset or in DRAM for that interval.
"""

from __future__ import annotations

from llmc.errors import IRError
from llmc.passes.memplan.problem import Buffer, Plan, Problem, Segment

# (buffer, its segment: steps and offset) -- one per stay in the arena
Stay = tuple[Buffer, Segment]


def check_plan(problem: Problem, plan: Plan, arena_bytes: int | None = None) -> None:
    """Raise :class:`IRError` naming what is wrong with ``plan``; return None if valid.

    ``arena_bytes`` is the capacity to fit in; by default ``plan.arena_bytes``.
    Overlaps are found by a sweep over lifetimes, comparing each stay only
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
    stays = _stays(problem, plan)
    for b, seg in stays:
        _check_offset(problem, b, seg.offset, limit)
    _check_overlaps(stays)


def _stays(problem: Problem, plan: Plan) -> list[Stay]:
    segments = plan.spills.segments if plan.spills is not None else {}
    unknown = sorted(set(segments) - {b.name for b in problem.buffers})
    if unknown:
        raise IRError(f"memory plan spills unknown buffer(s) {unknown[:10]}")
    out: list[Stay] = []
    for b in problem.buffers:
        segs = segments.get(b.name)
        if segs is None:
            out.append((b, Segment(b.start, b.end, plan.offsets[b.name])))
            continue
        _check_segments(b, segs, plan.offsets[b.name])
        out += [(b, s) for s in segs]
    return out


def _check_segments(b: Buffer, segs: tuple[Segment, ...], offset: int) -> None:
    if not segs:
        raise IRError(f"buffer {b.name!r} is spilled but has no segment in the arena")
    if segs[0].start != b.start or segs[-1].end != b.end:
        raise IRError(f"buffer {b.name!r}: its segments span steps {segs[0].start}.."
                      f"{segs[-1].end}, not its lifetime {b.start}..{b.end}")
    if segs[0].offset != offset:
        raise IRError(f"buffer {b.name!r}: offset {offset} is not its first segment's "
                      f"({segs[0].offset})")
    for s, t in zip(segs, segs[1:], strict=False):
        if not (s.start <= s.end < t.start - 1 < t.start <= t.end):
            raise IRError(f"buffer {b.name!r}: segments {s.start}..{s.end} and "
                          f"{t.start}..{t.end} are out of order or leave no step spilled")
    for a, e in b.anchors():
        if not any(s.start <= a and e <= s.end for s in segs):
            raise IRError(f"buffer {b.name!r} is written or read at steps {a}..{e} but is "
                          "not in the arena for all of them (spilled)")


def _check_offset(problem: Problem, b: Buffer, o: int, limit: int) -> None:
    if not isinstance(o, int) or isinstance(o, bool) or o < 0:
        raise IRError(f"buffer {b.name!r}: offset {o!r} is not a non-negative integer")
    align = problem.align_of(b)
    if o % align:
        raise IRError(f"buffer {b.name!r}: offset {o} is not a multiple of the alignment "
                      f"{align}")
    slack = problem.slack_of(b)
    if slack is not None and problem.bank_bytes and o % problem.bank_bytes > slack:
        bank = problem.bank_bytes
        rule = ("start on a bank boundary" if b.bank == "start" else
                f"stay within {-(-problem.aligned(b.size) // bank)} bank(s)")
        raise IRError(f"buffer {b.name!r} ({b.size} bytes at offset {o}) must {rule} "
                      f"of {bank} bytes")
    if b.size and o + b.size > limit:
        raise IRError(
            f"buffer {b.name!r} ({b.size} bytes at offset {o}) ends at byte "
            f"{o + b.size}, past the arena of {limit} bytes"
        )


def _check_overlaps(stays: list[Stay]) -> None:
    live = sorted((st for st in stays if st[0].size), key=lambda st: (st[1].start, st[0].name))
    active: list[Stay] = []
    for b, s in live:
        active = [a for a in active if a[1].end >= s.start]
        lo, hi = s.offset, s.offset + b.size
        for a, t in active:
            alo, ahi = t.offset, t.offset + a.size
            if lo < ahi and alo < hi:
                s0, s1 = max(t.start, s.start), min(t.end, s.end)
                raise IRError(
                    f"buffers {a.name!r} (bytes {alo}..{ahi - 1}, steps {t.start}..{t.end}) "
                    f"and {b.name!r} (bytes {lo}..{hi - 1}, steps {s.start}..{s.end}) "
                    f"overlap at bytes {max(lo, alo)}..{min(hi, ahi) - 1} while both live "
                    f"at steps {s0}..{s1}"
                )
        active.append((b, s))
