"""Integer weight quantization: symmetric round-to-nearest with per-group or
per-channel scales, and GPTQ (Frantar et al., ICLR 2023) error compensation.

A weight W (N, K) becomes integers q (N, Kp) and scales s (N, Kp / group) with
W ~ q * s[:, k // group]; Kp is K rounded up to the group (and, for int4, to
the 32-element packing lane) with zero columns: padding, never refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from llmc.ir.pack import LANE


@dataclass(frozen=True)
class QuantWeight:
    q: np.ndarray        # int8 values (N, Kp), in -qmax-1..qmax
    scales: np.ndarray   # float32 (N, Kp // group)
    group: int           # Kp for per-channel
    k: int               # unpadded in_features

    def dequant(self) -> np.ndarray:
        n, kp = self.q.shape
        w = self.q.reshape(n, kp // self.group, self.group) * self.scales[..., None]
        return w.reshape(n, kp)[:, : self.k].astype(np.float32)


def qmax(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def padded_k(k: int, bits: int, group: int) -> tuple[int, int]:
    """(padded in_features, group) for a weight with k inputs; group 0 = per channel."""
    unit = LANE if bits == 4 else 1
    if group == 0:
        kp = -(-k // unit) * unit
        return kp, kp
    return -(-k // group) * group, group


def pad_cols(w: np.ndarray, kp: int) -> np.ndarray:
    return np.pad(w, ((0, 0), (0, kp - w.shape[1])))


ScaleFn = Callable[[np.ndarray], np.ndarray]  # group abs-max (N,) -> scale (N,)


def symmetric_scale(bits: int) -> ScaleFn:
    top = qmax(bits)
    return lambda amax: np.where(amax > 0, amax / top, 1.0)


def round_weights(w: np.ndarray, s: np.ndarray, bits: int) -> np.ndarray:
    """clamp(rint(w / s)) to -(qmax+1)..qmax for int4 (the full nibble), +-qmax for int8."""
    lo = -qmax(bits) - 1 if bits == 4 else -qmax(bits)
    return np.clip(np.rint(w / s), lo, qmax(bits))


def rtn(w: np.ndarray, bits: int, group: int, scale_fn: ScaleFn | None = None) -> QuantWeight:
    """Round to nearest with one symmetric scale per group of inputs."""
    n, k = w.shape
    kp, g = padded_k(k, bits, group)
    wp = pad_cols(w.astype(np.float64), kp).reshape(n, kp // g, g)
    s = (scale_fn or symmetric_scale(bits))(np.abs(wp).max(axis=-1))
    q = round_weights(wp, s[..., None], bits)
    return QuantWeight(q.reshape(n, kp).astype(np.int8), s.astype(np.float32), g, k)


def gptq(w: np.ndarray, hessian: np.ndarray, bits: int, group: int,
         scale_fn: ScaleFn | None = None, damp: float = 0.01, block: int = 128) -> QuantWeight:
    """GPTQ: quantize columns left to right; each column's rounding error is
    spread over the not-yet-quantized columns through the inverse Hessian's
    Cholesky factor (the paper's Algorithm 1, lazy batch updates of `block`
    columns). Group scales are fixed when the group's first column is reached."""
    n, k = w.shape
    kp, g = padded_k(k, bits, group)
    scale_fn = scale_fn or symmetric_scale(bits)
    W = pad_cols(w.astype(np.float64), kp)
    H = np.zeros((kp, kp))
    H[:k, :k] = hessian
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H += damp * np.mean(np.diag(H)) * np.eye(kp)
    L = np.linalg.cholesky(np.linalg.inv(H))
    U = L.T                                                # upper: H^-1 = U^T U
    Q = np.zeros_like(W)
    S = np.zeros((n, kp // g))
    for i1 in range(0, kp, block):
        i2 = min(i1 + block, kp)
        W1 = W[:, i1:i2].copy()
        E1 = np.zeros_like(W1)
        for i in range(i2 - i1):
            col = i1 + i
            if col % g == 0:
                seg = np.concatenate([W1[:, i:], W[:, i2:]], axis=1)[:, :g]
                S[:, col // g] = scale_fn(np.abs(seg).max(axis=1))
            s = S[:, col // g]
            q = round_weights(W1[:, i], s, bits)
            Q[:, col] = q
            err = (W1[:, i] - q * s) / U[col, col]
            W1[:, i:] -= np.outer(err, U[col, col:i2])
            E1[:, i] = err
        W[:, i2:] -= E1 @ U[i1:i2, i2:]
    return QuantWeight(Q.astype(np.int8), S.astype(np.float32), g, k)


def two_level_scale(w: np.ndarray, bits: int, group: int) -> tuple[np.ndarray, ScaleFn]:
    """For integer-only int4: each group scale is a per-channel scale times a
    u8 integer (1..255), so group scales cost no float arithmetic at run time.
    Returns (channel scale (N,), a ScaleFn that snaps group scales to that grid)."""
    chan = np.abs(w).max(axis=1) / qmax(bits) / 255.0
    chan = np.where(chan > 0, chan, 1.0)

    def snap(amax: np.ndarray) -> np.ndarray:  # amax (N,) (GPTQ) or (N, groups) (RTN)
        c = chan.reshape(chan.shape + (1,) * (np.ndim(amax) - 1))
        return c * np.clip(np.rint(amax / qmax(bits) / c), 1, 255)

    return chan, snap
