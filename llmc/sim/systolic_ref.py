"""A register-level reference model of the systolic array, cycle by cycle.

Slow (numpy per cycle) and meant for small shapes: it moves operands through
PE registers exactly as the dataflow prescribes, computes C = A·B with them,
and counts each fold's cycles up to the last MAC/psum leaving the array. Tests
use it to check that `systolic.compute_cycles` (the SCALE-Sim 3.0 closed form)
and the dataflow mappings are right; the RTL testbench can use it as a golden
cycle-by-cycle model. Every fold drives the full R×C array (unused PEs get
zeros), which is why partial folds pay the full R and C.
"""

from __future__ import annotations

import numpy as np

from llmc.hw.array import ArraySpec, Dataflow


def os_fold(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
    """Output-stationary fold: a (R, T) enters from the left, b (T, C) from the top.

    Row r of `a` enters skewed by r cycles, column c of `b` by c cycles; PE
    (r, c) does its k-th MAC at cycle r + c + k. Returns (acc (R, C), cycles).
    """
    rows, t = a.shape
    cols = b.shape[1]
    a_reg = np.zeros((rows, cols), dtype=np.int64)
    b_reg = np.zeros((rows, cols), dtype=np.int64)
    a_ok = np.zeros((rows, cols), dtype=bool)
    b_ok = np.zeros((rows, cols), dtype=bool)
    acc = np.zeros((rows, cols), dtype=np.int64)
    last, cycle = -1, 0
    r_idx, c_idx = np.arange(rows), np.arange(cols)
    while cycle < rows + cols + t:
        a_reg[:, 1:], a_ok[:, 1:] = a_reg[:, :-1].copy(), a_ok[:, :-1].copy()
        b_reg[1:, :], b_ok[1:, :] = b_reg[:-1, :].copy(), b_ok[:-1, :].copy()
        ka, kb = cycle - r_idx, cycle - c_idx            # skewed operand index entering
        va, vb = (ka >= 0) & (ka < t), (kb >= 0) & (kb < t)
        a_reg[:, 0] = np.where(va, a[r_idx, np.clip(ka, 0, t - 1)], 0)
        b_reg[0, :] = np.where(vb, b[np.clip(kb, 0, t - 1), c_idx], 0)
        a_ok[:, 0], b_ok[0, :] = va, vb
        fire = a_ok & b_ok
        if fire.any():
            acc += np.where(fire, a_reg * b_reg, 0)
            last = cycle
        cycle += 1
    return acc, last + 1


def stationary_fold(w: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, int]:
    """Weight-/input-stationary fold: w (R, C) preloaded, x (T, R) streamed from the left.

    Preload: one row of w enters from the top per cycle (R cycles). Then row t
    of x enters row r at cycle t + r; partial sums flow down and leave the
    bottom of column c at cycle t + R − 1 + c. Returns (out (T, C), cycles).
    """
    rows, cols = w.shape
    t = x.shape[0]
    w_reg = np.zeros((rows, cols), dtype=np.int64)
    for p in range(rows):  # shift rows down; the last row goes in first
        w_reg[1:, :] = w_reg[:-1, :].copy()
        w_reg[0, :] = w[rows - 1 - p, :]
    assert np.array_equal(w_reg, w)
    x_reg = np.zeros((rows, cols), dtype=np.int64)
    x_ok = np.zeros((rows, cols), dtype=bool)
    psum = np.zeros((rows, cols), dtype=np.int64)
    p_ok = np.zeros((rows, cols), dtype=bool)
    out = np.zeros((t, cols), dtype=np.int64)
    last, cycle = -1, 0
    r_idx, c_idx = np.arange(rows), np.arange(cols)
    while cycle < t + rows + cols:
        x_reg[:, 1:], x_ok[:, 1:] = x_reg[:, :-1].copy(), x_ok[:, :-1].copy()
        tx = cycle - r_idx
        vx = (tx >= 0) & (tx < t)
        x_reg[:, 0] = np.where(vx, x[np.clip(tx, 0, t - 1), r_idx], 0)
        x_ok[:, 0] = vx
        above = np.vstack([np.zeros((1, cols), dtype=np.int64), psum[:-1, :]])
        psum = above + np.where(x_ok, x_reg * w_reg, 0)
        p_ok = x_ok.copy()
        leaving = p_ok[rows - 1, :]
        if leaving.any():
            t_out = cycle - (rows - 1) - c_idx
            out[t_out[leaving], c_idx[leaving]] = psum[rows - 1, leaving]
            last = cycle
        cycle += 1
    return out, rows + last + 1


def _pad(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, dtype=np.int64)
    out[: a.shape[0], : a.shape[1]] = a
    return out


def run_gemm(a: np.ndarray, b: np.ndarray, spec: ArraySpec) -> tuple[np.ndarray, list[int]]:
    """C = a·b computed by the register model; returns (C, cycles of each fold)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    m, k = a.shape
    n = b.shape[1]
    R, C = spec.rows, spec.cols
    out = np.zeros((m, n), dtype=np.int64)
    folds: list[int] = []
    if spec.dataflow is Dataflow.OS:  # rows of the array: M, cols: N, streamed: K
        for i in range(0, m, R):
            for j in range(0, n, C):
                acc, cyc = os_fold(_pad(a[i:i + R, :], (R, k)), _pad(b[:, j:j + C], (k, C)))
                out[i:i + R, j:j + C] = acc[: min(R, m - i), : min(C, n - j)]
                folds.append(cyc)
        return out, folds
    if spec.dataflow is Dataflow.WS:  # stationary B (K×N), streamed A (M×K) -> C (M×N)
        stat, stream = b, a
    else:  # IS: stationary Aᵀ (K×M), streamed Bᵀ (N×K) -> Cᵀ (N×M)
        stat, stream = a.T, b.T
    sr, sc = stat.shape
    t = stream.shape[0]
    res = np.zeros((t, sc), dtype=np.int64)
    for i in range(0, sr, R):
        for j in range(0, sc, C):
            part, cyc = stationary_fold(_pad(stat[i:i + R, j:j + C], (R, C)),
                                        _pad(stream[:, i:i + R], (t, R)))
            res[:, j:j + C] += part[:, : min(C, sc - j)]
            folds.append(cyc)
    return (res if spec.dataflow is Dataflow.WS else res.T), folds
