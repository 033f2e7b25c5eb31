"""Split-K decode attention (llmc/backends/gpu/decode.py) on an NVIDIA GPU:
one split against the split count the backend chooses, beside PyTorch's SDPA
and the HBM roofline for the K/V bytes read.

    python bench/gpu_decode_attention.py [--out DIR]   # on a GPU, well under a minute
    python bench/gpu_decode_attention.py --dry-run     # no GPU: the cases and the splits
    python bench/gpu_decode_attention.py --smoke       # no GPU: tiny cases, interpreted

Cases: one decode query per head, GQA 32/8, head dim 128, bf16, the cache
filled up to the position (1K .. 32K keys), batch 1 and 16, and one MXINT8
cache. Each row: median time over CUDA-event-timed launches after warm-up,
K/V bytes read / time, and `roofline_s` = those bytes / the device file's
HBM bandwidth x its memory efficiency. Writes gpu_decode_attention.{json,md}
(with the device and versions) under --out (default bench/results). Without a
CUDA GPU (and without --dry-run or --smoke) it refuses: one line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmc.backends.gpu.decode import DECODE_BLOCK_K, num_splits, sm_count  # noqa: E402
from llmc.hw.database import get_device  # noqa: E402

H, G, D = 32, 8, 128
MX = {"block": 32, "shift": 6, "top": 127}     # MXINT8 as the kernels store it (lower.kv_format)


def cases(smoke: bool) -> list[dict[str, Any]]:
    if smoke:
        return [{"B": 2, "H": 4, "G": 2, "D": 32, "S": 300, "kv": "bf16"},
                {"B": 1, "H": 4, "G": 2, "D": 32, "S": 200, "kv": "mxint8"}]
    out = [{"B": b, "H": H, "G": G, "D": D, "S": s, "kv": "bf16"}
           for b in (1, 16) for s in (1024, 4096, 16384, 32768)]
    out.append({"B": 1, "H": H, "G": G, "D": D, "S": 16384, "kv": "mxint8"})
    return out


def kv_bytes(c: dict[str, Any]) -> int:
    per = 1 + 1 / MX["block"] if c["kv"] == "mxint8" else 2     # bytes per element
    return int(2 * c["B"] * c["G"] * c["S"] * c["D"] * per)


def roofline_s(dev: Any, c: dict[str, Any]) -> float:
    hbm = next(m for m in dev.memory if "kv" in m.holds and m.name == "hbm")
    return kv_bytes(c) / (hbm.bytes_per_s * dev.efficiency["memory"].value)


def runtime(where: Any) -> Any:
    """A Runtime holding just the decode attention kernels."""
    from llmc.backends.gpu.runtime import Kernels, Runtime
    from llmc.backends.gpu.templates import template

    tmp = Path(tempfile.mkdtemp(prefix="llmc-decode-bench-"))
    (tmp / "decode_attention.py").write_text(template("decode_attention"))
    program = {"act_dtype": "bf16", "kv_formats": {"mxint8": MX}, "configs": {}, "phases": {}}
    return Runtime(program, Kernels(tmp), {}, where)


def inputs(c: dict[str, Any], where: Any) -> dict[str, Any]:
    import torch

    gen = torch.Generator().manual_seed(0)
    dt = torch.float32 if where.interpret else torch.bfloat16
    q = torch.randn(c["B"], c["H"], 1, c["D"], generator=gen).to(where.device, dt)
    kv = [torch.randn(c["B"], c["G"], c["S"], c["D"], generator=gen) for _ in range(2)]
    ref = [x.to(where.device, dt) for x in kv]
    if c["kv"] == "mxint8":     # a block format as the kernels store it: int8 m, int8 E
        kv, ref = zip(*(mxint8(x, where, dt) for x in kv), strict=True)
    else:
        kv = ref
    mask = (torch.arange(c["S"]) <= c["S"] - 1).reshape(1, c["S"]).to(where.device)
    return {"q": q, "k": kv[0], "v": kv[1], "mask": mask, "k_ref": ref[0], "v_ref": ref[1]}


def mxint8(x: Any, where: Any, dt: Any) -> tuple[Any, Any]:
    """(x as a Blocked MXINT8 tensor, its values at dtype dt)."""
    import torch

    from llmc.backends.gpu.runtime import Blocked

    blocks = x.abs().reshape(*x.shape[:-1], -1, MX["block"]).amax(-1)
    e = torch.floor(torch.log2(blocks.clamp_min(2.0 ** -126))).clamp(-127, 127)
    scale = (e - MX["shift"]).exp2().repeat_interleave(MX["block"], dim=-1)
    m = torch.clamp(torch.round(x / scale), -MX["top"], MX["top"])
    return (Blocked(m.to(torch.int8).to(where.device), e.to(torch.int8).to(where.device),
                    "mxint8"), (m * scale).to(where.device, dt))


def attend(rt: Any, c: dict[str, Any], vals: dict[str, Any], splits: int) -> Any:
    from llmc.backends.gpu.decode import run_decode_attention

    step = {"op": "decode_attention", "q": "q", "k": "k", "v": "v", "mask": "mask",
            "causal": False, "scale": c["D"] ** -0.5, "block_k": DECODE_BLOCK_K,
            "splits": splits, "out": "o"}
    return run_decode_attention(rt, step, vals, {"o": ["f32", [c["B"], c["H"], 1, c["D"]]]})


def timed(fn: Any, where: Any, reps: int) -> float:
    """Median seconds of fn() (CUDA events on a GPU, the wall clock otherwise)."""
    import time

    import torch

    fn()
    times = []
    for _ in range(reps):
        if where.device.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize()
            times.append(a.elapsed_time(b) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(c: dict[str, Any], dev: Any, where: Any, rt: Any, reps: int) -> dict[str, Any]:
    import torch.nn.functional as F

    vals = inputs(c, where)
    sms = sm_count(dev) or 1
    chosen = num_splits(c["B"] * c["G"], sms, math.ceil(c["S"] / DECODE_BLOCK_K))
    want = F.scaled_dot_product_attention(vals["q"].float(), vals["k_ref"].float(),
                                          vals["v_ref"].float(), enable_gqa=True)
    row = {**c, "splits": chosen, "kv_bytes": kv_bytes(c), "roofline_s": roofline_s(dev, c)}
    for label, n in (("one_split", 1), ("split_k", chosen)):
        got = attend(rt, c, vals, n).float()
        row[f"{label}_rel_err"] = float((got - want).norm() / want.norm())
        row[f"{label}_s"] = timed(lambda n=n: attend(rt, c, vals, n), where, reps)
    if where.device.type == "cuda":
        q, k, v = vals["q"], vals["k_ref"], vals["v_ref"]
        row["sdpa_s"] = timed(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
                              where, reps)
    row["split_k_gb_s"] = row["kv_bytes"] / row["split_k_s"] / 1e9
    return row


def table(rows: list[dict[str, Any]], device: str) -> str:
    lines = [f"# Split-K decode attention ({device})", "",
             "| B | keys | KV | splits | 1 split | split-K | SDPA | roofline | split-K GB/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        us = [f"{r[k] * 1e6:.1f} us" if k in r else "-"
              for k in ("one_split_s", "split_k_s", "sdpa_s", "roofline_s")]
        lines.append(f"| {r['B']} | {r['S']} | {r['kv']} | {r['splits']} | "
                     + " | ".join(us) + f" | {r['split_k_gb_s']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--target", default="h100")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args(argv)
    dev = get_device(a.target)
    if a.dry_run:
        for c in cases(False):
            n = num_splits(c["B"] * c["G"], sm_count(dev) or 1, math.ceil(c["S"] / DECODE_BLOCK_K))
            print(f"B={c['B']:>2} keys={c['S']:>5} {c['kv']:<6} splits {n:>3}  "
                  f"roofline {roofline_s(dev, c) * 1e6:8.1f} us")
        return 0
    import torch

    if not a.smoke and not torch.cuda.is_available():
        print("gpu_decode_attention: no CUDA GPU here (use --dry-run or --smoke)",
              file=sys.stderr)
        return 2
    from llmc.backends.gpu.device import triton_device

    where = triton_device()
    rt = runtime(where)
    rows = [measure(c, dev, where, rt, 1 if a.smoke else 50) for c in cases(a.smoke)]
    name = torch.cuda.get_device_name() if where.device.type == "cuda" else "CPU, interpreted"
    import triton

    meta = {"device": name, "target": a.target, "torch": torch.__version__,
            "triton": triton.__version__, "python": platform.python_version(), "rows": rows}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_decode_attention.json").write_text(json.dumps(meta, indent=1) + "\n")
    (out / "gpu_decode_attention.md").write_text(table(rows, name))
    print(table(rows, name), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
