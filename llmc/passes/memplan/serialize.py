"""``plan.json``: the plan as data, with stable key order."""

from __future__ import annotations

import json
from pathlib import Path

from llmc.passes.memplan.problem import Plan, Problem, lower_bound


def plan_to_json(problem: Problem, plan: Plan, timing: bool = True) -> dict:
    """The plan as a JSON-ready dict; buffers sorted by (start, name).

    Besides the offsets: the method that made the plan, the lower bound,
    whether it is proved optimal, the proved bound and the gap to it
    (``(arena - bound) / bound``; of the bytes moved for a spill plan), and,
    where set, each buffer's placement rules and spilled segments and the
    spills' DMA traffic. ``timing=False`` writes ``solve_s`` as null, for
    byte-identical artifacts.
    """
    lb = lower_bound(problem)
    segments = plan.spills.segments if plan.spills is not None else {}
    buffers = []
    for b in sorted(problem.buffers, key=lambda b: (b.start, b.name)):
        row: dict[str, object] = {"name": b.name, "size": b.size, "start": b.start,
                                  "end": b.end, "offset": plan.offsets[b.name]}
        if b.block is not None:
            row["block"] = b.block if isinstance(b.block, (int, str)) else repr(b.block)
        if b.alignment is not None:
            row["alignment"] = b.alignment
        if b.bank is not None:
            row["bank"] = b.bank
        if b.name in segments:
            row["segments"] = [{"start": s.start, "end": s.end, "offset": s.offset}
                               for s in segments[b.name]]
        buffers.append(row)
    data: dict[str, object] = {
        "alignment": problem.alignment,
        "arena_bytes": plan.arena_bytes,
        "bound_bytes": plan.proved_bound if plan.spills is None else lb,
        "buffers": buffers,
        "gap": None if plan.gap is None else round(plan.gap, 6),
        "lower_bound_bytes": lb,
        "method": plan.method,
        "optimal": plan.optimal,
        "ratio": round(plan.arena_bytes / lb, 6) if lb else 1.0,
        "solve_s": round(plan.solve_s, 3) if timing else None,
        "status": plan.status,
    }
    if problem.bank_bytes is not None:
        data["bank_bytes"] = problem.bank_bytes
    if plan.spills is not None:
        sp = plan.spills
        data["spills"] = {"capacity_bytes": sp.capacity_bytes, "buffers": len(sp.segments),
                          "to_dram_bytes": sp.to_dram_bytes,
                          "from_dram_bytes": sp.from_dram_bytes,
                          "moved_bytes": sp.moved_bytes, "bound_bytes": sp.bound_bytes}
    return data


def write_plan_json(problem: Problem, plan: Plan, path: str | Path, timing: bool = True) -> Path:
    """Write :func:`plan_to_json` to ``path`` (sorted keys, 2-space indent, newline)."""
    path = Path(path)
    path.write_text(json.dumps(plan_to_json(problem, plan, timing), indent=2, sort_keys=True)
                    + "\n")
    return path
