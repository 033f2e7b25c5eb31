"""MEMO-style bi-level planning: solve one layer, reuse it, then the model.

MEMO (Zhao et al., arXiv 2407.12117, Sec. 4) observes that the layers of a
transformer have identical memory behaviour, so it solves the placement MIP
for one layer and then the whole model with each layer as one block. Here:

1. Buffers tagged with the same ``block`` key form a block; its *span* is the
   hull of their lifetimes. Untagged buffers whose lifetime meets a span (the
   residual stream, say) are *carried* into it: the part of their lifetime
   inside the span is a *piece* of the block.
2. A block's *signature* is its span length plus the sorted (aligned size,
   relative start, relative end) of its buffers and pieces. Blocks with the
   same signature form a *class*; each class is planned once (greedy warm
   start + MIP) and the layout is reused at every block, offset-shifted.
3. A carried buffer that leaves one block of a class and enters the next one
   of the same class (layer i's output is layer i+1's input) must sit at the
   same address in both. Planning its outgoing and incoming pieces as *one*
   slot of the class layout makes the layout periodic, so every layer can sit
   at the same base and the residual stream needs no extra room.
4. Blocks linked by carried buffers become one rigid group (their buffers at
   fixed relative offsets); the model is then planned with each group and
   each remaining buffer as one item. A group keeps its buffers' exact
   rectangles rather than one footprint box, so another buffer may use a
   hole in a layer's layout.

The result is checked on the flattened buffers and compared with flat
greedy-by-size and best-fit plans; the lowest valid plan is returned.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Hashable
from dataclasses import dataclass

from llmc.errors import IRError
from llmc.passes.memplan import _items
from llmc.passes.memplan._items import Item, Part
from llmc.passes.memplan.check import check_plan
from llmc.passes.memplan.heuristics import best_fit, greedy_by_size, items_of
from llmc.passes.memplan.mip import SolverTimeoutWarning, solve_items
from llmc.passes.memplan.problem import Buffer, Plan, Problem, arena_of, lower_bound

log = logging.getLogger("llmc.memplan")


@dataclass
class _Block:
    key: Hashable
    start: int
    end: int
    # (buffer name, aligned size, start, end, is a carried piece); steps are
    # relative to the span's start once the block is built
    slots: list[tuple[str, int, int, int, bool]]
    sig: tuple = ()


@dataclass
class _Class:
    blocks: list[_Block]
    unions: list[list[int]]  # slot indices planned as one item
    layout: list[int]  # offset of each slot
    footprint: int = 0
    stats: dict | None = None


def _blocks(problem: Problem) -> tuple[list[_Block], list[Buffer], dict[str, list[tuple[int, int]]]]:
    """Blocks ordered by span, the carried buffers, and each carried buffer's
    (block index, slot index) pieces."""
    groups: dict[Hashable, list[Buffer]] = {}
    carried: list[Buffer] = []
    for b in problem.buffers:
        if b.block is None:
            carried.append(b)
        else:
            groups.setdefault(b.block, []).append(b)
    blocks = [
        _Block(k, min(b.start for b in bs), max(b.end for b in bs),
               [(b.name, problem.aligned(b.size), b.start, b.end, False) for b in bs])
        for k, bs in groups.items()
    ]
    blocks.sort(key=lambda blk: (blk.start, blk.end, repr(blk.key)))
    pieces: dict[str, list[tuple[int, int]]] = {}
    for g in sorted(carried, key=lambda b: (b.start, b.name)):
        for bi, blk in enumerate(blocks):
            if g.start <= blk.end and blk.start <= g.end:
                blk.slots.append((g.name, problem.aligned(g.size),
                                  max(g.start, blk.start), min(g.end, blk.end), True))
                pieces.setdefault(g.name, []).append((bi, -1))
    for blk in blocks:
        # relative lifetimes, then a canonical slot order shared by the class
        blk.slots = sorted(
            ((n, s, a - blk.start, e - blk.start, c) for n, s, a, e, c in blk.slots),
            key=lambda x: (x[2], x[3], -x[1], x[4], x[0]),
        )
        kinds = tuple(sl[1:] for sl in blk.slots)
        blk.sig = (blk.end - blk.start, kinds)
    for name, lst in pieces.items():
        pieces[name] = [
            (bi, next(k for k, sl in enumerate(blocks[bi].slots) if sl[0] == name))
            for bi, _ in lst
        ]
    return blocks, carried, pieces


def _classes(blocks: list[_Block], pieces: dict[str, list[tuple[int, int]]]) -> list[_Class]:
    """Group blocks by signature and unify the slots a carried buffer links."""
    by_sig: dict[tuple, _Class] = {}
    cls_of: list[_Class] = []
    for blk in blocks:
        c = by_sig.setdefault(blk.sig, _Class([], [], []))
        c.blocks.append(blk)
        cls_of.append(c)
    for c in by_sig.values():
        c.unions = [[k] for k in range(len(c.blocks[0].slots))]
    for name in sorted(pieces):
        lst = pieces[name]
        for (b0, s0), (b1, s1) in zip(lst, lst[1:]):
            if cls_of[b0] is cls_of[b1]:
                _unify(cls_of[b0], s0, s1)
    return list(by_sig.values())


def _unify(c: _Class, s0: int, s1: int) -> None:
    """Plan slots s0 and s1 of class c as one item, if they never live together."""
    u0 = next(u for u in c.unions if s0 in u)
    u1 = next(u for u in c.unions if s1 in u)
    if u0 is u1:
        return
    slots = c.blocks[0].slots
    merged = u0 + u1
    if len({slots[k][1] for k in merged}) != 1:
        return
    spans = sorted((slots[k][2], slots[k][3]) for k in merged)
    if any(a[1] >= b[0] for a, b in zip(spans, spans[1:])):
        return
    c.unions.remove(u1)
    u0.extend(u1)
    u0.sort()


def _solve_class(c: _Class, time_limit_s: float, pins: dict[int, int]) -> None:
    """Plan one class's slots; ``pins`` fixes some slots' offsets (slot -> bytes)."""
    slots = c.blocks[0].slots
    items = [
        Item(slots[u[0]][0], tuple(Part(0, slots[k][1], slots[k][2], slots[k][3]) for k in u))
        for u in c.unions
    ]
    cons = _items.conflicts(items)
    pinned: dict[int, int] = {}
    for i, u in enumerate(c.unions):
        want = next((pins[k] for k in u if k in pins), None)
        trial = {**pinned, i: want} if want is not None else pinned
        idx = sorted(trial)
        sub = [items[j] for j in idx]
        if want is not None and _items.valid(sub, [trial[j] for j in idx], _items.conflicts(sub)):
            pinned = trial
    warm = _items.best_heuristic(items, cons, pinned)
    lb = _items.load_bound(items)
    offs, status, info = solve_items(items, warm, lb, time_limit_s, pinned)
    if not pinned:
        # Upside down is as good; prefer the way up that keeps carried slots
        # low, where the classes planned next will be pinned to meet them.
        top = _items.height(items, offs)
        flip = [top - o - it.height for o, it in zip(offs, items)]
        carried = [i for i, u in enumerate(c.unions) if any(slots[k][4] for k in u)]
        if sum(flip[i] for i in carried) < sum(offs[i] for i in carried):
            offs = flip
    c.layout = [0] * len(slots)
    for u, o in zip(c.unions, offs):
        for k in u:
            c.layout[k] = o
    c.footprint = _items.height(items, offs)
    c.stats = {"blocks": len(c.blocks), "items": len(items), "lower_bound_bytes": lb,
               "footprint_bytes": c.footprint, "pinned": len(pinned), "status": status, **info}


def _pins(c: _Class, solved: list[_Class], block_cls: list[_Class],
          pieces: dict[str, list[tuple[int, int]]]) -> dict[int, int]:
    """Slots of class ``c`` that must sit where an already planned class put the
    same carried buffer, so that blocks of different classes (a first or last
    layer, alternating layer kinds) still share one base."""
    pins: dict[int, int] = {}
    for name in sorted(pieces):
        lst = pieces[name]
        known = [(b, s) for b, s in lst if any(block_cls[b] is d for d in solved)]
        if known:
            value = block_cls[known[0][0]].layout[known[0][1]]
            for b, s in lst:
                if block_cls[b] is c:
                    pins.setdefault(s, value)
    return pins


class _Groups:
    """Rigid groups: blocks (and carried buffers) at fixed offsets from each other.

    A group keeps its buffers as parts (relative offset, size, steps), so a
    later buffer can use any hole of a block's layout, not just the room above
    its footprint.
    """

    def __init__(self, blocks: list[_Block], layouts: list[list[int]]) -> None:
        self.of = list(range(len(blocks)))
        self.rel = [0] * len(blocks)
        self.parts: dict[int, list[Part]] = {
            i: [Part(layouts[i][k], size, blk.start + a, blk.start + e)
                for k, (name, size, a, e, piece) in enumerate(blk.slots) if not piece]
            for i, blk in enumerate(blocks)
        }

    def attach(self, g: Buffer, size: int, links: list[tuple[int, int]]) -> bool:
        """Fix carried buffer ``g`` at ``links`` [(block, offset of its slot there)].

        Merges the linked blocks' groups so that ``g`` has one address in all
        of them; returns False (and changes nothing) if the offsets disagree
        or the merged buffers would overlap.
        """
        of, rel = list(self.of), list(self.rel)
        b0, l0 = links[0]
        root, target = of[b0], rel[b0] + l0
        sources = [Item("base", tuple(self.parts[root]))]
        for b, l in links[1:]:
            if of[b] == root:
                if rel[b] + l != target:
                    return False
                continue
            gone, shift = of[b], target - l - rel[b]
            for m in range(len(of)):
                if of[m] == gone:
                    of[m], rel[m] = root, rel[m] + shift
            sources.append(Item(f"g{gone}", tuple(
                Part(p.rel + shift, p.size, p.start, p.end) for p in self.parts[gone])))
        sources.append(Item(g.name, (Part(target, size, g.start, g.end),)))
        if not _items.valid(sources, [0] * len(sources), _items.conflicts(sources)):
            return False
        for gone in {int(it.name[1:]) for it in sources[1:-1]}:
            del self.parts[gone]
        self.parts[root] = [p for it in sources for p in it.parts]
        self.of, self.rel = of, rel
        return True


def plan_blocks(problem: Problem, time_limit_s: float = 30.0) -> Plan:
    """Plan a problem whose buffers carry ``block`` keys (module docstring).

    ``time_limit_s`` bounds the MIP time of all classes and the top level
    together. The plan is verified with :func:`check_plan` and is never worse
    than greedy-by-size or best-fit on the flattened problem.
    """
    t0 = time.perf_counter()
    deadline = t0 + time_limit_s
    blocks, carried, pieces = _blocks(problem)
    classes = _classes(blocks, pieces)
    cls_of = {id(blk): c for c in classes for blk in c.blocks}
    block_cls = [cls_of[id(blk)] for blk in blocks]
    for k, c in enumerate(classes):
        left = max(0.0, deadline - time.perf_counter())
        _solve_class(c, 0.7 * left / (len(classes) - k), _pins(c, classes[:k], block_cls, pieces))
    groups = _Groups(blocks, [cls_of[id(b)].layout for b in blocks])
    attached: dict[str, tuple[int, int]] = {}  # carried name -> (a block, offset in block)
    free: list[Buffer] = []
    for g in sorted(carried, key=lambda b: (b.start, b.name)):
        links = [(bi, cls_of[id(blocks[bi])].layout[s]) for bi, s in pieces.get(g.name, [])]
        if links and groups.attach(g, problem.aligned(g.size), links):
            attached[g.name] = links[0]
        else:
            free.append(g)
    offsets, top_stats = _place_top(problem, blocks, groups, free, deadline)
    for bi, blk in enumerate(blocks):
        layout = cls_of[id(blk)].layout
        for k, slot in enumerate(blk.slots):
            if not slot[4]:  # the block's own buffers
                offsets[slot[0]] = offsets[f"\0block{bi}"] + layout[k]
    for name, (b0, l0) in attached.items():
        offsets[name] = offsets[f"\0block{b0}"] + l0
    offsets = {b.name: offsets[b.name] for b in problem.buffers}
    info = {
        "blocks": len(blocks), "classes": len(classes),
        "class_stats": [c.stats for c in classes],
        "carried": len(carried), "carried_free": len(free), "top": top_stats,
    }
    unproved = [st for st in [c.stats for c in classes] + [top_stats]
                if st and st["status"] in ("feasible", "warm") and "cbc_status" in st]
    if unproved:
        warnings.warn(f"block decomposition: {len(unproved)} sub-problem(s) stopped at the "
                      f"{time_limit_s} s time limit; the plan is the best found",
                      SolverTimeoutWarning, stacklevel=2)
    return _best(problem, offsets, info, t0, deadline)


def _place_top(problem: Problem, blocks: list[_Block], groups: _Groups, free: list[Buffer],
               deadline: float) -> tuple[dict[str, int], dict[str, object]]:
    """Place each rigid group and each free carried buffer; return block bases."""
    items: list[Item] = []
    roots = sorted(set(groups.of))
    for g in roots:
        parts = groups.parts[g]
        low = min((p.rel for p in parts), default=0)
        items.append(Item(f"\0group{g}", tuple(
            Part(p.rel - low, p.size, p.start, p.end) for p in parts)))
    for b in free:
        items.append(Item(b.name, (Part(0, problem.aligned(b.size), b.start, b.end),)))
    cons = _items.conflicts(items)
    warm = _items.best_heuristic(items, cons)
    offs, status, info = solve_items(items, warm, _items.load_bound(items),
                                     max(0.0, 0.5 * (deadline - time.perf_counter())))
    out: dict[str, int] = {}
    for gi, g in enumerate(roots):
        low = min((p.rel for p in groups.parts[g]), default=0)
        for bi in range(len(blocks)):
            if groups.of[bi] == g:
                out[f"\0block{bi}"] = offs[gi] - low + groups.rel[bi]
    for b, o in zip(free, offs[len(roots):]):
        out[b.name] = o
    return out, {"items": len(items), "status": status, **info}


POLISH_MAX_BUFFERS = 400  # flat MIP polish only below this many buffers


def _best(problem: Problem, offsets: dict[str, int], info: dict, t0: float, deadline: float
          ) -> Plan:
    """The lowest valid plan among the decomposed one and flat greedy ones; on a
    small problem not yet at the lower bound, a flat MIP then polishes it."""
    lb = lower_bound(problem)
    cands: list[tuple[int, str, dict[str, int]]] = []
    try:
        memo = Plan(offsets, arena_of(problem, offsets), "memo", 0.0)
        check_plan(problem, memo)
        cands.append((memo.arena_bytes, "memo", offsets))
    except IRError as e:  # a bug, but the user still gets a valid plan
        warnings.warn(f"block decomposition produced an invalid plan ({e}); using greedy",
                      stacklevel=3)
    for fn in (greedy_by_size, best_fit):
        p = fn(problem)
        cands.append((p.arena_bytes, p.method, p.offsets))
    arena, source, offs = min(cands, key=lambda c: (c[0], c[1] != "memo"))
    left = deadline - time.perf_counter()
    if arena > lb and len(problem.buffers) <= POLISH_MAX_BUFFERS and left > 0:
        items = items_of(problem)
        flat, status, _ = solve_items(items, [offs[b.name] for b in problem.buffers], lb, left)
        polished = {b.name: o for b, o in zip(problem.buffers, flat)}
        if arena_of(problem, polished) < arena:
            arena, source, offs = arena_of(problem, polished), source + "+flat-mip", polished
    info["source"] = source
    return Plan(
        offsets=offs, arena_bytes=arena, method="memo", solve_s=time.perf_counter() - t0,
        status="optimal" if arena == lb else "feasible", lower_bound_bytes=lb, info=info,
    )
