"""Hard memory-planning instances: where greedy misses the lower bound.

On the zoo models greedy-by-size already meets the lower bound
(memplan.md), so no exact method has work to do there. These instances are
the irregular ones an NPU scratchpad, a fused graph or a reordered schedule
produce, from four seeded generators:

* ``random``: lifetimes of 1-12 steps, starting anywhere in n/d steps (d = 3
  or 6: about 20 or 40 buffers live at a step), sizes 64 B to 4 KiB;
* ``dag``: a random DAG of ops (each reads 1-3 recent outputs, sometimes one
  far back, as a skip connection does), scheduled in a random topological
  order, as a reordering pass may leave it; tensor sizes from a few shapes;
* ``fused``: kernels of 2-6 steps whose outputs live from their kernel's
  first step to the end of a consumer 1-3 kernels on, with scratch inside a
  kernel and a residual stream every four kernels, as after fusion;
* ``banked``: tiles of 1-64 KiB in an NPU scratchpad of 256 KiB banks
  (edge-npu's [scratchpad]), each within as few banks as its size needs;
  ``banked 16K``: tiles of 1-24 KiB in 16 KiB banks, where that rule bites;
  ``banked 4K mixed``: tiles up to 1.5 banks of 4 KiB under mixed rules, an
  adversarial case (bin packing at every step) where CP-SAT leaves a gap.

Each instance is planned by greedy-by-size, best-fit, the CBC MIP and CP-SAT
at the same time limit; the table states the lower bound (max bytes live at
one step), each plan's ratio to it, and CP-SAT's status: at the bound,
optimal above it (proved), or the gap to its proved bound. A second table
compares the MEMO decomposition with CP-SAT on the whole problem, on the
layered synthetic stacks of memplan_synthetic.md and deeper ones.

Run: ``python -m bench.memplan_bench --hard`` (writes memplan_hard.md/.json
and nothing else).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import random
import statistics
import time
import warnings
from pathlib import Path

from llmc.passes.memplan import (
    Buffer,
    Problem,
    SolverTimeoutWarning,
    best_fit,
    check_plan,
    greedy_by_size,
    lower_bound,
    plan_blocks,
    problem_from_intervals,
    solve_cpsat,
    solve_mip,
)

TIME_LIMIT_S = 10.0
BANK = 256 * 1024  # edge-npu: 8 MiB of SRAM in 32 banks (llmc/hw/devices/edge-npu.toml)


def random_intervals(seed: int, n: int, density: int) -> Problem:
    r = random.Random(seed)
    horizon = max(10, n // density)
    bufs = []
    for i in range(n):
        s = r.randint(0, horizon)
        bufs.append(Buffer(f"b{i}", r.randint(1, 64) * 64, s, s + r.randint(0, 11)))
    return Problem(bufs)


def dag(seed: int, n: int) -> Problem:
    r = random.Random(seed)
    shapes = [r.randint(1, 64) * 512 for _ in range(16)]
    inputs: list[list[int]] = []
    for i in range(n):
        ins = {r.randint(max(0, i - 4), i - 1) for _ in range(r.randint(1, 3))} if i else set()
        if i > 8 and r.random() < 0.15:
            ins.add(r.randint(0, i - 8))  # a skip connection
        inputs.append(sorted(ins))
    users: list[list[int]] = [[] for _ in range(n)]
    for i, ins in enumerate(inputs):
        for j in ins:
            users[j].append(i)
    # a random topological order: pick any ready op
    indeg = [len(ins) for ins in inputs]
    ready, order = [i for i in range(n) if not indeg[i]], []
    while ready:
        i = ready.pop(r.randrange(len(ready)))
        order.append(i)
        for u in users[i]:
            indeg[u] -= 1
            if not indeg[u]:
                ready.append(u)
    step = {i: s for s, i in enumerate(order)}
    bufs = [Buffer(f"op{i}", r.choice(shapes), step[i],
                   max([step[i]] + [step[u] for u in users[i]])) for i in range(n)]
    return Problem(bufs)


def fused(seed: int, n: int) -> Problem:
    r = random.Random(seed)
    sizes = [r.randint(1, 64) * 256 for _ in range(24)]
    spans: list[tuple[int, int]] = []
    step = 0
    while len(spans) < n:
        width = r.randint(2, 6)  # one kernel: its operands live across all of it
        spans.append((step, step + width - 1))
        step += width
    bufs: list[Buffer] = []
    for k, (a, e) in enumerate(spans):
        for j in range(r.randint(1, 2)):  # outputs, read by one of the next 1-3 kernels
            last = spans[min(len(spans) - 1, k + r.randint(1, 3))][1]
            bufs.append(Buffer(f"k{k}.out{j}", r.choice(sizes), a, last))
        if r.random() < 0.5:  # scratch inside the kernel
            bufs.append(Buffer(f"k{k}.tmp", r.choice(sizes), a, e))
        if k % 4 == 0:  # a residual stream read four kernels on
            bufs.append(Buffer(f"k{k}.res", 8192, a, spans[min(len(spans) - 1, k + 4)][1]))
        if len(bufs) >= n:
            break
    return Problem(bufs[:n])


def banked(seed: int, n: int, bank: int = BANK, largest_kib: int = 64) -> Problem:
    r = random.Random(seed)
    horizon = max(10, n // 4)
    sizes = [k for k in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96) if k <= largest_kib]
    bufs = []
    for i in range(n):
        s = r.randint(0, horizon)
        bufs.append(Buffer(f"tile{i}", r.choice(sizes) * 1024, s, s + r.randint(0, 7),
                           bank="within"))
    return Problem(bufs, 64, bank_bytes=bank)


def banked_mixed(seed: int, n: int) -> Problem:
    """Adversarial banks: tiles up to 1.5 banks of 4 KiB, each within its
    banks, on a bank boundary, or free."""
    r = random.Random(seed)
    horizon = max(10, n // 4)
    bufs = []
    for i in range(n):
        s = r.randint(0, horizon)
        size = r.randint(1, 96) * 64
        rules = ["within", "within", None, "start"] if size <= 4096 else ["within", None]
        bufs.append(Buffer(f"t{i}", size, s, s + r.randint(0, 11), bank=r.choice(rules)))
    return Problem(bufs, 64, bank_bytes=4096)


INSTANCES = (
    [(f"random d={d}", lambda s=s, n=n, d=d: random_intervals(s, n, d), n)
     for s, (n, d) in enumerate([(n, d) for n in (30, 80, 120, 200, 300, 500) for d in (3, 6)])]
    + [("dag", lambda s=s, n=n: dag(100 + s, n), n) for s, n in enumerate((100, 200, 300, 500))]
    + [("fused", lambda s=s, n=n: fused(200 + s, n), n) for s, n in enumerate((100, 200, 300, 500))]
    + [("banked", lambda s=s, n=n: banked(300 + s, n), n) for s, n in enumerate((100, 400))]
    + [("banked 16K", lambda s=s, n=n: banked(400 + s, n, 16 * 1024, 24), n)
       for s, n in enumerate((50, 200))]
    + [("banked 4K mixed", lambda s=s, n=n: banked_mixed(500 + s, n), n)
       for s, n in enumerate((60, 200))]
)


def run_instance(family: str, problem: Problem, time_limit_s: float = TIME_LIMIT_S) -> dict:
    lb = lower_bound(problem)
    row: dict = {"family": family, "buffers": len(problem.buffers), "lower_bound_bytes": lb}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverTimeoutWarning)
        for name, fn in (("greedy", greedy_by_size), ("bestfit", best_fit),
                         ("mip", lambda p: solve_mip(p, time_limit_s=time_limit_s)),
                         ("cpsat", lambda p: solve_cpsat(p, time_limit_s=time_limit_s))):
            t = time.perf_counter()
            p = fn(problem)
            row[f"{name}_s"] = round(time.perf_counter() - t, 3)
            check_plan(problem, p)
            row[f"{name}_bytes"] = p.arena_bytes
            row[f"{name}_ratio"] = round(p.arena_bytes / lb, 4)
            row[f"{name}_status"] = p.status
    c = p  # CP-SAT's plan
    row.update(cpsat_bound_bytes=c.proved_bound, cpsat_gap=round(c.gap or 0.0, 4),
               cpsat_optimal=c.optimal)
    return row


def run_layered(time_limit_s: float = TIME_LIMIT_S) -> list[dict]:
    """MEMO (per-layer solve, reused) vs CP-SAT on the whole problem."""
    from bench.memplan_bench import synthetic_intervals

    rows = []
    for name, seed, layers in (("synthetic-s20", 20, 12), ("synthetic-s20", 20, 60),
                               ("synthetic-s6", 6, 60), ("synthetic-s20", 20, 200),
                               ("synthetic-s6", 6, 200)):
        problem = problem_from_intervals(synthetic_intervals(seed, layers))
        lb = lower_bound(problem)
        row: dict = {"problem": f"{name} x{layers}", "buffers": len(problem.buffers),
                     "lower_bound_bytes": lb}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SolverTimeoutWarning)
            for key, fn in (("memo", plan_blocks), ("cpsat", solve_cpsat)):
                t = time.perf_counter()
                p = fn(problem, time_limit_s=time_limit_s)
                row[f"{key}_s"] = round(time.perf_counter() - t, 3)
                check_plan(problem, p)
                row[f"{key}_ratio"] = round(p.arena_bytes / lb, 4)
        rows.append(row)
        print(f"  {row['problem']:22s} memo {row['memo_ratio']:.4f} {row['memo_s']:.2f}s  "
              f"cpsat {row['cpsat_ratio']:.4f} {row['cpsat_s']:.2f}s", flush=True)
    return rows


def _verdict(r: dict) -> str:
    if r["cpsat_bytes"] == r["lower_bound_bytes"]:
        return "at the bound"
    if r["cpsat_optimal"]:
        return "optimal (proved above the bound)"
    return f"gap {100 * r['cpsat_gap']:.2f}% to its proved bound"


def main(out: Path) -> int:
    rows = []
    for family, make, n in INSTANCES:
        r = run_instance(family, make())
        rows.append(r)
        print(f"  {family:10s} n={n:4d} greedy {r['greedy_ratio']:.4f} mip {r['mip_ratio']:.4f} "
              f"({r['mip_s']:.1f}s) cpsat {r['cpsat_ratio']:.4f} ({r['cpsat_s']:.2f}s) "
              f"{_verdict(r)}", flush=True)
    layered = run_layered()
    write(rows, layered, out)
    return 0


def write(rows: list[dict], layered: list[dict], out: Path) -> None:
    machine = f"{os.cpu_count()}-core CPU ({platform.machine()}, {platform.system()})"
    date = _dt.date.today().isoformat()
    out.mkdir(parents=True, exist_ok=True)
    (out / "memplan_hard.json").write_text(json.dumps(
        {"machine": machine, "date": date, "time_limit_s": TIME_LIMIT_S, "instances": rows,
         "layered": layered}, indent=2, sort_keys=True) + "\n")
    times = [r["cpsat_s"] for r in rows]
    at_lb = sum(r["cpsat_bytes"] == r["lower_bound_bytes"] for r in rows)
    proved = sum(r["cpsat_optimal"] for r in rows)
    lines = [
        "# Memory planner benchmark: hard instances", "",
        f"Machine: {machine}, Python {platform.python_version()}; CP-SAT (OR-Tools, one "
        f"worker, fixed seed) and CBC via PuLP (one thread), each at a {TIME_LIMIT_S:.0f} s "
        f"limit. Date: {date}. Produced by `python -m bench.memplan_bench --hard` "
        "(`bench/memplan_hard.py`, whose docstring describes the four generators).", "",
        "Ratios are arena / lower bound (max aligned bytes live at one step); `s` is wall "
        "time. CP-SAT's verdict: at the bound (proved optimal), optimal above it (proved), "
        "or the gap to the bound it proved when its time ran out.", "",
        "| family | buffers | lower bound (KiB) | greedy | best-fit | CBC MIP | CBC s | "
        "CP-SAT | CP-SAT s | CP-SAT verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(
            f"| {r['family']} | {r['buffers']} | {r['lower_bound_bytes'] / 1024:,.1f} | "
            f"{r['greedy_ratio']:.4f} | {r['bestfit_ratio']:.4f} | {r['mip_ratio']:.4f} | "
            f"{r['mip_s']:.1f} | {r['cpsat_ratio']:.4f} | {r['cpsat_s']:.2f} | {_verdict(r)} |")
    lines += [
        "", f"CP-SAT: {at_lb} of {len(rows)} instances planned at the lower bound, {proved} "
        f"proved optimal, the rest with the gap above; median {statistics.median(times):.2f} s, "
        f"slowest {max(times):.2f} s. CBC at the same limit: "
        f"{sum(r['mip_bytes'] == r['lower_bound_bytes'] for r in rows)} at the bound, median "
        f"{statistics.median(r['mip_s'] for r in rows):.2f} s; CP-SAT never above it: "
        f"{all(r['cpsat_bytes'] <= r['mip_bytes'] for r in rows)}.", "",
        "## The MEMO decomposition against CP-SAT on the whole problem", "",
        "Layered synthetic stacks (`synthetic_intervals` in bench/memplan_bench.py: identical "
        "random layers chained by a residual, where greedy misses the bound). `memo` is "
        "`plan_blocks` (one CP-SAT solve per distinct layer, reused, then the model); "
        "`cpsat` solves the flat problem.", "",
        "| problem | buffers | MEMO ratio | MEMO s | CP-SAT ratio | CP-SAT s |",
        "|---|---:|---:|---:|---:|---:|"]
    for r in layered:
        lines.append(f"| {r['problem']} | {r['buffers']} | {r['memo_ratio']:.4f} | "
                     f"{r['memo_s']:.2f} | {r['cpsat_ratio']:.4f} | {r['cpsat_s']:.2f} |")
    same = all(r["memo_ratio"] == r["cpsat_ratio"] for r in layered)
    speed = [r["cpsat_s"] / max(r["memo_s"], 1e-3) for r in layered]
    lines += ["", f"Same arena from both on every row: {same}; MEMO is {min(speed):.1f}x to "
              f"{max(speed):.1f}x faster, most on the deepest stacks, so it keeps its place: "
              "`auto` runs it on problems tagged with layers before CP-SAT on the whole "
              "problem. The CBC MIP (`--method mip`) is never ahead of CP-SAT above and "
              "stops at its limit where CP-SAT proves the bound in a fraction of a second; "
              "it stays as a method to compare with, and `auto` never chooses it.", ""]
    (out / "memplan_hard.md").write_text("\n".join(lines))
