"""Scratchpad rows: llmc-tiny's prefill in a capacity below its lower bound.

llmc-tiny prefill at the demo's 64 tokens (float32, shipped weights), op by
op or after the fuse pass. The capacity is a fraction of the untiled graph's
lower bound (max bytes live at one step). `tiles_to_fit`
(llmc.passes.tile_rows) splits the position-wise work into the fewest row
tiles whose anchored peak (the bytes one step reads and writes) fits; the
spill planner (llmc.passes.memplan.spill, one CP-SAT model, fewest bytes
moved) then plans the tiled graph; the plan is checked (`check_plan`) and
run in the arena (`interpret_in_arena`), compared bit for bit with the plain
interpreter on the tiled graph and with the untiled graph's outputs.

Run: ``python -m bench.memplan_bench --scratchpad`` (writes
memplan_scratchpad.json and the scratchpad section of memplan.md).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

TIME_LIMIT_S = 30.0
SEQ_LEN = 64
# (quantization scheme or None, fused, capacity as a fraction of the untiled lower bound)
CASES = ((None, False, 1, 2), (None, True, 1, 2), (None, False, 1, 3), (None, True, 1, 3),
         (None, False, 1, 4), ("w8a8-int", False, 1, 2))
BEGIN, END = "<!-- scratchpad rows: begin -->", "<!-- scratchpad rows: end -->"


def run_case(scheme: str | None, fused: bool, num: int, den: int) -> dict:
    from llmc import api
    from llmc.errors import UsageError
    from llmc.ir.arena import interpret_in_arena
    from llmc.passes.fusion import fuse
    from llmc.passes.memplan import check_plan, lower_bound, plan
    from llmc.passes.memplan.liveness import liveness
    from llmc.passes.tile_rows import tiles_to_fit

    t = api.trace("llmc-tiny", "prefill", batch=1, seq_len=SEQ_LEN, weights="auto")
    source = t.graph if scheme is None else api.quantize(t, scheme)
    untiled = fuse(source) if fused else source
    lb = lower_bound(liveness(untiled).problem)
    cap = lb * num // den
    row = {"graph": f"llmc-tiny prefill {SEQ_LEN}" + (f" {scheme}" if scheme else ""),
           "fused": fused, "fraction": f"{num}/{den}",
           "lower_bound_bytes": lb, "capacity_bytes": cap}
    t0 = time.perf_counter()
    try:
        choice = tiles_to_fit(source, cap, prepare=fuse if fused else None)
    except UsageError as e:
        return {**row, "refused": str(e), "tile_s": round(time.perf_counter() - t0, 2)}
    tile_s = time.perf_counter() - t0
    g = fuse(choice.graph) if fused else choice.graph
    prob = liveness(g).problem
    p = plan(prob, arena_bytes=cap, time_limit_s=TIME_LIMIT_S)
    check_plan(prob, p, cap)
    want = api.interpret(g, t.inputs)
    got = interpret_in_arena(g, t.inputs, p.offsets, p.arena_bytes, p.spills.segments)
    ref = api.interpret(source, t.inputs)
    sp = p.spills
    return {**row, "tiles": choice.tiles, "tried": choice.tried,
            "anchored_bytes": choice.anchored_bytes, "steps": len(g.nodes),
            "buffers": len(prob.buffers), "tiled_lower_bound_bytes": lower_bound(prob),
            "arena_bytes": p.arena_bytes, "spilled_buffers": len(sp.segments),
            "to_dram_bytes": sp.to_dram_bytes, "from_dram_bytes": sp.from_dram_bytes,
            "moved_bytes": sp.moved_bytes, "status": p.status,
            "tile_s": round(tile_s, 2), "plan_s": round(p.solve_s, 2),
            "arena_bit_exact": all(np.array_equal(a, b) for a, b in zip(got, want, strict=True)),
            "untiled_bit_exact": all(np.array_equal(a, b)
                                     for a, b in zip(want, ref, strict=True))}


def order_row() -> dict:
    """Tile-first against the rewrite's own order: 2 tiles, op by op, 1/2 LB."""
    from llmc import api
    from llmc.passes.memplan import check_plan, lower_bound, plan
    from llmc.passes.memplan.liveness import liveness
    from llmc.passes.tile_rows import tile_rows

    g = api.trace("llmc-tiny", "prefill", batch=1, seq_len=SEQ_LEN, weights="meta").graph
    cap = lower_bound(liveness(g).problem) // 2
    row: dict = {}
    for name, first in (("tile_first", True), ("emitted", False)):
        prob = liveness(tile_rows(g, 2, tile_first=first)).problem
        p = plan(prob, arena_bytes=cap, time_limit_s=TIME_LIMIT_S)
        check_plan(prob, p, cap)
        row.update({f"{name}_lower_bound_bytes": lower_bound(prob),
                    f"{name}_moved_bytes": p.spills.moved_bytes, f"{name}_status": p.status,
                    f"{name}_plan_s": round(p.solve_s, 2)})
    return row


def main(out: Path) -> int:
    rows = []
    for scheme, fused, num, den in CASES:
        r = run_case(scheme, fused, num, den)
        rows.append(r)
        print(f"  {scheme or 'float':8s} fused={fused!s:5s} {num}/{den}: " + (
            f"refused ({r['tile_s']} s)" if "refused" in r else
            f"{r['tiles']} tiles, {r['moved_bytes']:,} B moved, {r['status']}, "
            f"tile {r['tile_s']} s + plan {r['plan_s']} s, exact {r['arena_bit_exact']}/"
            f"{r['untiled_bit_exact']}"), flush=True)
    order = order_row()
    print(f"  order: {order}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    machine = f"{os.cpu_count()}-core CPU ({platform.machine()}, {platform.system()})"
    (out / "memplan_scratchpad.json").write_text(json.dumps(
        {"machine": machine, "date": _dt.date.today().isoformat(),
         "python": platform.python_version(), "time_limit_s": TIME_LIMIT_S, "rows": rows,
         "order": order},
        indent=2, sort_keys=True) + "\n")
    md = out / "memplan.md"
    md.write_text(with_section(md.read_text() if md.exists() else "", out))
    return 0


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f}"


def section(out: Path) -> list[str]:
    """The scratchpad section of memplan.md, from memplan_scratchpad.json ([] if absent)."""
    path = out / "memplan_scratchpad.json"
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    lines = [BEGIN, "## Scratchpad below the lower bound: row tiles and spills", "",
             f"Machine: {data['machine']}, Python {data['python']}, CP-SAT (one worker, "
             f"{data['time_limit_s']:.0f} s limit). Date: {data['date']}. Produced by "
             "`python -m bench.memplan_bench --scratchpad` (`bench/memplan_scratchpad.py`).", "",
             f"llmc-tiny prefill, {SEQ_LEN} tokens, shipped weights, float32 (and once quantized "
             "w8a8-int), op by op or fused. "
             "The capacity is a fraction of the *untiled* graph's lower bound; the `tile-rows` "
             "pass splits the position-wise work into the fewest row tiles whose steps fit it "
             "(anchored peak: the bytes one step reads and writes), then the spill planner "
             "moves the fewest bytes to DRAM and back. Sizes in KiB; `to DRAM` is written once "
             "per spilled tensor, `moved` adds the reads back; `tile s` chooses the tile count, "
             "`plan s` is the spill plan. `exact`: the arena run equals the plain interpreter "
             "on the tiled graph, and the tiled graph's outputs (logits, KV cache) equal the "
             "untiled graph's, bit for bit.", "",
             "| graph | capacity | lower bound (untiled) | capacity KiB | row tiles | "
             "anchored peak | tiled lower bound | arena | spilled | to DRAM | moved | plan | "
             "tile s | plan s | exact |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|"]
    for r in data["rows"]:
        head = (f"| {r['graph']}{' fused' if r['fused'] else ''} | {r['fraction']} LB | "
                f"{_kib(r['lower_bound_bytes'])} | {_kib(r['capacity_bytes'])} | ")
        if "refused" in r:
            lines.append(head + f"none fits | | | | | | | refused | {r['tile_s']:.2f} | | |")
            continue
        lines.append(head + (
            f"{r['tiles']} | {_kib(r['anchored_bytes'])} | {_kib(r['tiled_lower_bound_bytes'])} | "
            f"{_kib(r['arena_bytes'])} | {r['spilled_buffers']} | {_kib(r['to_dram_bytes'])} | "
            f"{_kib(r['moved_bytes'])} | {r['status']} | {r['tile_s']:.2f} | "
            f"{r['plan_s']:.2f} | {'yes' if r['arena_bit_exact'] and r['untiled_bit_exact'] else 'no'} |"))
    refused = [r for r in data["rows"] if "refused" in r]
    o = data.get("order")
    if o:
        lines += ["", "Tiles run tile-first (tile 0 goes on through the next ops before tile 1 "
                  "starts, as far as the data allows). The same 2 tiles (op by op, 1/2 LB) in "
                  "the rewrite's own order (each op for every tile, then the next op): lower "
                  f"bound {_kib(o['emitted_lower_bound_bytes'])} KiB against "
                  f"{_kib(o['tile_first_lower_bound_bytes'])} KiB; spill plan "
                  f"{_kib(o['emitted_moved_bytes'])} KiB moved ({o['emitted_status']}, "
                  f"{o['emitted_plan_s']:.1f} s) against {_kib(o['tile_first_moved_bytes'])} "
                  f"KiB ({o['tile_first_status']}, {o['tile_first_plan_s']:.1f} s)."]
    lines += [""] + [f"Refused ({r['fraction']} LB{', fused' if r['fused'] else ''}): "
                     f"`{r['refused']}`" for r in refused] + ["", END, ""]
    return lines


def with_section(text: str, out: Path) -> str:
    """`text` (memplan.md) with the scratchpad section in place of the old one, or appended."""
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + text[text.index(END) + len(END):].lstrip("\n")
    body = section(out)
    return text.rstrip("\n") + "\n\n" + "\n".join(body) if body else text
