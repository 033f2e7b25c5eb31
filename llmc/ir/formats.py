"""Block formats: the numerics of BFP and OCP MX quantization, in numpy.

These functions *define* rounding and saturation for every block dtype; the
`quantize` op (llmc/ir/ops/quant.py) runs them, so the interpreter, the
passes that quantize weights at compile time and the tests share one
definition. Blocks are `dtype.block` consecutive elements of the last axis.

BFP `bfp{p}b{n}` (d-Matrix naming BFP[p|8]{n}; docs/references.md "Block formats"):
  each element is a sign-magnitude integer m with |m| <= 2^(p-1) - 1 and the
  block shares an 8-bit exponent E = clamp(floor(log2 max|v|), -127, 127):
      v ~ m * 2^(E - (p - 2)),  m = clamp(rint(v / 2^(E-p+2)), +-(2^(p-1) - 1))
  so the block's largest value keeps p-1 significant bits. Rounding is
  round-half-to-even; a value that rounds past the largest mantissa saturates.

OCP MX (Microscaling Formats spec v1.0): blocks of 32 share an E8M0 scale
  X = clamp(floor(log2 max|v|) - emax_elem, -127, 127); each element is
  v / 2^X rounded to the element format (minifloat FP8/FP6/FP4 with
  subnormals, or INT8 with an implied 2^-6), round-half-to-even, saturated to
  the element's largest normal (E4M3 448, E5M2 57344, E3M2 28, E2M3 7.5,
  E2M1 6, INT8 127 * 2^-6).

Special values (both families): a block containing NaN becomes all NaN (the
MX spec's NaN scale); +-Inf saturates to the largest magnitude the block can
hold (E = 127). Compile-time weight quantization refuses NaN/Inf instead
(`check_finite`), naming the tensor.

Everything is computed in float64 and returned as float32; every result is
exactly representable in float32 (the smallest quantum, 2^-143, is above
float32's smallest subnormal, 2^-149).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmc.errors import IRError, UsageError
from llmc.ir.dtypes import DType

SCALE_MIN, SCALE_MAX = -127, 127  # 8-bit shared exponent / E8M0 range (255 = NaN)


@dataclass(frozen=True)
class ElemFormat:
    """An MX element format: exponent/mantissa bits of a minifloat, or an
    integer with an implied scale. emax: exponent of the largest normal;
    emin: of the smallest normal; max_normal: largest finite magnitude."""

    name: str
    exp_bits: int
    man_bits: int
    emax: int
    max_normal: float
    is_int: bool = False

    @property
    def emin(self) -> int:
        return 1 - (2 ** (self.exp_bits - 1) - 1) if not self.is_int else 0


# OCP MX v1.0, table 1 (element formats) and the OFP8 spec for E4M3/E5M2.
ELEMENTS: dict[str, ElemFormat] = {
    "fp8e4m3": ElemFormat("fp8e4m3", 4, 3, 8, 448.0),
    "fp8e5m2": ElemFormat("fp8e5m2", 5, 2, 15, 57344.0),
    "fp6e3m2": ElemFormat("fp6e3m2", 3, 2, 4, 28.0),
    "fp6e2m3": ElemFormat("fp6e2m3", 2, 3, 2, 7.5),
    "fp4e2m1": ElemFormat("fp4e2m1", 2, 1, 2, 6.0),
    # MXINT8: two's complement with an implied scale of 2^-6 (1.6 fixed point),
    # used symmetrically (-127..127) so negation never overflows.
    "int8": ElemFormat("int8", 0, 6, 0, 127 * 2.0 ** -6, is_int=True),
}


def _floor_log2(a: np.ndarray) -> np.ndarray:
    """floor(log2 a) for a > 0, exact (frexp, not a rounded log)."""
    _, e = np.frexp(a)
    return (e - 1).astype(np.int64)


def _blocks(x: np.ndarray, block: int, what: str) -> np.ndarray:
    if x.ndim == 0 or x.shape[-1] % block:
        raise IRError(f"{what}: last dim of shape {x.shape} is not a multiple of the "
                      f"block size {block}")
    return x.reshape(*x.shape[:-1], x.shape[-1] // block, block)


def _shared_exponent(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(floor(log2 max|v|) clamped to the 8-bit range, NaN-block mask), shape (..., nb, 1)."""
    mag = np.abs(blocks)
    nan = np.isnan(mag).any(axis=-1, keepdims=True)
    amax = np.max(np.where(np.isnan(mag), 0.0, mag), axis=-1, keepdims=True)
    amax = np.minimum(amax, np.finfo(np.float64).max)  # Inf -> huge: saturates below
    e = np.where(amax > 0, _floor_log2(np.where(amax > 0, amax, 1.0)), SCALE_MIN)
    return np.clip(e, SCALE_MIN, SCALE_MAX), nan


def bfp_quantize(x: np.ndarray, mantissa_bits: int, block: int) -> np.ndarray:
    """Round x (float) to BFP with p = mantissa_bits (sign included) per
    element and a shared 8-bit exponent per `block` elements of the last axis."""
    b = _blocks(np.asarray(x, np.float64), block, f"bfp{mantissa_bits}b{block}")
    e, nan = _shared_exponent(b)
    step = np.ldexp(1.0, e - (mantissa_bits - 2))                  # (..., nb, 1)
    top = 2.0 ** (mantissa_bits - 1) - 1
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.clip(np.rint(np.nan_to_num(b, nan=0.0, posinf=np.inf, neginf=-np.inf) / step),
                    -top, top)
    out = np.where(nan, np.nan, m * step)
    return out.reshape(np.shape(x)).astype(np.float32)


def bfp_decompose(x: np.ndarray, mantissa_bits: int, block: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(mantissas int, shared exponents int) of values already in the format:
    x[..., i] = m[..., i] * 2^(E[..., i // block] - (p - 2)). For packing and tests."""
    b = _blocks(np.asarray(x, np.float64), block, "bfp")
    e, _ = _shared_exponent(b)
    m = b / np.ldexp(1.0, e - (mantissa_bits - 2))
    return m.reshape(np.shape(x)).astype(np.int64), e[..., 0]


def quantize_elements(y: np.ndarray, fmt: ElemFormat) -> np.ndarray:
    """Round scaled values y (float64) to the element format, RNE, saturating."""
    if fmt.is_int:
        quantum = np.full_like(y, 2.0 ** -fmt.man_bits)
    else:
        mag = np.abs(y)
        e = np.where(mag > 0, _floor_log2(np.where(mag > 0, mag, 1.0)), fmt.emin)
        e = np.maximum(e, fmt.emin)                       # subnormals share emin's quantum
        quantum = np.ldexp(1.0, e - fmt.man_bits)
    with np.errstate(invalid="ignore", over="ignore"):
        q = np.rint(y / quantum) * quantum
    return np.clip(q, -fmt.max_normal, fmt.max_normal)


def mx_quantize(x: np.ndarray, elem: str, block: int = 32) -> np.ndarray:
    """Round x to an OCP MX format with element format `elem` (an ELEMENTS key)."""
    fmt = ELEMENTS[elem]
    b = _blocks(np.asarray(x, np.float64), block, f"mx {elem}")
    e, nan = _shared_exponent(b)
    scale_exp = np.clip(e - fmt.emax, SCALE_MIN, SCALE_MAX)
    scale = np.ldexp(1.0, scale_exp)
    with np.errstate(invalid="ignore", over="ignore"):
        y = np.nan_to_num(b, nan=0.0) / scale
    out = np.where(nan, np.nan, quantize_elements(y, fmt) * scale)
    return out.reshape(np.shape(x)).astype(np.float32)


def quantize_block(x: np.ndarray, dtype: DType) -> np.ndarray:
    """Round x to block dtype `dtype` (a `bfp(...)` or `mx(...)` dtype)."""
    if dtype.kind != "block":
        raise IRError(f"{dtype} is not a block format")
    if dtype.elem.startswith("int") and dtype.name.startswith("bfp"):
        return bfp_quantize(x, int(dtype.elem[3:]), dtype.block)
    return mx_quantize(x, dtype.elem, dtype.block)


def max_magnitude(dtype: DType) -> float:
    """Largest finite magnitude a block dtype can hold (block max exponent 127)."""
    if dtype.name.startswith("bfp"):
        p = int(dtype.elem[3:])
        return float((2 ** (p - 1) - 1) * 2.0 ** (SCALE_MAX - (p - 2)))
    fmt = ELEMENTS[dtype.elem]
    return float(fmt.max_normal * 2.0 ** (SCALE_MAX - fmt.emax))


def check_finite(name: str, w: np.ndarray) -> None:
    """Refuse NaN/Inf in a tensor about to be quantized at compile time."""
    bad = ~np.isfinite(w)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise UsageError(f"{name}: {int(bad.sum())} NaN/Inf values (first at {idx}); "
                         f"quantization refuses non-finite weights")
