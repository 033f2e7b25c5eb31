"""Sub-commands of the passes area: `eval` (quantization), `plan` (memory) and
`partition` (pipeline stages, llmc.cli.partition).

`plan` takes no `--target`: the activation plan is the traced graph's, the
same on every device.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any

from llmc.cli import partition
from llmc.cli.common import (
    add_json,
    add_out,
    add_seq_len,
    add_trace_shape,
    fmt_bin,
    parse_size,
    print_json,
)
from llmc.cli.limits import check_trace
from llmc.errors import UsageError

__all__ = ["parse_size", "register"]

# llmc.passes.memplan.planner.METHODS (checked by tests/cli/test_vocabulary.py),
# written out so that building the parser imports no planner
METHODS = ("auto", "mip", "memo", "greedy", "bestfit")


def register(sub: argparse._SubParsersAction) -> None:
    _register_eval(sub)
    _register_plan(sub)
    partition.register(sub)


# ---- eval -------------------------------------------------------------------------


def _register_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="held-out perplexity of a model, float vs a quantization "
                                    "scheme, with weight/KV bytes")
    p.add_argument("model", help="zoo name (llmc-tiny ships weights) or a Hugging Face "
                                 "directory; the held-out text is UTF-8 bytes, so the "
                                 "vocabulary must be byte-level (256)")
    p.add_argument("--quant", metavar="SCHEME", default=None,
                   help="quantization scheme (w8a8-int, bfp12-ksort, mxfp4, w4a16, ...; an "
                        "unknown name lists them all)")
    add_json(p, "the result")
    p.add_argument("--windows", type=int, default=16,
                   help="held-out windows to evaluate (0: all); default 16")
    add_seq_len(p, None, "window length (default 256; a file.py:factory: its example's)")
    p.add_argument("--batch", type=int, default=None, metavar="N",
                   help="windows per interpreter run (default 8; a file.py:factory: its "
                        "example's)")
    p.add_argument("--weights", choices=("auto", "random"), default="auto",
                   help="auto: shipped or the directory's weights; random: seeded random "
                        "(smoke test)")
    p.set_defaults(func=_eval)


def _eval(a: argparse.Namespace) -> int:
    from llmc.api import evaluate
    from llmc.passes.quant.schemes import get_scheme

    if a.windows < 0:
        raise UsageError(f"--windows must be positive, got {a.windows}")
    check_trace(8 if a.batch is None else a.batch, 256 if a.seq_len is None else a.seq_len)
    if a.quant is not None:
        get_scheme(a.quant)  # unknown names fail before any tracing
    r = evaluate(a.model, a.quant, seq_len=a.seq_len, windows=a.windows or None,
                 batch=a.batch, weights=a.weights)
    if a.json:
        print(json.dumps(r.to_json(), sort_keys=True))
        return 0
    delta = 100.0 * (r.perplexity / r.float_perplexity - 1.0)
    print(f"{r.model} on {r.windows} held-out windows of {r.seq_len} tokens (context length "
          f"{r.seq_len}, {r.batch} windows per run)")
    print(f"  perplexity  {r.scheme}: {r.perplexity:.4f}   float: {r.float_perplexity:.4f}   "
          f"({delta:+.2f}%)")
    print(f"  weights     {r.weight_bytes:,} B   float: {r.float_weight_bytes:,} B   "
          f"(saved {r.float_weight_bytes - r.weight_bytes:,} B, "
          f"{r.float_weight_bytes / max(r.weight_bytes, 1):.2f}x smaller)")
    if not r.float_kv_bytes_per_token:  # a factory's graph returns its logits only
        print("  KV cache    none: the traced graph returns no KV cache")
        return 0
    print(f"  KV cache    {r.kv_bytes_per_token:,.1f} B/token   float: "
          f"{r.float_kv_bytes_per_token:,.1f} B/token   "
          f"({r.float_kv_bytes_per_token / max(r.kv_bytes_per_token, 1e-9):.2f}x smaller)")
    return 0


# ---- plan -------------------------------------------------------------------------


def _register_plan(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="plan a model's activation memory in one arena: lower "
                                    "bound, greedy, best-fit and MIP, with a picture")
    p.add_argument("model", help="zoo name, HF-style directory, or file.py:factory")
    add_trace_shape(p)
    p.add_argument("--target", "-t", default=None,
                   help="plan at the element sizes the cost model charges on this target "
                        "(a float32 trace at the device's default, bf16 on GPUs); default: "
                        "the graph's own dtypes")
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="auto (= memo: one MIP per distinct layer, reused), mip (the whole "
                        "graph as one MIP), greedy (TFLite greedy-by-size), bestfit")
    p.add_argument("--arena", metavar="SIZE", default=None,
                   help="capacity to fit in (bytes, or 64MiB, 2GB, ...); too small is "
                        "reported with the bytes missing and the tensors to spill")
    p.add_argument("--reorder", action="store_true",
                   help="run the memory-order pass first (OLLA-style: the topological "
                        "order with the lower peak)")
    p.add_argument("--unfused", action="store_true",
                   help="plan op by op (default: as compiled, after the fuse pass, where a "
                        "value that stays inside a kernel needs no buffer)")
    p.add_argument("--time-limit", type=float, default=30.0, metavar="S",
                   help="MIP time limit in seconds (the best plan found is kept)")
    add_out(p, "plan.json, plan.md and plan.png")
    add_json(p, "the table's figures and the plan (plan.json)")
    p.set_defaults(func=_plan)


def _plan(a: argparse.Namespace) -> int:
    from llmc import api
    from llmc.outdir import check_dest
    from llmc.passes.fusion import fuse
    from llmc.passes.memplan import best_fit, greedy_by_size, lower_bound
    from llmc.passes.memplan.liveness import liveness
    from llmc.passes.memplan.reorder import memory_order

    if a.out:
        check_dest(a.out, "plan.json")
    arena = None if a.arena is None else parse_size(a.arena)
    if not a.time_limit > 0:
        raise UsageError(f"--time-limit must be positive, got {a.time_limit}")
    check_trace(a.batch, a.seq_len)
    traced = api.trace(a.model, a.phase, a.batch, a.seq_len, weights="meta")
    graph = traced.graph
    before = lower_bound(liveness(api.at_plan_precision(graph, target=a.target)[0]).problem)
    if a.reorder:
        graph = memory_order(graph)
    if not a.unfused:
        graph = fuse(graph)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mp = api.plan_memory(graph, a.method, arena, a.time_limit, target=a.target)
    problem, chosen = mp.problem, mp.plan
    lb = lower_bound(problem)
    rows = [("greedy-by-size", greedy_by_size(problem)), ("best-fit", best_fit(problem))]
    for w in caught:
        sys.stderr.write(f"llmc: warning: {w.message}\n")
    rows.append((f"{chosen.method} ({a.method})" if a.method == "auto" else chosen.method,
                 chosen))
    lines = _table(graph, problem, lb, before, rows, mp.json, a, arena)
    if a.json:
        print_json({"graph": graph.name, "buffers": len(problem.buffers),
                    "steps": len(graph.nodes), "lower_bound_bytes": lb,
                    "traced_lower_bound_bytes": before,
                    "arena_bytes": {label: pl.arena_bytes for label, pl in rows},
                    "capacity_bytes": arena, "status": chosen.status, "plan": mp.json})
    else:
        print("\n".join(lines))
    if a.out:
        from pathlib import Path

        from llmc.outdir import write_dir

        md = "\n".join(["# Activation memory plan", "", "```", *lines[:-1], "```", "",
                        "Picture: plan.png (buffers as rectangles, time x address); "
                        "data: plan.json.", ""])
        write_dir(Path(a.out), marker="plan.json", files={
            "plan.json": json.dumps(mp.json, indent=2, sort_keys=True) + "\n",
            "plan.md": md,
            "plan.png": mp.plot,
        })
        if not a.json:
            print(f"  wrote {a.out}/plan.json, plan.md, plan.png")
    return 0


def _table(graph: Any, problem: Any, lb: int, before: int, rows: list, plan_json: dict,
           a: argparse.Namespace, arena: int | None) -> list[str]:
    """The lines `llmc plan` prints (and plan.md holds)."""
    chosen = rows[-1][1]
    lines = [f"{graph.name}: {len(problem.buffers):,} activation buffers over "
             f"{len(graph.nodes):,} steps",
             f"  precision: {plan_json['precision']['describe']}"
             + (f" (target {a.target})" if a.target else ""),
             f"  {'lower bound':<22}{fmt_bin(lb):>14}"]
    if a.reorder or not a.unfused:
        how = " + ".join(w for w, on in (("memory-order", a.reorder), ("fuse", not a.unfused))
                         if on)
        lines.append(f"  {'(traced, op by op)':<22}{fmt_bin(before):>14}   {how} saved "
                     f"{fmt_bin(before - lb).strip()}")
    for label, pl in rows:
        lines.append(f"  {label:<22}{fmt_bin(pl.arena_bytes):>14}   x{pl.arena_bytes / lb:.4f}"
                     if lb else f"  {label:<22}{fmt_bin(pl.arena_bytes):>14}")
    regions = plan_json["static"]["regions"]
    lines.append("  apart: " + ", ".join(f"{r.replace('_', ' ')} {fmt_bin(v['bytes'])}"
                                         for r, v in regions.items()))
    lines.append(f"  plan: {chosen.status}, {chosen.solve_s:.2f} s"
                 + (f", fits the {fmt_bin(arena).strip()} arena" if arena else ""))
    return lines
