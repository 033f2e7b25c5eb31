"""`llmc report` and `llmc devices`: the cost model's sub-commands.

Zoo models and Hugging Face config directories are costed from their config
(the zoo decoder's ops are synthesized, no torch.export: a 34B model takes
well under a second); a `file.py:factory` model is traced (prefill only).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from llmc.cli import sweep
from llmc.cli.common import (
    TARGET_HELP,
    add_batch,
    add_gen_tokens,
    add_json,
    add_out,
    add_seq_len,
    add_target,
    names,
    print_json,
)
from llmc.cli.limits import check_cost, positive
from llmc.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="roofline, energy and long-context report of a model "
                                      "on a target")
    p.add_argument("model", help="zoo name, HF-style directory, or file.py:factory")
    add_target(p)
    p.add_argument("--compare", metavar="T1,T2,...",
                   help=f"targets side by side (a100,h100,npu); each {TARGET_HELP}")
    add_batch(p)
    add_seq_len(p, None, "prompt (prefill) length in tokens (default min(2048, the model's "
                         "context))")
    add_gen_tokens(p, 256)
    p.add_argument("--context", type=int, default=None, metavar="N",
                   help="KV length a decode step reads (default seq-len + gen-tokens)")
    p.add_argument("--tp", type=int, default=1, help="tensor-parallel devices (default 1)")
    p.add_argument("--quant", default=None,
                   help="a quantization scheme, whose passes run as `llmc compile --quant` "
                        "runs them (bfp12, w4a16, w8a8-int, ...), or storage formats as a "
                        "what-if (bf16, fp8, int8, int4, int4-w+bfp12-kv, 2:4, ...; default: "
                        "the device's)")
    p.add_argument("--unfused", action="store_true",
                   help="cost every op on its own (default: fused kernels, as compiled)")
    add_out(p, "report.md/.json/.html and plots")
    add_json(p, "report.json")
    p.set_defaults(func=_report)

    sweep.register(sub)

    p = sub.add_parser("devices", help="list the cost model's hardware database")
    add_json(p, "the figures")
    p.set_defaults(func=_devices)


def _model(spec: str) -> tuple[object | None, object | None, str]:
    """(config, prefill graph, name) of a model spec, without tracing when possible."""
    from llmc.frontend.zoo.config import get_config

    path = Path(spec)
    if ".py:" in spec:
        from llmc import api

        traced = api.trace(spec, "prefill")
        return None, traced.graph, traced.model.name
    if path.is_dir() or spec.endswith("config.json"):
        from llmc.frontend.loader import config_from_hf

        d = path if path.is_dir() else path.parent
        try:
            raw = json.loads((d / "config.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"{d}/config.json: cannot read: {exc}") from None
        cfg = config_from_hf(raw, d.name)
        return cfg, None, cfg.name
    cfg = get_config(spec)
    return cfg, None, cfg.name


def _report(a: argparse.Namespace) -> int:
    from llmc.costmodel.report import build_report
    from llmc.outdir import check_dest

    if bool(a.target) == bool(a.compare):
        raise UsageError("give one of --target T or --compare T1,T2,...")
    if a.out:
        check_dest(a.out, "report.json")
    targets = names(a.compare or a.target, "--compare" if a.compare else "--target")
    check_cost([a.batch], seq_len=a.seq_len, gen_tokens=a.gen_tokens, context=a.context)
    positive("--tp", a.tp)
    cfg, graph, name = _model(a.model)
    reports = [build_report(graph, None, cfg, t, batch=a.batch, prompt=a.seq_len,
                            output=a.gen_tokens, context=a.context, tp=a.tp, quant=a.quant,
                            model=name, fuse=not a.unfused)
               for t in targets]
    if a.compare:
        from llmc.costmodel.compare import Comparison

        out = Comparison(reports)
        if not a.json:
            print(out.to_text())
    else:
        out = reports[0]
        if not out.memory.fits:
            m = out.memory
            raise UsageError(
                f"{name} does not fit on {out.target}: {m.weight_bytes / 1e9:,.1f} GB of "
                f"{out.precision.weight.name} weights per device + {m.reserved_bytes / 1e9:,.1f} "
                f"GB reserved exceed its {m.capacity_bytes / 1e9:,.1f} GB by "
                f"{m.missing_bytes / 1e9:,.1f} GB; try --tp N or --quant int4")
        if not a.json:
            print(_summary(out))
    if a.json:
        print(json.dumps(out.to_json(), indent=2, sort_keys=True))
    if a.out:
        paths = out.write(a.out)
        if not a.json:
            print(f"  wrote {', '.join(p.name for p in paths)} to {a.out}/")
    return 0


def _summary(r: Any) -> str:
    from llmc.costmodel.explain import fmt_bytes, fmt_s

    lines = [f"{r.model} on {r.target} ({r.device.description}), {r.precision.describe()}; "
             f"batch {r.batch}, prompt {r.prompt:,}, context {r.context:,}, tp {r.tp}"]
    if not r.memory.fits:
        lines.append(f"  does not fit: {fmt_bytes(r.memory.missing_bytes)} missing")
        return "\n".join(lines)
    p = r.prefill
    lines.append(f"  prefill  {fmt_s(p.time_s)} expected ({fmt_s(p.roofline_s)} roofline), "
                 f"{p.bound}-bound, {p.energy_j:,.3g} J")
    if r.decode is not None:
        d = r.decode
        lines.append(f"  decode   {fmt_s(d.time_s)}/token expected ({fmt_s(d.roofline_s)} "
                     f"roofline), {d.bound}-bound, {r.batch / d.time_s:,.1f} tokens/s, "
                     f"{d.energy_j / r.batch:,.3g} J/token")
    if r.kv_bytes_per_token is not None:
        n = r.max_concurrent_requests
        lines.append(f"  memory   {fmt_bytes(r.prefill_w.weight_bytes)} weights, "
                     f"{r.kv_bytes_per_token:,.0f} B KV/token, {n:,} concurrent "
                     f"request{'' if n == 1 else 's'} at {r.context:,} tokens, context switch "
                     f"{fmt_s(r.context_switch_s)}")
    return "\n".join(lines)


def _devices(a: argparse.Namespace) -> int:
    from llmc.costmodel.explain import fmt_bytes, fmt_rate
    from llmc.hw.database import list_devices

    devices = list_devices()
    if a.json:
        print_json({k: {"description": d.description, "path": d.path,
                        "compute_flops_per_s": {u: c.flops_per_s for u, c in d.compute.items()},
                        "memory": {m.name: {"capacity_bytes": m.capacity_bytes,
                                            "bytes_per_s": m.bytes_per_s} for m in d.memory
                                   if not m.hardwired},
                        "tdp_w": d.tdp_w.value} for k, d in devices.items()})
        return 0
    for k, d in devices.items():
        best = max(d.compute.values(), key=lambda u: u.flops_per_s)
        m = d.main
        print(f"{k:<16} {d.description}\n{'':<16} peak {fmt_rate(best.flops_per_s)} "
              f"({best.dtype}), {m.name} {fmt_bytes(m.capacity_bytes)} at "
              f"{fmt_rate(m.bytes_per_s, 'B/s')}, TDP {d.tdp_w.value:g} W  [{Path(d.path).name}]")
    return 0
