"""Pruning rules on one weight matrix W (out, in), numpy, float64 inside.

  magnitude   zero the smallest |w| (unstructured: per matrix; 2:4: per group)
  wanda       score |w| * ||x_j||_2 (Sun et al. 2023, arXiv 2306.11695); the
              comparison group is each output row; no weight update
  sparsegpt   one-shot OBS pruning with error compensation (Frantar & Alistarh
              2023, arXiv 2301.00774, Algorithm 1 and the authors' code):
              columns left to right in blocks of 128; in each block the mask
              is chosen by w^2 / [H^-1]_cc^2 (2:4: per group of 4 columns),
              and the pruning error of each column is pushed into the columns
              not yet visited through the Cholesky factor of H^-1, H = 2 X^T X.
"""

from __future__ import annotations

import numpy as np


def keep_smallest_pruned(score: np.ndarray, ratio: float) -> np.ndarray:
    """Keep-mask zeroing the round(ratio * size) lowest scores of the array."""
    n = int(round(ratio * score.size))
    order = np.argsort(score, axis=None, kind="stable")
    keep = np.ones(score.size, dtype=bool)
    keep[order[:n]] = False
    return keep.reshape(score.shape)


def keep_rowwise(score: np.ndarray, ratio: float) -> np.ndarray:
    """Keep-mask zeroing the round(ratio * in) lowest scores of every row."""
    n = int(round(ratio * score.shape[1]))
    order = np.argsort(score, axis=1, kind="stable")[:, :n]
    keep = np.ones(score.shape, dtype=bool)
    np.put_along_axis(keep, order, False, axis=1)
    return keep


def keep_2_4(score: np.ndarray) -> np.ndarray:
    """Keep-mask keeping the 2 highest scores of every group of 4 columns."""
    out, n = score.shape
    g = score.reshape(out, n // 4, 4)
    order = np.argsort(g, axis=-1, kind="stable")[..., :2]         # the 2 lowest go
    keep = np.ones(g.shape, dtype=bool)
    np.put_along_axis(keep, order, False, axis=-1)
    return keep.reshape(out, n)


def magnitude(w: np.ndarray, pattern: str, ratio: float) -> np.ndarray:
    score = np.abs(w.astype(np.float64))
    keep = keep_2_4(score) if pattern == "2:4" else keep_smallest_pruned(score, ratio)
    return np.where(keep, w, 0).astype(w.dtype)


def wanda(w: np.ndarray, col_norm: np.ndarray, pattern: str, ratio: float) -> np.ndarray:
    """col_norm (in,): ||x_j||_2 over the calibration tokens."""
    score = np.abs(w.astype(np.float64)) * col_norm[None, :]
    keep = keep_2_4(score) if pattern == "2:4" else keep_rowwise(score, ratio)
    return np.where(keep, w, 0).astype(w.dtype)


def sparsegpt(w: np.ndarray, hessian: np.ndarray, pattern: str, ratio: float,
              blocksize: int = 128, percdamp: float = 0.01) -> np.ndarray:
    """hessian (in, in): 2/n * sum of x x^T over the n calibration tokens."""
    W = w.astype(np.float64).copy()
    H = hessian.astype(np.float64).copy()
    rows, cols = W.shape
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H[np.diag_indices(cols)] += percdamp * np.mean(np.diag(H))
    hinv = np.linalg.cholesky(np.linalg.inv(H)).T                  # upper Cholesky of H^-1
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1, hinv1 = W[:, i1:i2].copy(), hinv[i1:i2, i1:i2]
        d = np.diag(hinv1)
        err = np.zeros_like(W1)
        if pattern == "2:4":
            pruned = np.zeros(W1.shape, dtype=bool)
        else:
            pruned = ~keep_smallest_pruned(W1 ** 2 / d[None, :] ** 2, ratio)
        for i in range(i2 - i1):
            if pattern == "2:4" and i % 4 == 0:
                score = W1[:, i:i + 4] ** 2 / d[None, i:i + 4] ** 2
                pruned[:, i:i + 4] = ~keep_2_4(score)
            col = W1[:, i]
            q = np.where(pruned[:, i], 0.0, col)
            e = (col - q) / d[i]
            W1[:, i:] -= np.outer(e, hinv1[i, i:])
            W1[:, i] = q
            err[:, i] = e
        W[:, i1:i2] = W1
        W[:, i2:] -= err @ hinv[i1:i2, i2:]
    return W.astype(w.dtype)
