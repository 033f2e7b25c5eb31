"""The gpu backend on an NVIDIA GPU, side by side with PyTorch and the cost model.

    python bench/gpu_bench.py [--quick] [--budget-s S] [--out DIR]   # one unattended run
    python bench/gpu_bench.py --dry-run                # no GPU: the cases and the predictions

Without a CUDA GPU (and without --dry-run) it refuses: one line, exit 2.
The run stays inside a wall-time budget (--budget-s, default 540 s): cases
run cheapest first (single ops, then the cost model's validation, then the
1.1B model), the tables are rewritten after every case, and cases not
started when the budget is spent are marked skipped, so a run cut off
still leaves every finished measurement on disk.
Writes bench/results/gpu.{json,md} (with the device, torch and triton
versions), and, in the same run, bench/costmodel_gpu_validate.py's tables
(bench/results/costmodel_gpu.{json,md}: the cost model's per-op error).

Every row is measured with CUDA events (median after warm-up) and printed
beside the cost model's prediction for the same op on the device file's
figures. The issue's goals (issue 14), each checked in the table:

  copy        device-to-device copy bandwidth (the roofline's memory term)
  attention   causal prefill, GQA 32/8, d 128, 16K tokens per call at 1K/4K/16K:
              llmc's Triton kernel vs SDPA's flash and cuDNN backends
              (goal: >= the fastest backend; at least beat flash)
  gemv        batch-1 GEMV 4096x4096, 4096x14336, 14336x4096: torch bf16, llmc
              bf16, llmc w4a16 (Triton, and the CUDA GEMV where nvcc exists)
              (goal: w4a16 >= 80% of copy bandwidth in bytes read, >= 3x bf16)
  gemm        8192^3 bf16: torch vs llmc's GEMM at its swept tiles
  llama-1.1b  TinyLlama-1.1B's config with random weights (22 layers, d 2048, GQA
              32/4, FFN 5632): prefill at 2K tokens, decode at batch 1 and 16,
              llmc bf16 and w4a16 vs torch eager and torch.compile
              (goals: prefill >= torch.compile; bf16 decode >= 70% of the HBM
              roofline; w4a16 decode >= 2.5x bf16 decode)
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import costmodel_gpu_validate as cmv  # noqa: E402
from llmc.hw.database import get_device  # noqa: E402

ATTN_T = (1024, 4096, 16384)
GEMV = ((4096, 4096), (14336, 4096), (4096, 14336))  # (N, K): out x in features
LLAMA = "tinyllama-1.1b"


def cases(quick: bool) -> list[dict[str, Any]]:
    """What one run measures (the --dry-run listing)."""
    out = [{"group": "copy", "name": "copy 1 GiB bf16"}]
    for t in ATTN_T[:2] if quick else ATTN_T:
        out.append({"group": "attention", "name": f"prefill T={t}", "T": t, "B": 16384 // t})
    for n, k in GEMV:
        out.append({"group": "gemv", "name": f"gemv {n}x{k} B=1", "N": n, "K": k})
    out.append({"group": "gemm", "name": "gemm 8192^3", "M": 8192, "N": 8192, "K": 8192})
    for quant in (None, "w4a16-rtn"):
        out.append({"group": "llama-1.1b", "name": f"{LLAMA} {quant or 'bf16'}", "quant": quant})
    return out


# ---- the cost model's predictions --------------------------------------------------

def predict(dev: Any, case: dict[str, Any]) -> float | None:
    """Seconds the cost model predicts for a case's op (None: end to end, from the report)."""
    g = case["group"]
    if g == "copy":
        c = cmv.add_case(2 ** 29)   # 1 GiB of bf16 read, 1 GiB written: an add reads two
        return cmv.predict(dev, c).time_s * 2 / 3
    if g == "attention":
        return cmv.predict(dev, cmv.attention_case(case["name"], "attention-prefill", case["B"],
                                                   32, 8, case["T"], case["T"], 128)).time_s
    if g == "gemv":
        return cmv.predict(dev, cmv.gemm_case(case["name"], "gemv", 1, case["N"],
                                              case["K"])).time_s
    if g == "gemm":
        return cmv.predict(dev, cmv.gemm_case(case["name"], "gemm", case["M"], case["N"],
                                              case["K"])).time_s
    return None


# ---- measurements (CUDA) ------------------------------------------------------------

def attention_flops(B: int, H: int, T: int, D: int) -> float:
    return 4 * B * H * (T * (T + 1) / 2) * D          # causal: QK^T and PV over T(T+1)/2 pairs


class Llmc:
    """llmc's kernels (rendered as an artifact renders them) behind the runtime."""

    def __init__(self, tmp: Path) -> None:
        from llmc.backends.gpu import gemm
        from llmc.backends.gpu.device import triton_device
        from llmc.backends.gpu.runtime import Kernels, Runtime
        from llmc.backends.gpu.templates import template

        kinds = [gemm.GemmKind("dense", False, ()), gemm.GemmKind("int4", False, ())]
        (tmp / "kernels").mkdir()
        (tmp / "kernels/gemm.py").write_text(
            "import triton\nimport triton.language as tl\n\n\n"
            + "\n\n".join(gemm.render(k) for k in kinds))
        (tmp / "kernels/attention.py").write_text(template("attention"))
        self.where = triton_device()
        self.rt = Runtime({"act_dtype": "bf16", "kv_formats": {}, "configs": {}},
                          Kernels(tmp / "kernels"), {}, self.where)

    def gemm(self, x: Any, w: Any, scales: Any = None, group: int = 0,
             config: dict[str, int] | None = None) -> Any:
        M, K = x.shape
        N = w.shape[0]
        kernel = "gemm_w4" if scales is not None else "gemm_dense"
        step = {"op": "gemm", "kernel": kernel, "x": "x", "w": "w",
                "scales": "s" if scales is not None else None, "bias": None, "extra": [],
                "M": M, "N": N, "K": K, "KP": w.shape[1] * 2 if scales is not None else K,
                "group_size": group, "config": "c", "out": "y"}
        if config:
            self.rt.configs["c"] = config
        return self.rt.op_gemm(step, {"x": x, "w": w, "s": scales}, {"y": ["f32", [M, N]]})

    def attention(self, q: Any, k: Any, v: Any, block_q: int, block_k: int) -> Any:
        step = {"q": "q", "k": "k", "v": "v", "mask": None, "causal": True,
                "scale": q.shape[-1] ** -0.5, "block_q": block_q, "block_k": block_k,
                "out": "o"}
        return self.rt.op_attention(step, {"q": q, "k": k, "v": v},
                                    {"o": ["f32", list(q.shape)]})


def measure_ops(case: dict[str, Any], llmc: Llmc, dev: Any, torch: Any) -> dict[str, Any]:
    from llmc.backends.gpu.tune import GEMM_CONFIGS, GEMV_CONFIGS, sweep, time_cuda

    g, cuda, bf = case["group"], "cuda", torch.bfloat16
    F = torch.nn.functional
    if g == "copy":
        x = torch.empty(2 ** 29, dtype=bf, device=cuda)
        y = torch.empty_like(x)
        t = time_cuda(lambda: y.copy_(x))
        return {"torch_s": t, "torch_tb_s": 2 * x.numel() * 2 / t / 1e12}
    if g == "attention":
        from llmc.passes.tiling.tiles import choose_tiles, on_chip

        B, T = case["B"], case["T"]
        q = torch.randn(B, 32, T, 128, dtype=bf, device=cuda)
        k, v = (torch.randn(B, 8, T, 128, dtype=bf, device=cuda) for _ in range(2))
        tiles = choose_tiles(on_chip(dev), 128, 128, 2, T, T)
        flops = attention_flops(B, 32, T, 128)
        row = {"tiles": f"{tiles.block_q}x{tiles.block_k}",
               "llmc_s": time_cuda(lambda: llmc.attention(q, k, v, tiles.block_q,
                                                          tiles.block_k))}
        from torch.nn.attention import SDPBackend, sdpa_kernel

        for name, backend in (("flash", SDPBackend.FLASH_ATTENTION),
                              ("cudnn", SDPBackend.CUDNN_ATTENTION)):
            try:
                with sdpa_kernel(backend):
                    row[f"torch_{name}_s"] = time_cuda(lambda: F.scaled_dot_product_attention(
                        q, k, v, is_causal=True, enable_gqa=True))
            except RuntimeError as exc:
                row[f"torch_{name}_error"] = str(exc).splitlines()[0]
        for key in [k for k in row if k.endswith("_s")]:
            row[key.replace("_s", "_tflops")] = flops / row[key] / 1e12
        best = min(row.get("torch_flash_s", math.inf), row.get("torch_cudnn_s", math.inf))
        row["goal_met"] = row["llmc_s"] <= best
        return row
    if g == "gemv":
        N, K = case["N"], case["K"]
        x = torch.randn(1, K, dtype=bf, device=cuda)
        w = torch.randn(N, K, dtype=bf, device=cuda)
        q = torch.randint(0, 256, (N, K // 2), dtype=torch.uint8, device=cuda)
        s = torch.rand(N, K // 64, dtype=bf, device=cuda) * 0.01
        cfg, _ = sweep(lambda c: llmc.gemm(x, w, config=c), GEMV_CONFIGS)
        cfg4, _ = sweep(lambda c: llmc.gemm(x, q, s, 64, config=c), GEMV_CONFIGS)
        row = {"torch_s": time_cuda(lambda: F.linear(x, w)),
               "llmc_bf16_s": time_cuda(lambda: llmc.gemm(x, w, config=cfg)),
               "llmc_w4a16_s": time_cuda(lambda: llmc.gemm(x, q, s, 64, config=cfg4))}
        from llmc.backends.gpu.cuda import GEMV_SOURCE, load_gemv

        gemv = load_gemv(GEMV_SOURCE)
        if gemv is not None:
            row["llmc_w4a16_cuda_s"] = time_cuda(lambda: gemv(x, q, s, K, 64))
        w4 = min(v for k, v in row.items() if k.startswith("llmc_w4a16"))
        row["w4a16_bytes_tb_s"] = (q.numel() + s.numel() * 2 + K * 2 + N * 2) / w4 / 1e12
        row["w4a16_vs_torch_bf16"] = row["torch_s"] / w4
        return row
    if g == "gemm":
        M, N, K = case["M"], case["N"], case["K"]
        x = torch.randn(M, K, dtype=bf, device=cuda)
        w = torch.randn(N, K, dtype=bf, device=cuda)
        cfg, _ = sweep(lambda c: llmc.gemm(x, w, config=c), GEMM_CONFIGS)
        row = {"torch_s": time_cuda(lambda: F.linear(x, w), reps=10),
               "llmc_s": time_cuda(lambda: llmc.gemm(x, w, config=cfg), reps=10),
               "llmc_config": cfg}
        for key in ("torch_s", "llmc_s"):
            row[key.replace("_s", "_tflops")] = 2 * M * N * K / row[key] / 1e12
        return row
    raise ValueError(g)


def measure_llama(case: dict[str, Any], tmp: Path, torch: Any, compile_mode: str,
                  batch16: bool) -> dict[str, Any]:
    """llmc's artifact (compiled here for the device) vs the same config in torch."""
    from llmc import __version__, api
    from llmc.backends.artifact import open_artifact
    from llmc.backends.gpu.backend import PROGRAM, WEIGHTS, Generator
    from llmc.backends.gpu.device import triton_device
    from llmc.backends.gpu.tune import time_cuda

    row: dict[str, Any] = {}
    target = "h100"
    for batch in ((1, 16) if batch16 else (1,)):
        out = tmp / f"llama-{case['quant']}-{batch}"
        seq = 2048 if batch == 1 else 512
        t0 = time.perf_counter()
        c = api.compile(LLAMA, target, out, batch=batch, seq_len=seq, weights="random",
                        quant=case["quant"])
        row[f"compile_b{batch}_s"] = time.perf_counter() - t0
        art = open_artifact(out, __version__)
        gen = Generator(out, json.loads(art.read_text(PROGRAM)), art.read_bytes(WEIGHTS),
                        triton_device())
        tokens = torch.randint(0, 32000, (batch, seq), device="cuda")
        if batch == 1:
            t = time_cuda(lambda g=gen, x=tokens: g.rt.run_phase("prefill", [x]), reps=5)
            row["prefill_tok_s"] = seq / t
            row["prefill_predicted_tok_s"] = seq / c.report["prefill"]["time_s"]
        kv = gen.caches()
        tok = torch.zeros((batch, 1), dtype=torch.int64, device="cuda")
        pos = torch.tensor([seq // 2], device="cuda")
        gen.decode_step(tok, pos, kv)                     # warm-up and CUDA-graph capture
        t = time_cuda(lambda g=gen, a=tok, p=pos, c=kv: g.decode_step(a, p, c), reps=20)
        row[f"decode_b{batch}_tok_s"] = batch / t
        row[f"decode_b{batch}_predicted_tok_s"] = c.report["decode"]["tokens_per_s"]
        if batch == 1:
            row["weight_bytes"] = c.report["weight_bytes"]
    if case["quant"] is None:
        row.update(torch_llama(torch, compile_mode))
    return row


def torch_llama(torch: Any, compile_mode: str) -> dict[str, Any]:
    """TinyLlama-1.1B's config in transformers (bf16, random weights): prefill at
    2K and batch-1 decode with a static cache, eager and torch.compile."""
    from transformers import LlamaConfig, LlamaForCausalLM, StaticCache

    from llmc.backends.gpu.tune import time_cuda

    cfg = LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632,
                      num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
                      max_position_embeddings=4096)
    model = LlamaForCausalLM(cfg).to("cuda", torch.bfloat16).eval()
    ids = torch.randint(0, 32000, (1, 2048), device="cuda")
    row: dict[str, Any] = {}
    with torch.no_grad():
        for label, fwd in (("eager", model.forward),
                           ("compile", torch.compile(model.forward, mode=compile_mode))):
            row[f"torch_{label}_prefill_tok_s"] = 2048 / time_cuda(lambda f=fwd: f(ids), reps=5)
            cache = StaticCache(config=cfg, max_batch_size=1, max_cache_len=4096,
                                device="cuda", dtype=torch.bfloat16)
            fwd(ids, past_key_values=cache, use_cache=True)
            tok = ids[:, :1]
            pos = torch.tensor([2048], device="cuda")
            row[f"torch_{label}_decode_b1_tok_s"] = 1 / time_cuda(
                lambda f=fwd, c=cache, a=tok, p=pos: f(a, past_key_values=c, cache_position=p,
                                                       use_cache=True), reps=20)
    return row


# ---- the run, the tables ------------------------------------------------------------

def measure_rows(rows: list[dict[str, Any]], measure: Any, budget_s: float,
                 flush: Any, clock: Any = time.perf_counter) -> None:
    """Measure `rows` in order with `measure(row) -> dict`, calling `flush()` after
    each one so a run cut off loses only the case in flight. Once `budget_s` of
    wall time is spent, the rows left are marked skipped (not measured); a case
    that raises keeps its error and the run goes on."""
    start = clock()
    for r in rows:
        if clock() - start > budget_s:
            r["skipped"] = f"time budget of {budget_s:.0f} s spent"
            continue
        t0 = clock()
        try:
            r.update(measure(r))
        except Exception as exc:  # noqa: BLE001 - one failed case must not lose the run
            r["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        r["wall_s"] = clock() - t0
        print(f"{r['name']}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else
                                          f"{k} {v}" for k, v in r.items()
                                          if k not in ("group", "name")), flush=True)
        flush()


def run(dev_key: str, quick: bool, dry_run: bool, compile_mode: str, out_dir: Path,
        budget_s: float = 540.0, flush: Any = None) -> dict:
    """The cases in order of cost: the single ops, the cost model's validation,
    then the 1.1B model (torch.compile's autotuning is the slowest part)."""
    dev = get_device(dev_key)
    rows = [{**c, "predicted_s": predict(dev, c)} for c in cases(quick)]
    res: dict[str, Any] = {"device": dev_key, "dry_run": dry_run, "rows": rows,
                           "python": platform.python_version(), "budget_s": budget_s}
    if dry_run:
        return res
    import torch
    import triton

    res.update({"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
                "triton": triton.__version__})
    save = (lambda: flush(res)) if flush else (lambda: None)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        llmc = Llmc(Path(tmp))
        ops = [r for r in rows if r["group"] != "llama-1.1b"]
        measure_rows(ops, lambda r: measure_ops(r, llmc, dev, torch), budget_s, save)
        copy = next((r for r in rows if r["group"] == "copy" and "torch_tb_s" in r), None)
        for r in rows:
            if r["group"] == "gemv" and copy and "w4a16_bytes_tb_s" in r:
                r["goal_met"] = (r["w4a16_bytes_tb_s"] >= 0.8 * copy["torch_tb_s"]
                                 and r["w4a16_vs_torch_bf16"] >= 3)
        res["costmodel_validation"] = validate(dev, quick, out_dir)
        save()
        left = budget_s - (time.perf_counter() - start)
        measure_rows([r for r in rows if r["group"] == "llama-1.1b"],
                     lambda r: measure_llama(r, Path(tmp), torch, compile_mode, not quick),
                     left, save)
    return res


def validate(dev: Any, quick: bool, out_dir: Path) -> dict[str, Any]:
    """bench/costmodel_gpu_validate.py's run in the same process, its tables written."""
    try:
        res = cmv.run(dev, quick, False)
    except Exception as exc:  # noqa: BLE001
        return {"error": f"{type(exc).__name__}: {exc}"}
    (out_dir / "costmodel_gpu.json").write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    (out_dir / "costmodel_gpu.md").write_text(cmv.markdown(res))
    return {"mae": res.get("mae"), "mae_calibrated": res.get("mae_calibrated")}


def markdown(res: dict[str, Any]) -> str:
    head = (f"# gpu backend benchmark ({res.get('gpu', 'dry run: no GPU')}, device file "
            f"{res['device']}; torch {res.get('torch', '-')}, triton {res.get('triton', '-')})\n\n"
            "Every figure measured with CUDA events (median); `predicted` is the cost model's "
            "time for the same op on the device file's figures.\n\n"
            "| case | measured | predicted |\n|---|---|---|\n")
    lines = []
    for r in res["rows"]:
        got = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in r.items()
                        if k not in ("group", "name", "predicted_s", "quant", "B", "T", "N",
                                     "K", "M", "wall_s"))
        pred = f"{r['predicted_s'] * 1e3:.3f} ms" if r.get("predicted_s") else "from the report"
        lines.append(f"| {r['name']} | {got or '(dry run)'} | {pred} |")
    cm = res.get("costmodel_validation")
    tail = f"\n\nCost model validation: {cm}\n" if cm else "\n"
    return head + "\n".join(lines) + tail


def write_tables(res: dict[str, Any], out: Path, stem: str) -> None:
    """gpu.json and gpu.md, each written whole (temporary file, then rename)."""
    for name, text in ((f"{stem}.json", json.dumps(res, indent=2, sort_keys=True, default=str)
                        + "\n"), (f"{stem}.md", markdown(res))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", help="device key (default: detected from the GPU's name)")
    ap.add_argument("--quick", action="store_true", help="fewer cases, no batch 16")
    ap.add_argument("--dry-run", action="store_true", help="no GPU: list cases and predictions")
    ap.add_argument("--torch-compile-mode", default="max-autotune",
                    help="torch.compile mode for the 1.1B baseline (default max-autotune)")
    ap.add_argument("--budget-s", type=float, default=540.0,
                    help="wall seconds after which cases not started are skipped (default "
                         "540: the run, with start-up, stays under 10 minutes)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    a = ap.parse_args(argv)
    if not a.dry_run:
        import torch

        if not torch.cuda.is_available():
            sys.stderr.write("gpu_bench: no CUDA GPU on this machine; run it on an H100 (or "
                             "pass --dry-run to list the cases)\n")
            return 2
    key = a.device or ("h100-sxm5" if a.dry_run else cmv.detect_device(__import__("torch")))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "gpu_dryrun" if a.dry_run else "gpu"
    res = run(key, a.quick, a.dry_run, a.torch_compile_mode, out, a.budget_s,
              lambda r: write_tables(r, out, stem))
    write_tables(res, out, stem)
    if a.dry_run:
        for r in res["rows"]:
            p = f"{r['predicted_s'] * 1e3:.3f} ms predicted" if r["predicted_s"] else \
                "end to end (predicted by the compile's report)"
            print(f"{r['group']:<11} {r['name']:<28} {p}")
    print(f"wrote {out}/{stem}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
