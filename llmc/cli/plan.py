"""Sub-commands of the passes area: `eval` (quantization), `plan` (memory) and
`partition` (pipeline stages, llmc.cli.partition).

`plan` plans a traced model's activations (at a `--target`'s element sizes
when given) or, with `--buffers FILE`, a user's own list of buffers.
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
METHODS = ("auto", "cpsat", "mip", "memo", "greedy", "bestfit")


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
    if a.quant is None:  # float only: nothing to compare with
        print(f"  perplexity  float: {r.float_perplexity:.4f}")
        print(f"  weights     {r.float_weight_bytes:,} B")
        if r.float_kv_bytes_per_token:
            print(f"  KV cache    {r.float_kv_bytes_per_token:,.1f} B/token")
        return 0
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
    p = sub.add_parser("plan", help="plan a model's activation memory (or a list of buffers) "
                                    "in one arena: lower bound, greedy, best-fit and CP-SAT, "
                                    "spills when the arena is too small, with a picture")
    p.add_argument("model", nargs="?", default=None,
                   help="zoo name, HF-style directory, or file.py:factory (or give --buffers)")
    p.add_argument("--buffers", metavar="FILE", default=None,
                   help="plan these buffers instead of a model: JSON (a list of {name, size, "
                        "start, end}, optional alignment, bank, access) or CSV with columns "
                        "name,size,start,end")
    p.add_argument("--alignment", type=int, default=None, metavar="BYTES",
                   help="with --buffers: offset alignment (default: the file's, else 64)")
    p.add_argument("--bank-bytes", type=int, default=None, metavar="BYTES",
                   help="with --buffers: the bank size the file's bank rules refer to "
                        "(default: the file's)")
    add_trace_shape(p)
    p.add_argument("--target", "-t", default=None,
                   help="plan at the element sizes the cost model charges on this target "
                        "(a float32 trace at the device's default, bf16 on GPUs); default: "
                        "the graph's own dtypes")
    p.add_argument("--banks", choices=("start", "within"), default=None,
                   help="keep every buffer on a bank boundary (start) or inside as few banks "
                        "as it needs (within), banks as the --target's scratchpad has them")
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="auto (greedy-by-size or best-fit when at the lower bound, else the "
                        "per-layer decomposition and CP-SAT), cpsat (CP-SAT on the whole "
                        "graph), mip (the CBC MIP), memo (one solve per distinct layer, "
                        "reused), greedy (TFLite greedy-by-size), bestfit")
    p.add_argument("--arena", metavar="SIZE", default=None,
                   help="capacity to fit in (bytes, or 64MiB, 2GB, ...); below what the plan "
                        "needs, auto and cpsat spill to DRAM (fewest bytes moved), the other "
                        "methods report the bytes missing")
    p.add_argument("--tile-rows", metavar="auto|N", default=None,
                   help="split the prefill's position-wise work into N row tiles first (the "
                        "tile-rows pass), so each step reads and writes less; auto: the "
                        "fewest tiles whose steps fit --arena")
    p.add_argument("--reorder", action="store_true",
                   help="run the memory-order pass first (OLLA-style: the topological "
                        "order with the lower peak)")
    p.add_argument("--unfused", action="store_true",
                   help="plan op by op (default: as compiled, after the fuse pass, where a "
                        "value that stays inside a kernel needs no buffer)")
    p.add_argument("--time-limit", type=float, default=30.0, metavar="S",
                   help="solver time limit in seconds (the best plan found is kept)")
    add_out(p, "plan.json, plan.md and plan.png")
    add_json(p, "the table's figures and the plan (plan.json)")
    p.set_defaults(func=_plan)


def _plan(a: argparse.Namespace) -> int:
    """`llmc plan`: a model's activation plan (or, with --buffers, a user's)."""
    if (a.model is None) == (a.buffers is None):
        raise UsageError("llmc plan: give a model or --buffers FILE (one of them)")
    if a.out:
        from llmc.outdir import check_dest

        check_dest(a.out, "plan.json")
    arena = None if a.arena is None else parse_size(a.arena)
    if not a.time_limit > 0:
        raise UsageError(f"--time-limit must be positive, got {a.time_limit}")
    if a.tile_rows is not None and a.tile_rows != "auto" and not (
            a.tile_rows.isdigit() and int(a.tile_rows) >= 1):
        raise UsageError(f"--tile-rows takes auto or a positive tile count, got {a.tile_rows!r}")
    if a.tile_rows == "auto" and arena is None:
        raise UsageError("--tile-rows auto needs --arena (the capacity the steps must fit)")
    if a.buffers is not None:
        return _plan_buffers(a, arena)
    if a.alignment is not None or a.bank_bytes is not None:
        raise UsageError("--alignment and --bank-bytes apply to --buffers (a model's plan "
                         "aligns to 64 bytes; --banks takes banks from --target)")
    if a.banks is not None and a.target is None:
        raise UsageError("--banks needs --target (whose scratchpad's banks to keep to)")
    from llmc import api
    from llmc.passes.fusion import fuse
    from llmc.passes.memplan import best_fit, greedy_by_size, lower_bound
    from llmc.passes.memplan.liveness import liveness
    from llmc.passes.memplan.reorder import memory_order

    check_trace(a.batch, a.seq_len)
    traced = api.trace(a.model, a.phase, a.batch, a.seq_len, weights="meta")
    graph = traced.graph
    before = lower_bound(liveness(api.at_plan_precision(graph, target=a.target)[0]).problem)
    if a.reorder:
        graph = memory_order(graph)
    tiles = None
    if a.tile_rows is not None:
        graph, tiles = _tile_rows(graph, a, arena)
    if not a.unfused:
        graph = fuse(graph)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mp = api.plan_memory(graph, a.method, arena, a.time_limit, target=a.target,
                             banks=a.banks)
    problem, chosen = mp.problem, mp.plan
    lb = lower_bound(problem)
    rows = [("greedy-by-size", greedy_by_size(problem)), ("best-fit", best_fit(problem))]
    for w in caught:
        sys.stderr.write(f"llmc: warning: {w.message}\n")
    rows.append((f"{chosen.method} ({a.method})" if a.method == "auto" else chosen.method,
                 chosen))
    lines = _table(graph, problem, lb, before, rows, mp.json, a, arena)
    if tiles is not None:
        lines.insert(2, f"  {tiles.describe()}")
    if a.json:
        print_json({"graph": graph.name, "buffers": len(problem.buffers),
                    "tile_rows": None if tiles is None else {
                        "tiles": tiles.tiles, "anchored_bytes": tiles.anchored_bytes,
                        "tried": [list(t) for t in tiles.tried]},
                    "steps": len(graph.nodes), "lower_bound_bytes": lb,
                    "traced_lower_bound_bytes": before,
                    "arena_bytes": {label: pl.arena_bytes for label, pl in rows},
                    "capacity_bytes": arena, "status": chosen.status, "plan": mp.json})
    else:
        print("\n".join(lines))
    if a.out:
        _write(a.out, lines, mp.json, mp.png, quiet=a.json)
    return 0


def _tile_rows(graph: Any, a: argparse.Namespace, arena: int | None) -> tuple[Any, Any]:
    """`--tile-rows`: the graph in row tiles, and the choice (a TileChoice)."""
    from llmc import api
    from llmc.passes.fusion import fuse
    from llmc.passes.tile_rows import tiles_to_fit

    def prepare(g: Any) -> Any:  # as it will be planned
        return api.at_plan_precision(g if a.unfused else fuse(g), target=a.target)[0]

    if a.tile_rows == "auto":
        choice = tiles_to_fit(graph, arena, prepare=prepare)
    else:
        choice = tiles_to_fit(graph, None, prepare=prepare, min_tiles=int(a.tile_rows))
    return choice.graph, choice


def _plan_buffers(a: argparse.Namespace, arena: int | None) -> int:
    """`llmc plan --buffers FILE`: a user's buffer list, planned by the same methods."""
    from llmc.passes.memplan import load_buffers, plan, plan_png, plan_to_json

    for flag, on in (("--reorder", a.reorder), ("--unfused", a.unfused),
                     ("--tile-rows", a.tile_rows is not None),
                     ("--target", a.target is not None), ("--banks", a.banks is not None)):
        if on:
            raise UsageError(f"{flag} applies to a model, not to --buffers (give bank rules "
                             "and alignment in the file)")
    problem = load_buffers(a.buffers, a.alignment, a.bank_bytes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chosen = plan(problem, a.method, arena, a.time_limit)
    for w in caught:
        sys.stderr.write(f"llmc: warning: {w.message}\n")
    data = plan_to_json(problem, chosen, timing=False)
    lines = [f"{a.buffers}: {len(problem.buffers):,} buffers", *_verdict(chosen, arena)]
    if a.json:
        print_json({"arena_bytes": chosen.arena_bytes, "lower_bound_bytes":
                    chosen.lower_bound_bytes, "method": chosen.method, "optimal":
                    chosen.optimal, "gap": data["gap"], "bound_bytes": data["bound_bytes"],
                    "seconds": round(chosen.solve_s, 3), "capacity_bytes": arena,
                    "spills": data.get("spills")})
    else:
        print("\n".join(lines))
    if a.out:
        _write(a.out, [*lines, ""], data, lambda: plan_png(problem, chosen), quiet=a.json)
    return 0


def _verdict(chosen: Any, arena: int | None) -> list[str]:
    """What `llmc plan` says of the chosen plan: method, bound, proof, spills."""
    lb = chosen.lower_bound_bytes
    proof = ("proved optimal" if chosen.optimal else
             "not proved optimal" + (f", within {chosen.gap:.2%} of the proved bound "
                                     f"{fmt_bin(chosen.proved_bound).strip()}"
                                     if chosen.gap is not None else ""))
    out = [f"  {'lower bound':<22}{fmt_bin(lb):>14}",
           f"  {chosen.method:<22}{fmt_bin(chosen.arena_bytes):>14}"
           + (f"   x{chosen.arena_bytes / lb:.4f}" if lb else "")]
    sp = chosen.spills
    if sp is not None:
        out.append(f"  spills: {len(sp.segments)} buffer(s) out to DRAM and back: "
                   f"{fmt_bin(sp.to_dram_bytes).strip()} written, "
                   f"{fmt_bin(sp.from_dram_bytes).strip()} read back, "
                   f"{fmt_bin(sp.moved_bytes).strip()} of DMA traffic added")
    out.append(f"  plan: {chosen.method}, {proof}, {chosen.solve_s:.2f} s"
               + (f", fits the {fmt_bin(arena).strip()} arena" if arena else ""))
    return out


def _write(out: str, lines: list[str], data: dict, png: Any, quiet: bool) -> None:
    from pathlib import Path

    from llmc.outdir import write_dir

    md = "\n".join(["# Memory plan", "", "```", *lines[:-1], "```", "",
                    "Picture: plan.png (buffers as rectangles, time x address); "
                    "data: plan.json.", ""])
    write_dir(Path(out), marker="plan.json", files={
        "plan.json": json.dumps(data, indent=2, sort_keys=True) + "\n",
        "plan.md": md,
        "plan.png": lambda path: path.write_bytes(png()),
    })
    if not quiet:
        print(f"  wrote {out}/plan.json, plan.md, plan.png")


def _table(graph: Any, problem: Any, lb: int, before: int, rows: list, plan_json: dict,
           a: argparse.Namespace, arena: int | None) -> list[str]:
    """The lines `llmc plan` prints (and plan.md holds)."""
    chosen = rows[-1][1]
    lines = [f"{graph.name}: {len(problem.buffers):,} activation buffers over "
             f"{len(graph.nodes):,} steps",
             f"  precision: {plan_json['precision']['describe']}"
             + (f" (target {a.target})" if a.target else ""),
             f"  {'lower bound':<22}{fmt_bin(lb):>14}"]
    if a.reorder or not a.unfused or a.tile_rows is not None:
        how = " + ".join(w for w, on in (("memory-order", a.reorder),
                                         ("tile-rows", a.tile_rows is not None),
                                         ("fuse", not a.unfused)) if on)
        lines.append(f"  {'(traced, op by op)':<22}{fmt_bin(before):>14}   {how} saved "
                     f"{fmt_bin(before - lb).strip()}")
    for label, pl in rows:
        lines.append(f"  {label:<22}{fmt_bin(pl.arena_bytes):>14}   x{pl.arena_bytes / lb:.4f}"
                     if lb else f"  {label:<22}{fmt_bin(pl.arena_bytes):>14}")
    regions = plan_json["static"]["regions"]
    lines.append("  apart: " + ", ".join(f"{r.replace('_', ' ')} {fmt_bin(v['bytes'])}"
                                         for r, v in regions.items()))
    return lines + _verdict(chosen, arena)[2:]
