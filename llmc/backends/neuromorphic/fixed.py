"""The fixed-point neuron model: what the RTL neuron cores compute, bit for bit,
and what the simulator runs with `numeric="fixed"`.

Numbers are signed two's-complement Q(31-F).F in 32 bits (F = FRAC fractional
bits); a product of two is taken in 64 bits and shifted right by F with
arithmetic (floor) rounding; sums wrap at 32 bits as the hardware's do.

LIF (lif_layer's step): i = sum of weights x inputs + bias (the synapse loop's
accumulator, already Q.F)
    v = (beta * v) >>> F + i;  s = v > threshold;  v = s ? 0 : v

EGRU (egru_layer's step) with piecewise-linear gates, as integer cores run
them (the float model's sigmoid and tanh have no cheap exact integer form):
    hsig(x) = clamp((x >>> 2) + 1/2, 0, 1);   htanh(x) = clamp(x, -1, 1)
    u = hsig(a_u);  r = hsig(a_r);  z = htanh(a_zin + (r * a_zrec) >>> F)
    c = (u * c) >>> F + ((1 - u) * z) >>> F
    e = c > theta;  y = e ? c : 0;  c = e ? c - theta : c
where a_* are the accumulators with their biases (a_zrec includes b_hz).
"""

from __future__ import annotations

import numpy as np

FRAC = 12
ONE = 1 << FRAC
HALF = ONE >> 1


def wrap32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap to signed 32 bits (int64 in, int64 out)."""
    x = np.asarray(x, np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def to_fixed(x: np.ndarray | float) -> np.ndarray:
    """Round to nearest Q.F (saturating at 32 bits)."""
    q = np.round(np.asarray(x, np.float64) * ONE)
    return np.clip(q, -(1 << 31), (1 << 31) - 1).astype(np.int64)


def from_fixed(q: np.ndarray) -> np.ndarray:
    return np.asarray(q, np.int64) / ONE


def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a * b) >>> F in 64 bits, wrapped to 32."""
    return wrap32((np.asarray(a, np.int64) * np.asarray(b, np.int64)) >> FRAC)


def hsig(x: np.ndarray) -> np.ndarray:
    return np.clip((np.asarray(x, np.int64) >> 2) + HALF, 0, ONE)


def htanh(x: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(x, np.int64), -ONE, ONE)


def lif_update(v: np.ndarray, i: np.ndarray, beta: int, threshold: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """(spike 0/1, new v) of LIF units in Q.F."""
    v = wrap32(mul(beta, v) + np.asarray(i, np.int64))
    s = (v > threshold).astype(np.int64)
    return s, np.where(s == 1, 0, v)


def egru_update(c: np.ndarray, a_u: np.ndarray, a_r: np.ndarray, a_zin: np.ndarray,
                a_zrec: np.ndarray, theta: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(event 0/1, y, new c) of EGRU units in Q.F."""
    u, r = hsig(a_u), hsig(a_r)
    z = htanh(wrap32(np.asarray(a_zin, np.int64) + mul(r, a_zrec)))
    c = wrap32(mul(u, c) + mul(ONE - u, z))
    e = (c > theta).astype(np.int64)
    return e, np.where(e == 1, c, 0), np.where(e == 1, wrap32(c - theta), c)
