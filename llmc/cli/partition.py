"""`llmc partition`: split a model's layers into pipeline stages, balanced,
within a memory (llmc.passes.partition)."""

from __future__ import annotations

import argparse
from typing import Any

from llmc.cli.common import add_json, add_target, add_trace_shape, fmt_bin, parse_size, print_json
from llmc.cli.limits import check_trace


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("partition", help="split a model's layers into pipeline stages "
                                         "(devices or core groups), balanced, within a memory")
    p.add_argument("model", help="zoo name, HF-style directory, or file.py:factory")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--stages", type=int, help="number of stages")
    how.add_argument("--capacity", metavar="SIZE",
                     help="weight memory per stage (64MiB, 80GB, ...): the fewest stages that fit")
    p.add_argument("--stage-capacity", metavar="SIZE", default=None,
                   help="with --stages: also keep each stage's weights within SIZE")
    add_target(p, why="cost each op as its roofline time on its device (default: FLOPs)")
    add_trace_shape(p)
    add_json(p, "the partition")
    p.set_defaults(func=_partition)


def _on_device(graph: Any, target: str) -> tuple[Any, Any]:
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

    asked = (("--capacity", a.capacity) if a.capacity is not None else
             ("--stage-capacity", a.stage_capacity) if a.stage_capacity is not None else None)
    cap = None if asked is None else parse_size(asked[1], asked[0])
    check_trace(a.batch, a.seq_len)
    graph = api.trace(a.model, a.phase, a.batch, a.seq_len, weights="meta").graph
    cost, unit = flops, "FLOP"
    if a.target is not None:  # weights at the device's precision, costs in seconds
        graph, cost = _on_device(graph, a.target)
        unit = "s"
    if a.capacity is not None:
        part = fewest_stages(graph, cap, cost)
    else:
        part = partition_layers(graph, a.stages, cap, cost)
    pipe = None if a.target is None else _pipeline(part, a.target, a.batch,
                                                  a.phase == "decode")
    if a.json:
        print_json({"model": graph.name, "cost_unit": unit, "capacity_bytes": cap,
                    **part.to_json(), **({"pipeline": pipe} if pipe else {})})
        return 0
    fmt = (lambda c: f"{c / 1e9:,.2f} GFLOP") if unit == "FLOP" else (
        lambda c: f"{c * 1e3:,.3f} ms")
    wdtype = next((n.type.dtype.name for n in graph.param_nodes if n.type.rank == 2), "?")
    print(f"{graph.name}: {len(part.units)} layers in {len(part.stages)} stages (cost: "
          f"{'FLOPs' if unit == 'FLOP' else 'roofline time on ' + a.target}; {wdtype} weights)")
    for s in part.stages:
        print(f"  stage {s.index:<3} layers {s.first_layer:>3}-{s.last_layer:<3} "
              f"weights {fmt_bin(s.weight_bytes):>12}  {fmt(s.cost):>16}")
    print(f"  bottleneck {fmt(part.bottleneck)}, balance {part.balance:.4f} "
          "(1.0: every stage equal)")
    if cap is not None or pipe:
        print("  " + _capacity_line(part, cap, asked, pipe, a.target))
    if pipe:
        if pipe["boundary_bytes"]:
            print(f"  between stages {fmt_bin(max(pipe['boundary_bytes']))} over {pipe['link']}: "
                  f"{pipe['transfer_s'] * 1e6:,.1f} us")
        per = "token" if a.phase == "decode" else "prompt"
        n = len(part.stages)
        print(f"  a batch of {a.batch} through every stage: {pipe['latency_s'] * 1e3:,.3f} ms; "
              f"with {n} batches in flight (one per stage) one leaves every "
              f"{pipe['interval_s'] * 1e3:,.3f} ms: {pipe['items_per_s']:,.1f} {per}s/s")
    return 0


def _capacity_line(part: Any, cap: int | None, asked: tuple[str, str] | None,
                   pipe: dict | None, target: str | None) -> str:
    """The weight capacity the stages were fitted in: the one asked for
    (--capacity / --stage-capacity) first, then the target device's."""

    def verdict(over: list[int]) -> str:
        return "every stage fits" if not over else \
            "stage " + ", ".join(map(str, over)) + " does not fit"

    parts = []
    if cap is not None:
        over = [s.index for s in part.stages if s.weight_bytes > cap]
        parts.append(f"weights within {asked[0]} {asked[1]} ({fmt_bin(cap)}) per stage: "
                     f"{verdict(over)}")
    if pipe:
        room = fmt_bin(pipe["device_weight_bytes"])
        over = [s["stage"] for s in pipe["stages_over_capacity"]]
        parts.append(f"per device {room} for weights: {verdict(over)}" if cap is None else
                     f"one {target} device holds {room}: {verdict(over)}")
    return "; ".join(parts)


def _pipeline(part: Any, target: str, batch: int, decode: bool) -> dict:
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
