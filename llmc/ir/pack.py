"""SIMD-packed 4-bit weights (after Agile-Quant): two int4 per byte.

Layout `int4x2_lane32` (docs/quant_layouts.md is the one description; keep
it in step): a weight row of K int4 values (two's complement, -8..7) is cut
into lanes of 32 consecutive elements; lane j becomes 16 bytes, byte i of it
holding element 32j + i in its low nibble and element 32j + 16 + i in its high
nibble. A 128-bit SIMD register (or a Triton tile of 16 bytes) therefore
unpacks into two runs of 16 *consecutive* elements with one shift each and
no shuffle:

    lo = (int8)(b << 4) >> 4      # elements 32j + 0 .. 32j + 15  (sign-extended)
    hi = (int8) b       >> 4      # elements 32j + 16 .. 32j + 31

A tensor of shape (N, K) packs to uint8 (N, K // 2); K must be a multiple of
32 (passes pad the reduction dim with zeros first and say so).
"""

from __future__ import annotations

import numpy as np

from llmc.errors import IRError

LANE = 32
LAYOUT = "int4x2_lane32"


def pack_int4(q: np.ndarray) -> np.ndarray:
    """int values in -8..7, shape (..., K) with K % 32 == 0 -> uint8 (..., K // 2)."""
    q = np.asarray(q)
    if q.shape[-1] % LANE:
        raise IRError(f"pack_int4: last dim {q.shape[-1]} is not a multiple of {LANE}")
    if q.size and (q.min() < -8 or q.max() > 7):
        raise IRError("pack_int4: values outside the int4 range -8..7")
    lanes = q.astype(np.int64).reshape(*q.shape[:-1], -1, 2, LANE // 2)  # (..., L, half, 16)
    lo, hi = lanes[..., 0, :] & 0xF, lanes[..., 1, :] & 0xF
    return ((hi << 4) | lo).astype(np.uint8).reshape(*q.shape[:-1], q.shape[-1] // 2)


def unpack_int4(p: np.ndarray) -> np.ndarray:
    """Inverse of pack_int4 with shifts and masks only: uint8 (..., K/2) -> int8 (..., K)."""
    b = np.asarray(p, np.uint8).view(np.int8)
    lanes = b.reshape(*b.shape[:-1], -1, LANE // 2)
    lo = np.left_shift(lanes, 4).astype(np.int8) >> 4          # arithmetic shift sign-extends
    hi = lanes >> 4
    return np.concatenate([lo, hi], axis=-1).reshape(*b.shape[:-1], b.shape[-1] * 2)
