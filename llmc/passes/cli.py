"""Sub-commands of the passes area: `eval` (quantization), `plan` (memory) and
`partition` (pipeline stages).

Each command registers itself in its own `_register_<name>(sub)`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings

from llmc.errors import UsageError
from llmc.outdir import check_dest


def register(sub: argparse._SubParsersAction) -> None:
    _register_eval(sub)
    _register_plan(sub)
    _register_partition(sub)


# ---- eval -------------------------------------------------------------------------


def _register_eval(sub: argparse._SubParsersAction) -> None:
    from llmc.passes.quant.schemes import SCHEMES

    p = sub.add_parser("eval", help="held-out perplexity of a model, float vs a quantization "
                                    "scheme, with weight/KV bytes")
    p.add_argument("model", help="zoo name (llmc-tiny ships weights)")
    p.add_argument("--quant", metavar="SCHEME", default=None,
                   help=f"quantization scheme: {', '.join(SCHEMES)}")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--windows", type=int, default=16,
                   help="held-out windows to evaluate (0: all); default 16")
    p.add_argument("--seq-len", type=int, default=256, help="window length (default 256)")
    p.add_argument("--batch", type=int, default=8, help="windows per interpreter run")
    p.add_argument("--weights", choices=("auto", "random"), default="auto",
                   help="auto: shipped weights; random: seeded random (smoke test)")
    p.set_defaults(func=_eval)


def _eval(a: argparse.Namespace) -> int:
    from llmc.api import evaluate
    from llmc.passes.quant.schemes import get_scheme

    for name in ("windows", "seq_len", "batch"):
        v = getattr(a, name)
        if v < 0 or (v == 0 and name != "windows"):
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {v}")
    if a.quant is not None:
        get_scheme(a.quant)  # unknown names fail before any tracing
    r = evaluate(a.model, a.quant, seq_len=a.seq_len, windows=a.windows or None,
                 batch=a.batch, weights=a.weights)
    if a.json:
        print(json.dumps(r.to_json(), sort_keys=True))
        return 0
    delta = 100.0 * (r.perplexity / r.float_perplexity - 1.0)
    print(f"{r.model} on {r.windows} held-out windows of {r.seq_len} tokens")
    print(f"  perplexity  {r.scheme}: {r.perplexity:.4f}   float: {r.float_perplexity:.4f}   "
          f"({delta:+.2f}%)")
    print(f"  weights     {r.weight_bytes:,} B   float: {r.float_weight_bytes:,} B   "
          f"(saved {r.float_weight_bytes - r.weight_bytes:,} B, "
          f"{r.float_weight_bytes / max(r.weight_bytes, 1):.2f}x smaller)")
    print(f"  KV cache    {r.kv_bytes_per_token:,.1f} B/token   float: "
          f"{r.float_kv_bytes_per_token:,.1f} B/token   "
          f"({r.float_kv_bytes_per_token / max(r.kv_bytes_per_token, 1e-9):.2f}x smaller)")
    return 0


# ---- plan -------------------------------------------------------------------------

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20,
          "gib": 2**30}


def parse_size(text: str, what: str = "--arena") -> int:
    """Bytes from "1048576", "64MiB", "1.5 GB" (KiB/MiB/GiB are powers of 2)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS:
        raise UsageError(f"{what}: cannot read {text!r} as a size (bytes, or a number with "
                         "KB, MB, GB, KiB, MiB or GiB)")
    n = float(m.group(1)) * _UNITS[unit]
    if n != int(n) or n <= 0:
        raise UsageError(f"{what}: {text!r} is not a positive whole number of bytes")
    return int(n)


def _register_plan(sub: argparse._SubParsersAction) -> None:
    from llmc.passes.memplan.planner import METHODS

    p = sub.add_parser("plan", help="plan a model's activation memory in one arena: lower "
                                    "bound, greedy, best-fit and MIP, with a picture")
    p.add_argument("model", help="zoo name, HF-style directory, or file.py:factory")
    p.add_argument("--phase", choices=("prefill", "decode"), default="prefill")
    p.add_argument("--seq-len", type=int, default=None,
                   help="prompt length (prefill) / KV-cache length (decode); "
                        "default min(128, the model's context)")
    p.add_argument("--batch", type=int, default=1)
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
    p.add_argument("-o", "--out", default=None,
                   help="write plan.json, plan.md and plan.png to this directory")
    p.set_defaults(func=_plan)


def _plan(a: argparse.Namespace) -> int:
    from llmc import api
    from llmc.passes.fusion import fuse
    from llmc.passes.memplan import best_fit, greedy_by_size, lower_bound
    from llmc.passes.memplan.liveness import liveness
    from llmc.passes.memplan.reorder import memory_order

    if a.out:
        check_dest(a.out, "plan.json")
    arena = None if a.arena is None else parse_size(a.arena)
    if not a.time_limit > 0:
        raise UsageError(f"--time-limit must be positive, got {a.time_limit}")
    traced = api.trace(a.model, a.phase, a.batch, a.seq_len, weights="meta")
    graph = traced.graph
    before = lower_bound(liveness(graph).problem)
    if a.reorder:
        graph = memory_order(graph)
    if not a.unfused:
        graph = fuse(graph)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mp = api.plan_memory(graph, a.method, arena, a.time_limit)
    problem, chosen = mp.problem, mp.plan
    lb = lower_bound(problem)
    rows = [("greedy-by-size", greedy_by_size(problem)), ("best-fit", best_fit(problem))]
    for w in caught:
        sys.stderr.write(f"llmc: warning: {w.message}\n")
    rows.append((f"{chosen.method} ({a.method})" if a.method == "auto" else chosen.method,
                 chosen))
    steps = len(graph.nodes)
    lines = [f"{graph.name}: {len(problem.buffers):,} activation buffers over {steps:,} steps",
             f"  {'lower bound':<22}{_mib(lb):>14}"]
    if a.reorder or not a.unfused:
        how = " + ".join(w for w, on in (("memory-order", a.reorder), ("fuse", not a.unfused))
                         if on)
        lines.append(f"  {'(traced, op by op)':<22}{_mib(before):>14}   {how} saved "
                     f"{_mib(before - lb).strip()}")
    for label, pl in rows:
        lines.append(f"  {label:<22}{_mib(pl.arena_bytes):>14}   x{pl.arena_bytes / lb:.4f}"
                     if lb else f"  {label:<22}{_mib(pl.arena_bytes):>14}")
    regions = mp.json["static"]["regions"]
    lines.append("  apart: " + ", ".join(f"{r.replace('_', ' ')} {_mib(v['bytes'])}"
                                         for r, v in regions.items()))
    lines.append(f"  plan: {chosen.status}, {chosen.solve_s:.2f} s"
                 + (f", fits the {_mib(arena).strip()} arena" if arena else ""))
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
        print(f"  wrote {a.out}/plan.json, plan.md, plan.png")
    return 0


def _mib(n: float) -> str:
    """Bytes in the largest binary unit that keeps the number >= 1."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:,.2f} {unit}"
    return f"{n:,.0f} B"


# ---- partition --------------------------------------------------------------------


def _register_partition(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("partition", help="split a model's layers into pipeline stages "
                                         "(devices or core groups), balanced, within a memory")
    p.add_argument("model", help="zoo name, HF-style directory, or file.py:factory")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--stages", type=int, help="number of stages")
    how.add_argument("--capacity", metavar="SIZE",
                     help="weight memory per stage (64MiB, 80GB, ...): the fewest stages that fit")
    p.add_argument("--stage-capacity", metavar="SIZE", default=None,
                   help="with --stages: also keep each stage's weights within SIZE")
    p.add_argument("--target", default=None,
                   help="cost each op as its roofline time on this target's device "
                        "(default: FLOPs)")
    p.add_argument("--phase", choices=("prefill", "decode"), default="prefill")
    p.add_argument("--seq-len", type=int, default=None,
                   help="prompt length (prefill) / KV-cache length (decode)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_partition)


def _on_device(graph, target: str):  # noqa: ANN001, ANN202
    """`graph` at `target`'s default precision, and each node's roofline time
    (s) on its device."""
    from llmc.costmodel.precision import parse_quant
    from llmc.costmodel.roofline import place, time_op
    from llmc.costmodel.workload import records, retype, weight_storage
    from llmc.hw.database import get_device

    dev = get_device(target)
    g = retype(graph, parse_quant(None, dev.default_quant))
    where = place(dev, weight_storage(g)[0], 0.0)
    times = {r.name: time_op(dev, r, where).time_s for r in records(g, fuse=False)}
    return g, lambda n: times.get(n.name, 0.0)


def _partition(a: argparse.Namespace) -> int:
    from llmc import api
    from llmc.passes.partition import fewest_stages, flops, partition_layers

    graph = api.trace(a.model, a.phase, a.batch, a.seq_len, weights="meta").graph
    cost, unit = flops, "FLOP"
    if a.target is not None:  # weights at the device's precision, costs in seconds
        graph, cost = _on_device(graph, a.target)
        unit = "s"
    if a.capacity is not None:
        part = fewest_stages(graph, parse_size(a.capacity, "--capacity"), cost)
    else:
        cap = None if a.stage_capacity is None else parse_size(a.stage_capacity,
                                                               "--stage-capacity")
        part = partition_layers(graph, a.stages, cap, cost)
    pipe = None if a.target is None else _pipeline(part, a.target, a.batch,
                                                  a.phase == "decode")
    if a.json:
        print(json.dumps({"model": graph.name, "cost_unit": unit, **part.to_json(),
                          **({"pipeline": pipe} if pipe else {})}, sort_keys=True))
        return 0
    fmt = (lambda c: f"{c / 1e9:,.2f} GFLOP") if unit == "FLOP" else (
        lambda c: f"{c * 1e3:,.3f} ms")
    wdtype = next((n.type.dtype.name for n in graph.param_nodes if n.type.rank == 2), "?")
    print(f"{graph.name}: {len(part.units)} layers in {len(part.stages)} stages (cost: "
          f"{'FLOPs' if unit == 'FLOP' else 'roofline time on ' + a.target}; {wdtype} weights)")
    for s in part.stages:
        print(f"  stage {s.index:<3} layers {s.first_layer:>3}-{s.last_layer:<3} "
              f"weights {_mib(s.weight_bytes):>12}  {fmt(s.cost):>16}")
    print(f"  bottleneck {fmt(part.bottleneck)}, balance {part.balance:.4f} "
          "(1.0: every stage equal)")
    if pipe:
        short = [s["stage"] for s in pipe["stages_over_capacity"]]
        print(f"  per device {_mib(pipe['device_weight_bytes'])} for weights: "
              + ("every stage fits" if not short else
                 "stage " + ", ".join(map(str, short)) + " does not fit"))
        if pipe["boundary_bytes"]:
            print(f"  between stages {_mib(max(pipe['boundary_bytes']))} over {pipe['link']}: "
                  f"{pipe['transfer_s'] * 1e6:,.1f} us")
        per = "token" if a.phase == "decode" else "prompt"
        n = len(part.stages)
        print(f"  a batch of {a.batch} through every stage: {pipe['latency_s'] * 1e3:,.3f} ms; "
              f"with {n} batches in flight (one per stage) one leaves every "
              f"{pipe['interval_s'] * 1e3:,.3f} ms: {pipe['items_per_s']:,.1f} {per}s/s")
    return 0


def _pipeline(part, target: str, batch: int, decode: bool) -> dict:  # noqa: ANN001
    """Pipeline figures of a partition costed in seconds on `target`: stage
    boundaries over the scale-up link (else the host link), the latency of
    one batch through every stage, the steady-state interval and rate."""
    from llmc.hw.database import get_device
    from llmc.passes.partition import boundary_bytes

    dev = get_device(target)
    cap = sum(m.capacity_bytes for m in dev.memory if "weights" in m.holds)
    room = cap - dev.reserved_bytes.value
    link = dev.scale_up or dev.host_link
    crossing = boundary_bytes(part)
    transfer = max((b / link.bytes_per_s + link.latency_s for b in crossing), default=0.0) \
        if link else 0.0
    interval = max(part.bottleneck, transfer)
    return {"device_weight_bytes": room, "link": link.name if link else None,
            "stages_over_capacity": [{"stage": s.index, "missing_bytes": s.weight_bytes - room}
                                     for s in part.stages if s.weight_bytes > room],
            "boundary_bytes": crossing, "transfer_s": transfer,
            "latency_s": sum(s.cost for s in part.stages) + transfer * len(crossing),
            "interval_s": interval, "items_per_s": batch / interval if interval else 0.0}
