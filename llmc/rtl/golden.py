"""The golden model RTL GEMMs are checked against: numpy, bit-exact.

Operands are two's-complement `in_bits` integers; the product sum is exact in
int64 and then wraps to `acc_bits` like the hardware accumulator. (When the IR
interpreter lands, its integer matmul is the same function.)
"""

from __future__ import annotations

import numpy as np


def random_operands(
    m: int, n: int, k: int, in_bits: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded uniform A (M, K) and B (K, N) over the whole signed `in_bits` range."""
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (in_bits - 1)), (1 << (in_bits - 1))
    a = rng.integers(lo, hi, size=(m, k), dtype=np.int64)  # (M, K)
    b = rng.integers(lo, hi, size=(k, n), dtype=np.int64)  # (K, N)
    return a, b


def wrap_signed(x: np.ndarray, bits: int) -> np.ndarray:
    """`x` reduced modulo 2**bits into [-2**(bits-1), 2**(bits-1)), as int64."""
    x = np.asarray(x, dtype=np.int64)
    if bits >= 64:
        return x
    mod = np.int64(1) << np.int64(bits)
    half = np.int64(1) << np.int64(bits - 1)
    return ((x + half) % mod) - half


def reference_gemm(a: np.ndarray, b: np.ndarray, acc_bits: int) -> np.ndarray:
    """C = A·B as an `acc_bits` accumulator computes it: exact, then wrapped. (M, N) int64."""
    return wrap_signed(np.asarray(a, np.int64) @ np.asarray(b, np.int64), acc_bits)
