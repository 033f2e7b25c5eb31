"""How big a GEMM the simulator takes: its memory grows with the folds.

`simulate_gemm` keeps per-fold arrays (the DRAM and SRAM bytes of each fold
for each candidate loop order, the fold latencies and intervals, the DMA
pipeline's timeline): measured with tracemalloc at 16K and 262K folds, its
peak is about 105 B per fold, and about 1,930 B per fold when a trace
records each fold's events. A GEMM is cut into ⌈Sr/R⌉·⌈Sc/C⌉ folds, so
M = N = K = 10**8 on a 128×128 array is 6·10**11 folds: tens of TB. The
check runs before anything is allocated and refuses, in one line, a GEMM
whose estimate exceeds `MAX_SIM_BYTES`.
"""

from __future__ import annotations

from llmc.errors import UsageError
from llmc.hw.array import ArraySpec, fold_counts, mapping

BYTES_PER_FOLD = 128          # measured peak ~105 B/fold, rounded up
TRACE_BYTES_PER_FOLD = 2048   # measured peak ~1,930 B/fold with trace=True
MAX_SIM_BYTES = 2**30         # 1 GiB: ~8M folds (~0.6 s), ~500K traced folds


def gemm_folds(m: int, n: int, k: int, spec: ArraySpec) -> int:
    """The folds C[M×N] = A[M×K]·B[K×N] is cut into on `spec`."""
    rows, cols = fold_counts(int(m), int(n), int(k), spec)
    return rows * cols


def gemm_sim_bytes(m: int, n: int, k: int, spec: ArraySpec, trace: bool = False) -> int:
    """Estimated peak memory of simulating the GEMM (bytes)."""
    per = TRACE_BYTES_PER_FOLD if trace else BYTES_PER_FOLD
    return gemm_folds(m, n, k, spec) * per


def check_gemm_size(m: int, n: int, k: int, spec: ArraySpec, trace: bool = False) -> None:
    """UsageError, naming the size and the limit, when simulating the GEMM
    would need more than MAX_SIM_BYTES; also validates M, N, K."""
    mapping(m, n, k, spec.dataflow)  # positive integers
    need = gemm_sim_bytes(m, n, k, spec, trace)
    if need > MAX_SIM_BYTES:
        folds = gemm_folds(m, n, k, spec)
        raise UsageError(
            f"GEMM {m}x{n}x{k} on a {spec.rows}x{spec.cols} {spec.dataflow.value} array is "
            f"{folds:,} folds: simulating it{' with a trace' if trace else ''} needs about "
            f"{_fmt(need)}, over the simulator's limit of {_fmt(MAX_SIM_BYTES)} "
            "(llmc.sim.MAX_SIM_BYTES); simulate a smaller GEMM or on a bigger array"
            + (", or drop --trace" if trace else ""))


def _fmt(n: float) -> str:
    """Bytes in the largest binary unit (up to PiB) that keeps the number >= 1."""
    unit = "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024:
            break
        n, unit = n / 1024, bigger
    return f"{n:,.0f} B" if unit == "B" else f"{n:,.1f} {unit}"
