"""What the integer-only lowering's rules share: bit widths (IntConfig), an
integer value with its real scale (QV), dyadic multipliers and power-of-two
scales. The dense rules are in intlower.py, the MoE rule in intmoe.py."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from llmc.errors import UsageError
from llmc.ir import dtypes
from llmc.ir.dtypes import DType
from llmc.ir.graph import Value
from llmc.ir.ops.intops import qrange


@dataclass(frozen=True)
class IntConfig:
    """Bit widths and fixed-point fractions of the integer lowering."""

    act: DType = dtypes.i8          # matmul inputs, attention q/k/v, KV cache
    mid: DType = dtypes.i16         # SiLU input/output, elementwise products
    res_bits: int = 24              # residual stream precision (held in i32)
    table: DType = dtypes.i16       # embedding and RoPE tables
    exp_frac: int = 14              # fraction bits of i-exp inputs (softmax, SiLU)
    prob_bits: int = 16             # softmax probabilities (unsigned)


@dataclass(frozen=True)
class QV:
    """An integer value of the lowered graph; real = value * scale (a float, or
    an array along the last dim for a linear's accumulator)."""

    v: Value
    scale: float | np.ndarray

    @property
    def dtype(self) -> DType:
        return self.v.type.dtype

    @property
    def per_tensor(self) -> bool:
        return np.ndim(self.scale) == 0


def dyadic(m: float | np.ndarray) -> tuple[np.ndarray, int]:
    """Integer multipliers and one shift with m ~ mult * 2^-shift; mult < 2^31."""
    m = np.asarray(m, np.float64)
    top = float(np.max(m)) if m.size else 1.0
    if not np.all(m > 0) or not math.isfinite(top):
        raise UsageError(f"requantization multiplier out of range: {top}")
    shift = int(min(62, max(0, 30 - math.floor(math.log2(top)))))
    mult = np.rint(m * 2.0**shift).astype(np.int64)
    if mult.max() >= 2**31:
        raise UsageError(f"requantization multiplier {top} too large for int32")
    return np.maximum(mult, 1), shift


def pow2_scale(amax: float, dtype: DType) -> float:
    """Smallest power of two s with amax <= qmax(dtype) * s."""
    top = qrange(dtype)[1]
    return 2.0 ** math.ceil(math.log2(amax / top)) if amax > 0 else 1.0
