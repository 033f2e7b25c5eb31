"""``plan.json``: the plan as data, with stable key order."""

from __future__ import annotations

import json
from pathlib import Path

from llmc.passes.memplan.problem import Plan, Problem, lower_bound


def plan_to_json(problem: Problem, plan: Plan, timing: bool = True) -> dict:
    """The plan as a JSON-ready dict; buffers sorted by (start, name).

    ``timing=False`` writes ``solve_s`` as null, for byte-identical artifacts.
    """
    lb = lower_bound(problem)
    buffers = []
    for b in sorted(problem.buffers, key=lambda b: (b.start, b.name)):
        row: dict[str, object] = {"name": b.name, "size": b.size, "start": b.start,
                                  "end": b.end, "offset": plan.offsets[b.name]}
        if b.block is not None:
            row["block"] = b.block if isinstance(b.block, (int, str)) else repr(b.block)
        buffers.append(row)
    return {
        "alignment": problem.alignment,
        "arena_bytes": plan.arena_bytes,
        "buffers": buffers,
        "lower_bound_bytes": lb,
        "method": plan.method,
        "ratio": round(plan.arena_bytes / lb, 6) if lb else 1.0,
        "solve_s": round(plan.solve_s, 3) if timing else None,
        "status": plan.status,
    }


def write_plan_json(problem: Problem, plan: Plan, path: str | Path, timing: bool = True) -> Path:
    """Write :func:`plan_to_json` to ``path`` (sorted keys, 2-space indent, newline)."""
    path = Path(path)
    path.write_text(json.dumps(plan_to_json(problem, plan, timing), indent=2, sort_keys=True)
                    + "\n")
    return path
