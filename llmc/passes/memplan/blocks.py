"""MEMO-style bi-level planning: solve one layer, reuse it, then the model.

MEMO (Zhao et al., arXiv 2407.12117, Sec. 4) observes that the layers of a
transformer have identical memory behaviour, so it solves the placement MIP
for one layer and then the whole model with each layer as one block. Here:

1. Buffers tagged with the same ``block`` key form a block; its *span* is the
   hull of their lifetimes. Untagged buffers whose lifetime meets a span (the
   residual stream, say) are *carried* into it: the part of their lifetime
   inside the span is a *piece* of the block. A buffer that lives right
   through some block (a K/V output kept to the end, a mask read by every
   layer) is no piece of any block: it would make every layer's signature
   different, and, being live at every step of such a block, it costs the
   same when it is placed around the blocks at the top level.
2. A block's *signature* is its span length plus the sorted (aligned size,
   relative start, relative end) of its buffers and pieces. Blocks with the
   same signature form a *class*; each class is planned once (greedy warm
   start + MIP) and the layout is reused at every block, offset-shifted.
3. A carried buffer that leaves one block and enters the next (layer i's
   output is layer i+1's input) must sit at the same address in both. Its
   outgoing and incoming pieces are therefore planned as *one* slot: within
   a class this makes the layout periodic, so every layer sits at the same
   base and the residual stream needs no extra room; across classes (a
   different first layer, alternating layer kinds) the linked classes are
   planned together in one MIP, each on its own stretch of time.
4. Blocks linked by carried buffers become one rigid group (their buffers at
   fixed relative offsets); the model is then planned with each group and
   each remaining buffer as one item. A group keeps its buffers' exact
   rectangles rather than one footprint box, so another buffer may use a
   hole in a layer's layout.

The result is checked on the flattened buffers and compared with flat
greedy-by-size and best-fit plans; the lowest valid plan is returned. Each
sub-problem is solved by the CP-SAT model (``cpsat.py``; MEMO used a MIP,
which ``mip.py`` keeps): on a whole problem CP-SAT alone matches this
decomposition, which stays for its speed on deep stacks of layers
(bench/results/memplan_hard.md). A shifted block layout would break
placement rules (a bank boundary moves with it), so a problem with rules is
planned flat by CP-SAT instead.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Hashable
from dataclasses import dataclass
from itertools import pairwise

from llmc.errors import IRError
from llmc.passes.memplan import _items
from llmc.passes.memplan._items import Item, Part
from llmc.passes.memplan.check import check_plan
from llmc.passes.memplan.cpsat import solve_cpsat
from llmc.passes.memplan.cpsat import solve_items_cpsat as solve_items
from llmc.passes.memplan.heuristics import best_fit, greedy_by_size, items_of
from llmc.passes.memplan.mip import SolverTimeoutWarning
from llmc.passes.memplan.problem import Buffer, Plan, Problem, arena_of, lower_bound

log = logging.getLogger("llmc.memplan")

POLISH_MAX_BUFFERS = 400  # flat MIP polish (see _best) only below this many buffers
POLISH_SHARE = 0.25  # and for at most this share of the time limit


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
    blocks: list[_Block]  # blocks with one signature; blocks[0] stands for all
    layout: list[int]  # offset of each slot, relative to the block's base
    footprint: int = 0


Pieces = dict[str, list[tuple[int, int]]]  # carried name -> [(block index, slot index)]


def _blocks(problem: Problem) -> tuple[list[_Block], list[Buffer], Pieces]:
    """Blocks ordered by span, the carried buffers, and their pieces."""
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
    pieces: Pieces = {}
    for g in sorted(carried, key=lambda b: (b.start, b.name)):
        if any(g.start < blk.start and blk.end < g.end for blk in blocks):
            continue  # passes through a whole block: planned around the blocks, see above
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


Node = tuple[int, int]  # (class index, slot index)


def _classes(blocks: list[_Block]) -> tuple[list[_Class], list[int]]:
    """Blocks grouped by signature (in order of first appearance), and each
    block's class index."""
    by_sig: dict[tuple, int] = {}
    classes: list[_Class] = []
    of: list[int] = []
    for blk in blocks:
        if blk.sig not in by_sig:
            by_sig[blk.sig] = len(classes)
            classes.append(_Class([], []))
        of.append(by_sig[blk.sig])
        classes[of[-1]].blocks.append(blk)
    return classes, of


def _unions(classes: list[_Class], cls_of: list[int], pieces: Pieces) -> list[list[Node]]:
    """Slots planned as one item: a carried buffer's pieces in consecutive
    blocks (layer i's output slot and layer i+1's input slot, in the same class
    or not), when they never live together within a class."""
    unions: list[list[Node]] = [[(ci, k)] for ci, c in enumerate(classes)
                                for k in range(len(c.blocks[0].slots))]
    where = {u[0]: u for u in unions}
    for name in sorted(pieces):
        lst = pieces[name]
        for (b0, s0), (b1, s1) in pairwise(lst):
            u0, u1 = where[(cls_of[b0], s0)], where[(cls_of[b1], s1)]
            if u0 is u1 or not _compatible(classes, u0 + u1):
                continue
            u0.extend(u1)
            u0.sort()
            for n in u1:
                where[n] = u0
            unions.remove(u1)
    return unions


def _compatible(classes: list[_Class], nodes: list[Node]) -> bool:
    """Same size, and no two slots of one class live at a common step."""
    slot = {n: classes[n[0]].blocks[0].slots[n[1]] for n in nodes}
    if len({sl[1] for sl in slot.values()}) != 1:
        return False
    for ci in {n[0] for n in nodes}:
        spans = sorted((sl[2], sl[3]) for n, sl in slot.items() if n[0] == ci)
        if any(a[1] >= b[0] for a, b in pairwise(spans)):
            return False
    return True


def _components(unions: list[list[Node]], n: int) -> list[list[int]]:
    """Classes linked through shared slots, each list in class order."""
    root = list(range(n))

    def find(i: int) -> int:
        while root[i] != i:
            i = root[i]
        return i

    for u in unions:
        for a, _ in u[1:]:
            ra, rb = find(a), find(u[0][0])
            if ra != rb:
                root[max(ra, rb)] = min(ra, rb)
    comps: dict[int, list[int]] = {}
    for ci in range(n):
        comps.setdefault(find(ci), []).append(ci)
    return [comps[r] for r in sorted(comps)]


def _solve_component(classes: list[_Class], comp: list[int], unions: list[list[Node]],
                     time_limit_s: float) -> dict[str, object]:
    """One MIP for linked classes: each class on its own stretch of time, so
    their slots never conflict, and a shared slot is one item with a part in
    each class. Fills each class's layout and footprint."""
    shift, t = {}, 0
    for ci in comp:
        shift[ci] = t
        t += classes[ci].blocks[0].end - classes[ci].blocks[0].start + 2
    mine = [u for u in unions if u[0][0] in shift]
    items = []
    for u in mine:
        parts = []
        for ci, k in u:
            _, size, a, e, _ = classes[ci].blocks[0].slots[k]
            parts.append(Part(0, size, a + shift[ci], e + shift[ci]))
        ci, k = u[0]
        items.append(Item(classes[ci].blocks[0].slots[k][0], tuple(parts)))
    cons = _items.conflicts(items)
    lb = _items.load_bound(items)
    offs, status, info = solve_items(items, _items.best_heuristic(items, cons), lb, time_limit_s)
    for ci in comp:
        classes[ci].layout = [0] * len(classes[ci].blocks[0].slots)
    for u, o in zip(mine, offs, strict=True):
        for ci, k in u:
            classes[ci].layout[k] = o
    for ci in comp:
        c = classes[ci]
        tops = (o + sl[1] for o, sl in zip(c.layout, c.blocks[0].slots, strict=True) if sl[1])
        c.footprint = max(tops, default=0)
    return {"classes": len(comp), "blocks": sum(len(classes[ci].blocks) for ci in comp),
            "items": len(items), "lower_bound_bytes": lb,
            "footprint_bytes": max(classes[ci].footprint for ci in comp), "status": status,
            **info}


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
        merged: list[int] = []
        for b, l in links[1:]:
            if of[b] == root:
                if rel[b] + l != target:
                    return False
                continue
            gone, shift = of[b], target - l - rel[b]
            merged.append(gone)
            for m in range(len(of)):
                if of[m] == gone:
                    of[m], rel[m] = root, rel[m] + shift
            sources.append(Item(f"g{gone}", tuple(
                Part(p.rel + shift, p.size, p.start, p.end) for p in self.parts[gone])))
        sources.append(Item(g.name, (Part(target, size, g.start, g.end),)))
        if not _items.valid(sources, [0] * len(sources), _items.conflicts(sources)):
            return False
        for gone in merged:
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
    if problem.has_rules:
        flat = solve_cpsat(problem, time_limit_s=time_limit_s)
        flat.info["source"] = "flat cpsat (placement rules)"
        return flat
    t0 = time.perf_counter()
    deadline = t0 + time_limit_s
    blocks, carried, pieces = _blocks(problem)
    classes, cls_of = _classes(blocks)
    unions = _unions(classes, cls_of, pieces)
    comps = _components(unions, len(classes))
    solves = []
    for k, comp in enumerate(comps):
        left = max(0.0, deadline - time.perf_counter())
        solves.append(_solve_component(classes, comp, unions, 0.7 * left / (len(comps) - k)))
    groups = _Groups(blocks, [classes[ci].layout for ci in cls_of])
    attached: dict[str, tuple[int, int]] = {}  # carried name -> (a block, offset in block)
    free: list[Buffer] = []
    for g in sorted(carried, key=lambda b: (b.start, b.name)):
        links = [(bi, classes[cls_of[bi]].layout[s]) for bi, s in pieces.get(g.name, [])]
        if links and groups.attach(g, problem.aligned(g.size), links):
            attached[g.name] = links[0]
        else:
            free.append(g)
    # When a flat greedy plan already meets the lower bound, nothing can beat
    # it: the top level is then placed greedily (one pass, no MIP) and the
    # lowest valid plan is still taken below.
    flat = [fn(problem) for fn in (greedy_by_size, best_fit)]
    at_bound = min(p.arena_bytes for p in flat) <= lower_bound(problem)
    base, offsets, top_stats = _place_top(problem, groups, free, deadline, quick=at_bound)
    for bi, blk in enumerate(blocks):
        layout = classes[cls_of[bi]].layout
        for k, slot in enumerate(blk.slots):
            if not slot[4]:  # the block's own buffers
                offsets[slot[0]] = base[bi] + layout[k]
    for name, (b0, l0) in attached.items():
        offsets[name] = base[b0] + l0
    offsets = {b.name: offsets[b.name] for b in problem.buffers}
    info = {
        "blocks": len(blocks), "classes": len(classes),
        "class_solves": solves,
        "carried": len(carried), "carried_free": len(free), "top": top_stats,
    }
    unproved = [st for st in solves + [top_stats]
                if st and st["status"] in ("feasible", "warm") and "phases" in st]
    polish_by = min(deadline, time.perf_counter() + POLISH_SHARE * time_limit_s)
    plan = _best(problem, offsets, info, t0, polish_by, flat)
    if unproved and plan.status != "optimal":  # at the lower bound it is proved anyway
        warnings.warn(f"block decomposition: {len(unproved)} sub-problem(s) stopped at the "
                      f"{time_limit_s} s time limit; the plan is the best found",
                      SolverTimeoutWarning, stacklevel=2)
    return plan


def _place_top(problem: Problem, groups: _Groups, free: list[Buffer], deadline: float,
               quick: bool = False) -> tuple[list[int], dict[str, int], dict[str, object]]:
    """Place each rigid group and each free carried buffer as one item.

    Returns every block's base offset, the free buffers' offsets and stats.
    ``quick``: one greedy pass, no MIP (a flat plan already meets the bound).
    """
    roots = sorted(set(groups.of))
    low = {g: min((p.rel for p in groups.parts[g]), default=0) for g in roots}
    items = [Item(f"group {g}", tuple(Part(p.rel - low[g], p.size, p.start, p.end)
                                      for p in groups.parts[g])) for g in roots]
    items += [Item(b.name, (Part(0, problem.aligned(b.size), b.start, b.end),)) for b in free]
    cons = _items.conflicts(items)
    if quick:
        warm = _items.place(items, _items.size_order(items), cons)
        budget = 0.0
    else:
        warm = _items.best_heuristic(items, cons)
        budget = max(0.0, 0.5 * (deadline - time.perf_counter()))
    offs, status, info = solve_items(items, warm, _items.load_bound(items), budget)
    if quick and status == "warm":
        status = "greedy (flat plan at the bound)"
    at = dict(zip(roots, offs[:len(roots)], strict=True))
    base = [at[g] - low[g] + r for g, r in zip(groups.of, groups.rel, strict=True)]
    placed = {b.name: o for b, o in zip(free, offs[len(roots):], strict=True)}
    return base, placed, {"items": len(items), "status": status, **info}


def _best(problem: Problem, offsets: dict[str, int], info: dict, t0: float, deadline: float,
          flat: list[Plan]) -> Plan:
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
    cands += [(p.arena_bytes, p.method, p.offsets) for p in flat]
    arena, source, offs = min(cands, key=lambda c: (c[0], c[1] != "memo"))
    left = deadline - time.perf_counter()
    proved = arena == lb
    if arena > lb and len(problem.buffers) <= POLISH_MAX_BUFFERS and left > 0:
        items = items_of(problem)
        flat, status, _ = solve_items(items, [offs[b.name] for b in problem.buffers], lb, left)
        polished = {b.name: o for b, o in zip(problem.buffers, flat, strict=True)}
        proved = status == "optimal"
        if arena_of(problem, polished) < arena:
            arena, source, offs = arena_of(problem, polished), source + "+flat-mip", polished
        if status == "feasible":
            warnings.warn("block decomposition: the flat MIP polish stopped at the time limit; "
                          "the plan is the best found", SolverTimeoutWarning, stacklevel=3)
    info["source"] = source
    return Plan(
        offsets=offs, arena_bytes=arena, method="memo", solve_s=time.perf_counter() - t0,
        status="optimal" if proved else "feasible", lower_bound_bytes=lb, info=info,
    )
