"""`llmc report` and `llmc devices`: the cost model's sub-commands.

Zoo models and Hugging Face config directories are costed from their config
(the zoo decoder's ops are synthesized, no torch.export: a 34B model takes
well under a second); a `file.py:factory` model is traced (prefill only).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from llmc.errors import UsageError
from llmc.outdir import check_dest


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="roofline, energy and long-context report of a model "
                                      "on a target")
    p.add_argument("model", help="zoo name, HF-style directory, or file.py:factory")
    p.add_argument("--target", "-t", help="a100, a100-40gb, h100, h200, npu, hnlpu, spinnaker2, "
                                          "a device key (llmc devices) or a device file")
    p.add_argument("--compare", metavar="T1,T2,...", help="targets side by side (a100,h100,npu)")
    p.add_argument("--batch", type=int, default=1, help="sequences per step (default 1)")
    p.add_argument("--prompt", type=int, default=None,
                   help="prefill length in tokens (default min(2048, the model's context))")
    p.add_argument("--output", type=int, default=256, help="tokens generated (default 256)")
    p.add_argument("--context", type=int, default=None,
                   help="KV length a decode step reads (default prompt + output)")
    p.add_argument("--tp", type=int, default=1, help="tensor-parallel devices (default 1)")
    p.add_argument("--quant", default=None,
                   help="a quantization scheme, whose passes run as `llmc compile --quant` "
                        "runs them (bfp12, w4a16, w8a8-int, ...), or storage formats as a "
                        "what-if (bf16, fp8, int8, int4, int4-w+bfp12-kv, 2:4, ...; default: "
                        "the device's)")
    p.add_argument("--unfused", action="store_true",
                   help="cost every op on its own (default: fused kernels, as compiled)")
    p.add_argument("-o", "--out", help="directory for report.md/.json/.html and plots")
    p.add_argument("--json", action="store_true", help="print report.json to stdout")
    p.set_defaults(func=_report)

    _register_sweep(sub)

    p = sub.add_parser("devices", help="list the cost model's hardware database")
    p.add_argument("--json", action="store_true", help="the figures as JSON")
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

    if bool(a.target) == bool(a.compare):
        raise UsageError("give one of --target T or --compare T1,T2,...")
    if a.out:
        check_dest(a.out, "report.json")
    targets = [t.strip() for t in (a.compare or a.target).split(",")]
    if not all(targets):
        raise UsageError(f"--compare {a.compare!r}: empty target name")
    cfg, graph, name = _model(a.model)
    reports = [build_report(graph, None, cfg, t, batch=a.batch, prompt=a.prompt, output=a.output,
                            context=a.context, tp=a.tp, quant=a.quant, model=name,
                            fuse=not a.unfused)
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


def _summary(r) -> str:  # noqa: ANN001
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
        out = {k: {"description": d.description, "path": d.path,
                   "compute_flops_per_s": {u: c.flops_per_s for u, c in d.compute.items()},
                   "memory": {m.name: {"capacity_bytes": m.capacity_bytes,
                                       "bytes_per_s": m.bytes_per_s} for m in d.memory
                              if not m.hardwired},
                   "tdp_w": d.tdp_w.value} for k, d in devices.items()}
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    for k, d in devices.items():
        best = max(d.compute.values(), key=lambda u: u.flops_per_s)
        m = d.main
        print(f"{k:<16} {d.description}\n{'':<16} peak {fmt_rate(best.flops_per_s)} "
              f"({best.dtype}), {m.name} {fmt_bytes(m.capacity_bytes)} at "
              f"{fmt_rate(m.bytes_per_s, 'B/s')}, TDP {d.tdp_w.value:g} W  [{Path(d.path).name}]")
    return 0


def _register_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="design-space sweep: models x targets x precisions x "
                                     "batch x TP, in parallel, with the Pareto front")
    p.add_argument("--models", required=True, metavar="M1,M2", help="zoo names")
    p.add_argument("--targets", required=True, metavar="T1,T2", help="targets or device keys")
    p.add_argument("--quant", default="", metavar="Q1,Q2",
                   help="schemes or storage formats (bf16, int8, int4, w4a16, bfp12, "
                        "int4-w+int8-a, ...; empty: the device's)")
    p.add_argument("--batch", default="1", metavar="B1,B2", help="batch sizes (default 1)")
    p.add_argument("--tp", default="1", metavar="N1,N2", help="tensor-parallel degrees")
    p.add_argument("--prompt", type=int, default=None, help="prefill length")
    p.add_argument("--output", type=int, default=256, help="tokens generated")
    p.add_argument("--context", type=int, default=None, help="KV length a decode step reads")
    p.add_argument("-j", "--jobs", type=int, default=None,
                   help="worker processes (default: one per core)")
    p.add_argument("-o", "--out", default=None, help="write sweep.json/.csv/.md/.png here")
    p.set_defaults(func=_sweep)


def _ints(text: str, flag: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise UsageError(f"{flag} takes comma-separated integers, got {text!r}") from None


def _names(text: str, flag: str) -> list[str]:
    names = [x.strip() for x in text.split(",")]
    if not all(names):
        raise UsageError(f"{flag} {text!r}: empty name")
    return names


def _sweep(a: argparse.Namespace) -> int:
    from llmc.commands import progress
    from llmc.costmodel.sweep import Shape, files, markdown, points, sweep

    if a.out:
        check_dest(a.out, "sweep.json")
    quants = [q.strip() or None for q in a.quant.split(",")] if a.quant else [None]
    pts = points(_names(a.models, "--models"), _names(a.targets, "--targets"), quants,
                 _ints(a.batch, "--batch"), _ints(a.tp, "--tp"))
    if a.jobs is not None and a.jobs <= 0:
        raise UsageError(f"--jobs must be positive, got {a.jobs}")
    for name in ("prompt", "output", "context"):
        v = getattr(a, name)
        if v is not None and v <= 0:
            raise UsageError(f"--{name} must be a positive integer, got {v}")
    shape = Shape(a.prompt, a.output, a.context)
    with progress(len(pts)) as step:
        rows = sweep(pts, shape, a.jobs, step)
    print(markdown(rows, shape), end="")
    if a.out:
        from llmc.outdir import write_dir

        write_dir(a.out, files(rows, shape), marker="sweep.json")
        print(f"wrote sweep.json, sweep.csv, sweep.md, sweep.png to {a.out}/")
    return 0
