"""The placement core, shared by every method: rigid items made of parts.

A plain buffer is an item with one part. The MEMO decomposition also needs
rigid bodies: a block whose internal layout is fixed (one part per footprint
rectangle, at relative offsets) and one buffer slot that is live in several
disjoint windows (several parts at relative offset 0). Placing an item picks
one base offset; part ``p`` then occupies ``[base + rel, base + rel + size)``
over its steps ``[start, end]``.

An item may carry a placement ``Rule`` (an alignment, a bank window):
every placement below moves a base up to the next one the rule allows.

Everything here works in integer bytes (or any integer unit) and is pure.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    rel: int
    size: int
    start: int
    end: int


@dataclass(frozen=True)
class Rule:
    """Bases allowed: multiples of ``align`` whose remainder modulo ``period``
    (when non-zero: a bank) is at most ``slack`` (0: on a bank boundary)."""

    align: int = 1
    period: int = 0
    slack: int = 0

    def fix(self, c: int) -> int:
        """The least allowed base >= c (monotone in c)."""
        c = -(-c // self.align) * self.align
        if self.period and c % self.period > self.slack:
            c = (c // self.period + 1) * self.period
        return c

    def allows(self, c: int) -> bool:
        return c % self.align == 0 and (not self.period or c % self.period <= self.slack)

    def scaled(self, unit: int) -> Rule:
        return Rule(self.align // unit, self.period // unit, self.slack // unit)


@dataclass(frozen=True)
class Item:
    name: str
    parts: tuple[Part, ...]
    rule: Rule | None = None

    def fix(self, c: int) -> int:
        return c if self.rule is None else self.rule.fix(c)

    @property
    def height(self) -> int:
        return max((p.rel + p.size for p in self.parts if p.size), default=0)

    @property
    def biggest(self) -> int:
        return max((p.size for p in self.parts), default=0)


# (index of the other item, my part index, its part index)
Conflict = tuple[int, int, int]


def conflicts(items: Sequence[Item]) -> list[list[Conflict]]:
    """For each item, the (other item, my part, its part) pairs live together.

    Sweep over part starts keeping the parts still alive: O(P log P + pairs).
    Parts of zero size never conflict.
    """
    flat = sorted(
        (p.start, p.end, i, k)
        for i, it in enumerate(items)
        for k, p in enumerate(it.parts)
        if p.size > 0
    )
    out: list[list[Conflict]] = [[] for _ in items]
    active: list[tuple[int, int, int]] = []  # (end, item, part)
    for start, end, i, k in flat:
        active = [a for a in active if a[0] >= start]
        for _, j, q in active:
            if j != i:
                out[i].append((j, k, q))
                out[j].append((i, q, k))
        active.append((end, i, k))
    return out


def load_bound(items: Sequence[Item]) -> int:
    """Max over steps of the sum of live part sizes (a lower bound on height)."""
    delta: dict[int, int] = {}
    for it in items:
        for p in it.parts:
            if p.size:
                delta[p.start] = delta.get(p.start, 0) + p.size
                delta[p.end + 1] = delta.get(p.end + 1, 0) - p.size
    live = best = 0
    for step in sorted(delta):
        live += delta[step]
        best = max(best, live)
    return best


def height(items: Sequence[Item], offsets: Sequence[int]) -> int:
    tops = (o + it.height for it, o in zip(items, offsets, strict=True) if it.height)
    return max(tops, default=0)


def _blocked(
    item: Item, placed: list[Conflict], items: Sequence[Item], offsets: list[int | None]
) -> list[tuple[int, int]]:
    """The bases ``item`` may not take, as merged open intervals ``(a, b)``.

    Part ``k`` at base ``c`` overlaps a placed part at ``[lo, lo + size)``
    exactly when ``lo - rel_k - size_k < c < lo + size - rel_k``; the union
    of these open intervals, merged and sorted, is every forbidden base. Two
    intervals that only touch leave their common end free.
    """
    raw = []
    for j, k, q in placed:
        p, r = item.parts[k], items[j].parts[q]
        lo = offsets[j] + r.rel  # type: ignore[operator]
        raw.append((lo - p.rel - p.size, lo + r.size - p.rel))
    raw.sort()
    merged: list[tuple[int, int]] = []
    for a, b in raw:
        if merged and a < merged[-1][1]:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def place(
    items: Sequence[Item],
    order: Sequence[int],
    cons: list[list[Conflict]],
    fit: str = "first",
) -> list[int]:
    """Place ``items`` one by one in ``order`` (TFLite's greedy planner).

    Each item goes to the lowest base where none of its parts overlaps a
    placed, time-overlapping part (``fit="first"``: the first gap), or, for
    ``fit="best"``, to the smallest gap its (single) part fits in. The free
    bases are the complement of the merged forbidden intervals
    (:func:`_blocked`), so a gap begins at 0 or at an interval's end: one
    sort per item instead of a test per candidate.
    """
    offsets: list[int | None] = [None] * len(items)
    for i in order:
        it = items[i]
        placed = [(j, k, q) for j, k, q in cons[i] if offsets[j] is not None]
        blocked = _blocked(it, placed, items, offsets)
        # free candidate bases >= 0, in increasing order
        feasible = [] if any(a < 0 < b for a, b in blocked) else [0]
        feasible += [b for _, b in blocked if b > 0]
        if it.rule is not None:
            feasible = sorted({_settle(it, c, blocked) for c in feasible or [0]})
        if fit == "best" and len(it.parts) == 1 and len(feasible) > 1:
            bottoms = sorted(offsets[j] + items[j].parts[q].rel  # type: ignore[operator]
                             for j, _, q in placed)
            offsets[i] = min(feasible, key=lambda c: (_gap(c, bottoms), c))
        else:
            offsets[i] = feasible[0]
    return [o or 0 for o in offsets]


def _settle(item: Item, c: int, blocked: list[tuple[int, int]]) -> int:
    """The least base >= c that ``item``'s rule allows and no interval blocks."""
    starts = [a for a, _ in blocked]
    while True:
        c = item.fix(c)
        k = bisect.bisect_left(starts, c) - 1  # the last interval opening below c
        if k >= 0 and c < blocked[k][1]:
            c = blocked[k][1]
        else:
            return c


def _gap(base: int, bottoms: list[int]) -> float:
    """Size of the free gap that starts at ``base`` (inf above everything):
    the distance to the lowest placed part starting at or above it."""
    k = bisect.bisect_left(bottoms, base)
    return (bottoms[k] - base) if k < len(bottoms) else float("inf")


def compact(items: Sequence[Item], offsets: Sequence[int | float], cons: list[list[Conflict]]
            ) -> list[int]:
    """Drop every item as low as the above/below order of ``offsets`` allows.

    Reads which part lies below which in a (possibly fractional, solver-made)
    placement, then finds the least integer bases that keep that order: the
    longest-path solution of the difference constraints
    ``base_j >= base_i + rel_p + size_p - rel_q`` (Bellman-Ford from 0),
    each base moved up to the next its rule allows (a monotone step, so the
    least fixed point is still found). The result is integral, never higher
    than a valid input, and canonical.
    """
    eps = 1e-6
    edges: list[tuple[int, int, int]] = []
    for i, cl in enumerate(cons):
        for j, k, q in cl:
            p, r = items[i].parts[k], items[j].parts[q]
            if offsets[i] + p.rel + p.size <= offsets[j] + r.rel + eps:
                edges.append((i, j, p.rel + p.size - r.rel))
    # Relaxing edges in order of their source's offset converges in one pass
    # when the order is acyclic over bases (always so for one-part items).
    edges.sort(key=lambda e: (offsets[e[0]], e[0], e[1]))
    base = [it.fix(0) for it in items]
    for _ in range(len(items) + 1):
        changed = False
        for i, j, w in edges:
            if base[i] + w > base[j]:
                base[j] = items[j].fix(base[i] + w)
                changed = True
        if not changed:
            return base
    raise AssertionError("placement order has a cycle; offsets were not a valid placement")


def valid(items: Sequence[Item], offsets: Sequence[int], cons: list[list[Conflict]]) -> bool:
    """True when no two time-overlapping parts share an address."""
    for i, cl in enumerate(cons):
        for j, k, q in cl:
            p, r = items[i].parts[k], items[j].parts[q]
            a, b = offsets[i] + p.rel, offsets[j] + r.rel
            if a < b + r.size and b < a + p.size:
                return False
    return all(o >= 0 and (it.rule is None or it.rule.allows(o))
               for it, o in zip(items, offsets, strict=True))


def size_order(items: Sequence[Item]) -> list[int]:
    """Largest first; ties by earliest start, then name (deterministic)."""
    def key(i: int) -> tuple[int, int, str]:
        it = items[i]
        start = min((p.start for p in it.parts), default=0)
        return (-it.biggest, start, it.name)
    return sorted(range(len(items)), key=key)


def area_order(items: Sequence[Item]) -> list[int]:
    """Largest size x lifetime first (a second order the warm start tries)."""
    def key(i: int) -> tuple[int, str]:
        return (-sum(p.size * (p.end - p.start + 1) for p in items[i].parts), items[i].name)
    return sorted(range(len(items)), key=key)


def start_order(items: Sequence[Item]) -> list[int]:
    """Earliest start first, larger first on ties (an online allocator's order)."""
    def key(i: int) -> tuple[int, int, str]:
        it = items[i]
        return (min((p.start for p in it.parts), default=0), -it.biggest, it.name)
    return sorted(range(len(items)), key=key)


def best_heuristic(items: Sequence[Item], cons: list[list[Conflict]]) -> list[int]:
    """The lowest of several greedy placements: the size, area and start orders
    with first and best fit, then size orders with each size scaled by a random
    factor in [0.7, 1.4] (a fixed seed, so the result is deterministic), which
    often finds a lower plan than any one fixed order."""
    best: list[int] | None = None
    rng = random.Random(0)
    restarts = max(4, min(100, 4000 // max(1, len(items))))
    bound = load_bound(items)
    orders = [size_order(items), area_order(items), start_order(items)]
    for k in range(len(orders) + restarts):
        if k < len(orders):
            order = orders[k]
        else:
            noise = [rng.uniform(0.7, 1.4) for _ in items]
            order = sorted(range(len(items)), key=lambda i: (-items[i].biggest * noise[i], i))
        for fit in ("first", "best"):
            offs = place(items, order, cons, fit)
            if best is None or height(items, offs) < height(items, best):
                best = offs
        if best is not None and height(items, best) <= bound:
            break
    return best or []
