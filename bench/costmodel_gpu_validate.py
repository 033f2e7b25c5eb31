"""Validate llmc's cost model against measured op times on an NVIDIA GPU.

    python3 bench/costmodel_gpu_validate.py [--device KEY] [--quick] [--out DIR]
    python3 bench/costmodel_gpu_validate.py --dry-run      # no GPU: predictions only

Needs torch (CUDA build) and numpy; llmc's own parts used here (llmc.ir,
llmc.costmodel) are pure Python. For each op below it builds the IR node
with llmc.ir.Builder (so FLOPs and bytes come from the op registry), asks
the cost model for its roofline and expected time on the device file's
figures, measures the same op with PyTorch (bf16, CUDA events, median over
repetitions after warm-up, inputs rotated so the weights are not served
from L2), and reports the error predicted / measured - 1 per op:

- GEMM, prefill shapes: llama-2-7b / yi-34b projections at 512-8192 tokens;
- GEMV, decode shapes: the same weights at batch 1, 8 and 32;
- attention: causal prefill (SDPA, FlashAttention backend) at 1K-16K tokens,
  and decode (one query over a 4K-128K KV cache), MHA and GQA;
- elementwise add of large tensors (HBM bandwidth).

Calibration: the efficiency factors that fit the measurements, each the
median achieved fraction of peak over the ops it governs (matmul: the
compute-bound GEMMs; attention: the prefill attentions; memory: the
memory-bound ops; kernel_overhead_s: the fastest small op's excess). The
script prints them as a TOML [efficiency] block to paste into the device
file (llmc/hw/devices/<key>.toml) with this run as the source, and
writes bench/results/costmodel_gpu.{md,json} with the device it ran on.
Goal: mean absolute error <= 10% after calibration.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmc.costmodel.roofline import OpTiming, Placement, time_op  # noqa: E402
from llmc.costmodel.workload import records  # noqa: E402
from llmc.hw.database import get_device  # noqa: E402
from llmc.hw.device import Device, Figure  # noqa: E402
from llmc.ir.dtypes import bf16  # noqa: E402
from llmc.ir.graph import Builder, Graph  # noqa: E402
from llmc.ir.types import TensorType  # noqa: E402

# Model shapes (hidden, q heads, kv heads, head dim, ffn) the ops come from.
SHAPES = {"llama-2-7b": (4096, 32, 32, 128, 11008), "yi-34b": (7168, 56, 8, 128, 20480)}
NAMES = {"H100": "h100-sxm5", "H200": "h200-sxm", "A100-SXM4-80GB": "a100-sxm4-80gb",
         "A100-SXM4-40GB": "a100-sxm4-40gb", "A100 80GB PCIe": "a100-pcie-80gb",
         "A100-PCIE-80GB": "a100-pcie-80gb"}


@dataclass
class Case:
    """One measured op: its IR graph (one op node) and how to run it in torch."""

    name: str
    kind: str           # gemm, gemv, attention-prefill, attention-decode, elementwise
    graph: Graph
    torch_spec: dict


def _t(*shape: int) -> TensorType:
    return TensorType(shape, bf16)


def gemm_case(name: str, kind: str, m: int, n: int, k: int) -> Case:
    g = Graph(name)
    b = Builder(g)
    x, w = b.input("x", _t(m, k)), b.param("w", _t(n, k), None)
    b.add("linear", (x, w), {}, loc=name)
    return Case(name, kind, g, {"op": "linear", "m": m, "n": n, "k": k})


def attention_case(name: str, kind: str, batch: int, heads: int, kv_heads: int, tq: int,
                   tk: int, d: int) -> Case:
    g = Graph(name)
    b = Builder(g)
    q = b.input("q", _t(batch, heads, tq, d))
    k, v = (b.input(n, _t(batch, kv_heads, tk, d)) for n in ("k_cache_0", "v_cache_0"))
    causal = tq == tk
    b.add("attention", (q, k, v), {"causal": causal, "scale": 1 / math.sqrt(d)}, loc=name)
    return Case(name, kind, g, {"op": "attention", "b": batch, "h": heads, "g": kv_heads,
                                "tq": tq, "tk": tk, "d": d, "causal": causal})


def add_case(numel: int) -> Case:
    g = Graph("add")
    b = Builder(g)
    x, y = b.input("x", _t(numel)), b.input("y", _t(numel))
    b.add("add", (x, y), {}, loc="add")
    return Case(f"add {numel * 2 / 1e6:.0f} MB x2", "elementwise", g, {"op": "add", "n": numel})


def cases(quick: bool) -> list[Case]:
    out = []
    tokens = (512, 2048) if quick else (512, 2048, 8192)
    for model, (h, H, G, D, f) in SHAPES.items():
        mats = {"qkv": (H * D + 2 * G * D, h), "o": (h, H * D), "up": (f, h), "down": (h, f)}
        for part, (n, k) in mats.items():
            for t in tokens:
                out.append(gemm_case(f"{model} {part} T={t}", "gemm", t, n, k))
            for bsz in ((1, 8) if quick else (1, 8, 32)):
                out.append(gemm_case(f"{model} {part} B={bsz}", "gemv", bsz, n, k))
        for t in ((1024, 4096) if quick else (1024, 4096, 16384)):
            out.append(attention_case(f"{model} attn T={t}", "attention-prefill", 1, H, G, t, t,
                                      D))
        for s in ((4096, 32768) if quick else (4096, 32768, 131072)):
            out.append(attention_case(f"{model} decode S={s}", "attention-decode", 1, H, G, 1,
                                      s, D))
    out.append(add_case(64 * 2 ** 20))
    return out


def predict(dev: Device, case: Case) -> OpTiming:
    """The cost model's timing of the case's single op on `dev` (weights and KV
    in main memory)."""
    rec = records(case.graph)[0]
    return time_op(dev, rec, Placement(dev.main, dev.main))


# ---- measurement (CUDA) ---------------------------------------------------------

def measure(case: Case, torch, warmup: int = 5, min_s: float = 0.05) -> float:  # noqa: ANN001
    """Median seconds of one call, inputs rotated through > 256 MB to defeat L2."""
    s, dev, dt = case.torch_spec, "cuda", torch.bfloat16
    F = torch.nn.functional
    if s["op"] == "linear":
        per = (s["m"] * s["k"] + s["n"] * s["k"]) * 2
        copies = max(1, min(32, math.ceil(256e6 / per)))
        xs = [torch.randn(s["m"], s["k"], device=dev, dtype=dt) for _ in range(copies)]
        ws = [torch.randn(s["n"], s["k"], device=dev, dtype=dt) for _ in range(copies)]
        fns = [lambda x=x, w=w: F.linear(x, w) for x, w in zip(xs, ws, strict=True)]
    elif s["op"] == "attention":
        per = (s["b"] * (s["h"] * s["tq"] + 2 * s["g"] * s["tk"]) * s["d"]) * 2
        copies = max(1, min(16, math.ceil(256e6 / per)))
        qs = [torch.randn(s["b"], s["h"], s["tq"], s["d"], device=dev, dtype=dt)
              for _ in range(copies)]
        kvs = [(torch.randn(s["b"], s["g"], s["tk"], s["d"], device=dev, dtype=dt),
                torch.randn(s["b"], s["g"], s["tk"], s["d"], device=dev, dtype=dt))
               for _ in range(copies)]
        gqa = s["h"] != s["g"]
        fns = [lambda q=q, k=k, v=v: F.scaled_dot_product_attention(
            q, k, v, is_causal=s["causal"], enable_gqa=gqa) for q, (k, v) in zip(qs, kvs, strict=True)]
    else:
        x = torch.randn(s["n"], device=dev, dtype=dt)
        y = torch.randn(s["n"], device=dev, dtype=dt)
        fns = [lambda: x + y]
    for i in range(max(warmup, len(fns))):
        fns[i % len(fns)]()
    torch.cuda.synchronize()
    times = []
    for _ in range(5):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        reps = 0
        start.record()
        while True:
            fns[reps % len(fns)]()
            reps += 1
            if reps % len(fns) == 0 and reps >= 10:
                end.record()
                end.synchronize()
                if start.elapsed_time(end) / 1e3 >= min_s or reps >= 2000:
                    break
        times.append(start.elapsed_time(end) / 1e3 / reps)
    return statistics.median(times)


# ---- calibration ---------------------------------------------------------------

def calibrate(dev: Device, rows: list[dict]) -> dict[str, float]:
    """Efficiency factors fitted to the measurements (medians of achieved/peak)."""
    def frac(kinds: tuple[str, ...], bound: str, side: str) -> float | None:
        xs = [r[side] / r["measured_s"] for r in rows
              if r["kind"] in kinds and r["bound"] == bound and r["measured_s"]]
        return round(statistics.median(xs), 3) if xs else None

    fit = {"matmul": frac(("gemm",), "compute", "compute_s"),
           "attention": frac(("attention-prefill",), "compute", "compute_s"),
           "memory": frac(("gemv", "attention-decode", "elementwise"), "memory", "memory_s")}
    small = [r["measured_s"] - r["memory_s"] / (fit["memory"] or dev.eff("memory"))
             for r in rows if r["kind"] == "gemv" and r["bytes"] < 64e6]
    fit["kernel_overhead_s"] = round(max(0.0, min(small)), 7) if small else None
    return {k: min(v, 1.0) if k != "kernel_overhead_s" else v for k, v in fit.items()
            if v is not None}


def with_efficiency(dev: Device, fit: dict[str, float], source: str) -> Device:
    eff = dict(dev.efficiency)
    eff.update({k: Figure(v, source) for k, v in fit.items()})
    return replace(dev, efficiency=eff)


def run(dev: Device, quick: bool, dry_run: bool) -> dict:
    torch = None
    if not dry_run:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device: run on a GPU machine, or pass --dry-run")
    rows = []
    for case in cases(quick):
        t = predict(dev, case)
        exp = t.time_s
        meas = None if dry_run else measure(case, torch)
        rows.append({"name": case.name, "kind": case.kind, "flops": t.rec.flops,
                     "bytes": t.rec.bytes, "bound": t.bound, "compute_s": t.compute_s,
                     "memory_s": t.memory_s, "roofline_s": t.roofline_s, "predicted_s": exp,
                     "measured_s": meas})
        if meas:
            print(f"{case.name:<32} measured {meas * 1e6:10.1f} us  predicted "
                  f"{exp * 1e6:10.1f} us  error {exp / meas - 1:+.1%}", flush=True)
    result = {"device_key": dev.name, "rows": rows, "dry_run": dry_run}
    if not dry_run:
        fit = calibrate(dev, rows)
        cal = with_efficiency(dev, fit, "fitted")
        for r, case in zip(rows, cases(quick), strict=True):
            r["calibrated_s"] = predict(cal, case).time_s
        result.update(calibrated=fit, mae=_mae(rows, "predicted_s"),
                      mae_calibrated=_mae(rows, "calibrated_s"),
                      device_name=torch.cuda.get_device_name(),
                      torch=torch.__version__, cuda=torch.version.cuda,
                      host=platform.node())
    return result


def _mae(rows: list[dict], key: str) -> float:
    errs = [abs(r[key] / r["measured_s"] - 1) for r in rows if r.get("measured_s")]
    return sum(errs) / len(errs) if errs else float("nan")


def markdown(res: dict) -> str:
    title = res.get("device_name", "dry run (predictions only; nothing measured yet)")
    lines = [f"# Cost model vs measured op times: {title}", "",
             f"Device file `{res['device_key']}`; torch {res.get('torch', '-')}, CUDA "
             f"{res.get('cuda', '-')}. Written by bench/costmodel_gpu_validate.py.", ""]
    if not res["dry_run"]:
        lines += [f"Mean absolute error: {res['mae']:.1%} with the device file's factors, "
                  f"{res['mae_calibrated']:.1%} with the fitted ones (goal <= 10%).", "",
                  "Fitted efficiency factors (paste into the device file's [efficiency], "
                  "source: this file):", "", "```toml"]
        lines += [f"{k} = {{ value = {v}, source = \"measured: bench/results/costmodel_gpu.md "
                  f"({res['device_name']}, torch {res['torch']})\" }}"
                  for k, v in res["calibrated"].items()] + ["```", ""]
    lines += ["| op | kind | bound | GFLOP | MB | roofline µs | predicted µs | measured µs | "
              "error | calibrated error |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        m = r["measured_s"]
        err = f"{r['predicted_s'] / m - 1:+.1%}" if m else "-"
        cal = f"{r['calibrated_s'] / m - 1:+.1%}" if m and "calibrated_s" in r else "-"
        lines.append(f"| {r['name']} | {r['kind']} | {r['bound']} | {r['flops'] / 1e9:,.1f} | "
                     f"{r['bytes'] / 1e6:,.1f} | {r['roofline_s'] * 1e6:,.1f} | "
                     f"{r['predicted_s'] * 1e6:,.1f} | {f'{m * 1e6:,.1f}' if m else '-'} | "
                     f"{err} | {cal} |")
    return "\n".join(lines) + "\n"


def detect_device(torch) -> str:  # noqa: ANN001
    name = torch.cuda.get_device_name()
    for key, dev in NAMES.items():
        if key in name:
            return dev
    raise SystemExit(f"no device file matches {name!r}; pass --device KEY (llmc devices)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", help="device key (default: detected from the GPU's name)")
    ap.add_argument("--quick", action="store_true", help="fewer shapes")
    ap.add_argument("--dry-run", action="store_true", help="no GPU: predictions only")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"),
                    help="where costmodel_gpu.{md,json} go")
    a = ap.parse_args(argv)
    key = a.device
    if key is None:
        if a.dry_run:
            key = "h100-sxm5"
        else:
            import torch

            key = detect_device(torch) if torch.cuda.is_available() else "h100-sxm5"
    res = run(get_device(key), a.quick, a.dry_run)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "costmodel_gpu_dryrun" if a.dry_run else "costmodel_gpu"
    (out / f"{stem}.json").write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    (out / f"{stem}.md").write_text(markdown(res))
    if not a.dry_run:
        print(f"MAE {res['mae']:.1%} (device file), {res['mae_calibrated']:.1%} (fitted); "
              f"wrote {out}/{stem}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
