"""Which data moves where: the fold schedule of a GEMM and its DRAM/SRAM traffic.

`plan_folds` walks the ⌈Sr/R⌉×⌈Sc/C⌉ folds of a GEMM (see `systolic.py`) in
one of two loop orders and decides, from the scratchpad's capacity, which
operands stay resident between folds and which are fetched again. It returns,
per fold and in execution order, the bytes that must arrive from DRAM before
the fold starts, the bytes written back after it, and the bytes the array
moves to and from the scratchpad; `timing.py` turns those into cycles.

The model, per dataflow (Sr, Sc, T as in `systolic.mapping`; r_i, c_j the
rows/cols of fold (i, j), partial at the edges):

* os — fold (i, j) streams the row block A_i (r_i×T) and the column block
  B_j (T×c_j) and leaves the r_i×c_j outputs in the PEs, written back once.
* ws/is — fold (i, j) preloads the stationary tile S_ij (r_i×c_j), streams the
  block X_i (T×r_i) and emits T×c_j partial sums that accumulate over i.

An operand block indexed by the outer loop is *resident* when two copies fit
(ping/pong): it is fetched once and the next one is prefetched in equal parts
during the inner folds. Otherwise it is refetched every fold. An operand
indexed by the inner loop is fetched once when all of it fits. Partial sums
that do not fit are spilled at acc_bits and read back. Of the loop orders
whose buffers fit, the one with the least DRAM traffic wins (ties: rows-outer).
The scratchpad must at least hold, per buffer, one R×C operand tile and one
R×C accumulator tile; an array bigger than that is a `UsageError`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmc.errors import UsageError
from llmc.hw.array import ArraySpec, Dataflow, fold_counts, mapping


@dataclass(frozen=True)
class FoldPlan:
    """Per-fold data movement of one GEMM, in execution order (length = folds)."""

    order: str                  # "rows-outer" or "cols-outer", plus residency, e.g. "rows-outer/a"
    rows_folds: int             # ⌈Sr/R⌉
    cols_folds: int             # ⌈Sc/C⌉
    load_bytes: np.ndarray      # DRAM→SRAM bytes needed before fold f, float64 (F,)
    store_bytes: np.ndarray     # SRAM→DRAM bytes written after fold f, float64 (F,)
    array_bytes: np.ndarray     # bytes the array reads+writes in SRAM during fold f (F,)
    sram_read_bytes: float      # array reads + DRAM write-back reads
    sram_write_bytes: float     # array writes + DRAM fills

    @property
    def folds(self) -> int:
        return self.rows_folds * self.cols_folds

    @property
    def dram_read_bytes(self) -> float:
        return float(self.load_bytes.sum())

    @property
    def dram_write_bytes(self) -> float:
        return float(self.store_bytes.sum())


def min_sram_bytes(spec: ArraySpec, buffers: int) -> int:
    """Smallest scratchpad that can feed `spec`: per buffer an R×C operand and accumulator tile."""
    in_b, acc_b = spec.in_bits / 8, spec.acc_bits / 8
    return int(np.ceil(buffers * spec.rows * spec.cols * (in_b + acc_b)))


def _block_sizes(extent: int, tile: int) -> np.ndarray:
    """Sizes of the ⌈extent/tile⌉ blocks an extent is cut into (last one partial)."""
    count = -(-extent // tile)
    sizes = np.full(count, tile, dtype=np.float64)
    sizes[-1] = extent - tile * (count - 1)
    return sizes


def _spread(block: np.ndarray, n_inner: int) -> np.ndarray:
    """(n_outer, n_inner) loads of a resident outer operand, prefetched in equal parts.

    Block 0 arrives before fold (0, 0); block o+1 is split into n_inner parts
    loaded with folds (o, 1..n_inner-1) and (o+1, 0), so it is complete when
    outer iteration o+1 starts and its transfer overlaps iteration o.
    """
    n_outer = block.size
    out = np.zeros((n_outer, n_inner))
    out[0, 0] = block[0]
    share = block / n_inner
    if n_outer > 1:
        out[1:, 0] = share[1:]
        if n_inner > 1:
            out[:-1, 1:] = share[1:, None]
    return out


@dataclass(frozen=True)
class _Candidate:
    name: str
    need_bytes: float           # resident bytes on top of the minimum tiles
    load: np.ndarray            # (n_outer, n_inner)
    store: np.ndarray           # (n_outer, n_inner)
    array: np.ndarray           # (n_outer, n_inner) array-side SRAM bytes


def _os_candidates(r, c, t, in_b, out_b, nb, R, C) -> list[_Candidate]:
    """Output-stationary: A row blocks (r_i×T), B column blocks (T×c_j), C tiles written once."""
    cands = []
    a_blk, b_blk = r * t * in_b, c * t * in_b          # bytes per block
    for order, outer, inner, o_tile, transpose in (
        ("rows-outer", a_blk, b_blk, R, False),
        ("cols-outer", b_blk, a_blk, C, True),
    ):
        tile_out = np.outer(r, c) * out_b
        tile_out = tile_out.T if transpose else tile_out
        array = outer[:, None] + inner[None, :] + tile_out
        ones = np.ones((outer.size, inner.size))
        outer_res = nb * o_tile * t * in_b
        spread = _spread(outer, inner.size)
        once = np.zeros_like(ones)
        once[0, :] = inner
        cands += [
            _Candidate(f"{order}/both-resident", outer_res + inner.sum(), spread + once, tile_out, array),
            _Candidate(f"{order}/outer-resident", outer_res, spread + inner[None, :] * ones, tile_out, array),
            _Candidate(f"{order}/streamed", 0.0, outer[:, None] + inner[None, :], tile_out, array),
        ]
    return cands


def _stationary_candidates(r, c, t, in_b, acc_b, out_b, nb, R, C) -> list[_Candidate]:
    """ws/is: stationary tiles r_i×c_j, streamed X_i (T×r_i), partial sums T×c_j over i."""
    fr, fc = r.size, c.size
    s_tile = np.outer(r, c) * in_b                       # (fr, fc)
    x_blk = r * t * in_b                                 # (fr,)
    psum = np.broadcast_to(c[None, :] * t * acc_b, (fr, fc))
    final = np.broadcast_to(c[None, :] * t * out_b, (fr, fc))
    first = np.zeros((fr, fc), dtype=bool)
    first[0, :] = True
    last = np.zeros((fr, fc), dtype=bool)
    last[-1, :] = True
    # array-side SRAM traffic does not depend on the loop order
    array = s_tile + x_blk[:, None] + np.where(first, 0.0, psum) + np.where(last, final, psum)
    resident_store = np.where(last, final, 0.0)
    spill_store = np.where(last, final, psum)
    spill_load = np.where(first, 0.0, psum)
    x_every = np.broadcast_to(x_blk[:, None], (fr, fc))
    x_once_cols = np.zeros((fr, fc))
    x_once_cols[:, 0] = x_blk                            # whole X loaded during j = 0
    x_spread_rows = _spread(x_blk, fc)                   # rows-outer: X_i resident over j
    all_psums = t * c.sum() * acc_b
    x_res, out_res = nb * t * R * in_b, nb * t * C * acc_b
    x_all = x_blk.sum()
    raw = [
        ("rows-outer/both-resident", x_res + all_psums, s_tile + x_spread_rows, resident_store),
        ("rows-outer/x-resident", x_res, s_tile + x_spread_rows + spill_load, spill_store),
        ("rows-outer/psums-resident", all_psums, s_tile + x_every, resident_store),
        ("rows-outer/streamed", 0.0, s_tile + x_every + spill_load, spill_store),
        ("cols-outer/both-resident", out_res + x_all, s_tile + x_once_cols, resident_store),
        ("cols-outer/psums-resident", out_res, s_tile + x_every, resident_store),
        ("cols-outer/x-resident", x_all, s_tile + x_once_cols + spill_load, spill_store),
    ]
    cands = []
    for name, need, load, store in raw:
        transpose = name.startswith("cols")
        pick = (lambda a: np.ascontiguousarray(a.T)) if transpose else np.asarray
        cands.append(_Candidate(name, need, pick(load), pick(store), pick(array)))
    return cands


def plan_folds(
    m: int, n: int, k: int, spec: ArraySpec, sram_bytes: int, *,
    double_buffered: bool = True, out_bits: int | None = None,
) -> FoldPlan:
    """The fold schedule and data movement of C[M×N] = A[M×K]·B[K×N] on `spec`.

    `sram_bytes` is the scratchpad capacity; `out_bits` the width of the final
    outputs written back (default: the accumulator width).
    """
    nb = 2 if double_buffered else 1
    need = min_sram_bytes(spec, nb)
    if sram_bytes < need:
        raise UsageError(
            f"array {spec.rows}x{spec.cols} needs at least {need / 1024:.1f} KB of SRAM to be fed "
            f"({nb} buffer(s) x {spec.rows}x{spec.cols} x ({spec.in_bits}+{spec.acc_bits}) bits); "
            f"got {sram_bytes / 1024:.1f} KB: give more SRAM or use a smaller array")
    sr, sc, t = mapping(m, n, k, spec.dataflow)
    r, c = _block_sizes(sr, spec.rows), _block_sizes(sc, spec.cols)
    in_b, acc_b = spec.in_bits / 8, spec.acc_bits / 8
    out_b = (out_bits or spec.acc_bits) / 8
    if spec.dataflow is Dataflow.OS:
        cands = _os_candidates(r, c, t, in_b, out_b, nb, spec.rows, spec.cols)
    else:
        cands = _stationary_candidates(r, c, t, in_b, acc_b, out_b, nb, spec.rows, spec.cols)
    budget = sram_bytes - need
    fitting = [cd for cd in cands if cd.need_bytes <= budget]  # "streamed" needs 0: never empty
    # least DRAM traffic; ties keep the earlier (rows-outer, more resident) candidate
    best = min(fitting, key=lambda cd: float(cd.load.sum() + cd.store.sum()))
    fr, fc = fold_counts(m, n, k, spec)
    load, store, array = (x.ravel().astype(np.float64) for x in (best.load, best.store, best.array))
    dram_r, dram_w = float(load.sum()), float(store.sum())
    # array writes are the outputs/partial sums it emits; all else it reads
    array_total = float(array.sum())
    array_writes = _array_write_bytes(spec, r, c, t, out_b, acc_b)
    return FoldPlan(
        order=best.name, rows_folds=fr, cols_folds=fc,
        load_bytes=load, store_bytes=store, array_bytes=array,
        sram_read_bytes=array_total - array_writes + dram_w,
        sram_write_bytes=array_writes + dram_r,
    )


def _array_write_bytes(spec: ArraySpec, r: np.ndarray, c: np.ndarray, t: int,
                       out_b: float, acc_b: float) -> float:
    """Bytes the array writes into SRAM: final outputs, plus partial sums for ws/is."""
    if spec.dataflow is Dataflow.OS:
        return float(r.sum() * c.sum() * out_b)
    fr = r.size
    return float(t * c.sum() * ((fr - 1) * acc_b + out_b))
