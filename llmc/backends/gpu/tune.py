"""The autotuning sweep: on a GPU, each GEMM of a program is timed at a few
tile configs and the fastest is kept (autotune.json records it, so a rerun
uses the same tiles); without a GPU the defaults stand and nothing runs.

`sweep(launch, configs)` times `launch(config)` with CUDA events (median of
`reps` after a warm-up) and returns (best config, {config name: seconds}).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

# BLOCK_M x BLOCK_N x BLOCK_K, warps: decode GEMVs (M <= 16) and prefill GEMMs
GEMV_CONFIGS = [{"BLOCK_M": 16, "BLOCK_N": n, "BLOCK_K": k, "num_warps": w}
                for n, k, w in ((32, 256, 4), (64, 128, 4), (64, 256, 4), (128, 128, 8))]
GEMM_CONFIGS = [{"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k, "num_warps": w, "num_stages": s}
                for m, n, k, w, s in ((64, 64, 64, 4, 3), (128, 128, 64, 8, 3),
                                      (128, 256, 64, 8, 3), (64, 128, 64, 4, 4))]


def name(config: dict[str, int]) -> str:
    return "x".join(str(config[k]) for k in sorted(config))


def time_cuda(fn: Callable[[], Any], reps: int = 20, warmup: int = 3) -> float:
    """Median seconds of fn() on the current CUDA stream."""
    import torch

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    return statistics.median(times)


def sweep(launch: Callable[[dict[str, int]], Any], configs: Sequence[dict[str, int]]
          ) -> tuple[dict[str, int], dict[str, float]]:
    """The fastest of `configs` for `launch` (configs that fail to compile or
    run, e.g. out of shared memory, are skipped)."""
    timed: dict[str, float] = {}
    best, best_t = dict(configs[0]), float("inf")
    for c in configs:
        try:
            t = time_cuda(lambda c=c: launch(c))
        except Exception:  # noqa: BLE001 - a config the GPU cannot run is not a candidate
            continue
        timed[name(c)] = t
        if t < best_t:
            best, best_t = dict(c), t
    return best, timed


def tune_program(rt: Any, program: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Tile configs for every GEMM step of `program`, measured on random
    inputs of its shapes with the runtime `rt` (on a CUDA device)."""
    import torch

    out: dict[str, dict[str, int]] = {}
    dev = rt.where.device
    for ph in program["phases"].values():
        for s in ph["steps"]:
            if s["op"] != "gemm" or s["config"] in out:
                continue
            M, N, K = s["M"], s["N"], s["K"]
            vals = {s["x"]: torch.randn(M, K, device=dev, dtype=torch.bfloat16)}
            vals[s["w"]] = rt.weights[ph["params"][s["w"]]]
            for r in (s["scales"], s["bias"]):
                if r:
                    vals[r] = rt.weights[ph["params"][r]]
            for e in s["extra"]:
                vals[e] = torch.randn(M, N, device=dev, dtype=torch.bfloat16)
            types = {s["out"]: ["f32", [M, N]]}
            configs = GEMV_CONFIGS if M <= 16 else GEMM_CONFIGS

            def launch(c: dict[str, int], s: dict[str, Any] = s, vals: dict = vals,
                       types: dict = types) -> Any:
                rt.configs[s["config"]] = c
                return rt.op_gemm(s, vals, types)
            out[s["config"]], _ = sweep(launch, configs)
    return out
