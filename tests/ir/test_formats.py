"""BFP and OCP MX rounding against an independent, straightforward reference
(enumerate every representable value; pick the nearest, ties to the even code),
plus hypothesis properties and the special cases the module documents."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from llmc.errors import IRError, UsageError
from llmc.ir.dtypes import bfp, mx
from llmc.ir.formats import (
    ELEMENTS,
    bfp_decompose,
    check_finite,
    max_magnitude,
    quantize_block,
)

MX_NAMES = ["mxfp8e4m3", "mxfp8e5m2", "mxfp6e3m2", "mxfp6e2m3", "mxfp4", "mxint8"]
# (exp bits, mantissa bits, bias) of the minifloats, from the OCP MX / OFP8 specs
MINIFLOAT = {"fp8e4m3": (4, 3, 7), "fp8e5m2": (5, 2, 15), "fp6e3m2": (3, 2, 3),
             "fp6e2m3": (2, 3, 1), "fp4e2m1": (2, 1, 1)}
MAX_NORMAL = {"fp8e4m3": 448.0, "fp8e5m2": 57344.0, "fp6e3m2": 28.0, "fp6e2m3": 7.5,
              "fp4e2m1": 6.0, "int8": 127 / 64}


def element_grid(elem: str) -> list[float]:
    """Every non-negative value of an element format, ascending (code order)."""
    if elem == "int8":
        return [k / 64 for k in range(128)]
    e_bits, m_bits, bias = MINIFLOAT[elem]
    vals = [k * 2.0 ** (1 - bias - m_bits) for k in range(2**m_bits)]          # subnormals
    for e in range(1, 2**e_bits):
        for f in range(2**m_bits):
            v = (1 + f / 2**m_bits) * 2.0 ** (e - bias)
            if v <= MAX_NORMAL[elem]:
                vals.append(v)
    return vals


def nearest_even(y: float, grid: list[float]) -> float:
    """Round |y| to the grid: nearest, ties to the even index; saturate."""
    a = abs(y)
    if a >= grid[-1]:
        return math.copysign(grid[-1], y)
    i = max(j for j, g in enumerate(grid) if g <= a)
    lo, hi = grid[i], grid[i + 1]
    if a - lo < hi - a or (a - lo == hi - a and i % 2 == 0):
        return math.copysign(lo, y)
    return math.copysign(hi, y)


def ref_mx(x: np.ndarray, name: str) -> np.ndarray:
    fmt = mx(name)
    elem = fmt.elem
    emax = {"fp8e4m3": 8, "fp8e5m2": 15, "fp6e3m2": 4, "fp6e2m3": 2, "fp4e2m1": 2, "int8": 0}
    grid = element_grid(elem)
    out = []
    for block in x.reshape(-1, fmt.block).tolist():
        amax = max(abs(v) for v in block)
        e = math.frexp(amax)[1] - 1 if amax > 0 else -127
        scale = 2.0 ** min(127, max(-127, e - emax[elem]))
        out.append([nearest_even(v / scale, grid) * scale for v in block])
    return np.array(out, np.float64).reshape(x.shape)


def ref_bfp(x: np.ndarray, p: int, n: int) -> np.ndarray:
    out = []
    top = 2 ** (p - 1) - 1
    for block in x.reshape(-1, n).tolist():
        amax = max(abs(v) for v in block)
        e = min(127, max(-127, math.frexp(amax)[1] - 1)) if amax > 0 else -127
        step = 2.0 ** (e - p + 2)
        out.append([max(-top, min(top, round(v / step))) * step for v in block])  # round(): half-even
    return np.array(out, np.float64).reshape(x.shape)


def _data(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal(n) * np.exp(rng.uniform(-6, 6, n))
    x[::7] = 0.0
    x[3] = 1e-30          # float32 subnormal territory
    return x.astype(np.float32)


@pytest.mark.parametrize("name", MX_NAMES)
def test_mx_matches_reference(rng, name: str) -> None:
    x = _data(rng, 32 * 24)
    got = quantize_block(x, mx(name))
    assert np.array_equal(got.astype(np.float64), ref_mx(x.astype(np.float64), name))


@pytest.mark.parametrize("p, n", [(8, 16), (4, 16), (8, 64), (4, 128), (6, 32)])
def test_bfp_matches_reference(rng, p: int, n: int) -> None:
    x = _data(rng, n * 12)
    got = quantize_block(x, bfp(p, n))
    assert np.array_equal(got.astype(np.float64), ref_bfp(x.astype(np.float64), p, n))


def test_grid_values_are_fixed_points() -> None:
    """Each format's own representable values round to themselves (scale 2^0 block)."""
    for name in MX_NAMES:
        fmt = mx(name)
        grid = element_grid(fmt.elem)
        emax = {"int8": 0}.get(fmt.elem, math.frexp(MAX_NORMAL[fmt.elem])[1] - 1)
        assert ELEMENTS[fmt.elem].emax == emax
        for start in range(0, len(grid), fmt.block - 1):
            block = np.zeros(fmt.block)
            chunk = grid[start:start + fmt.block - 1]
            block[: len(chunk)] = chunk
            block[-1] = grid[-1]        # pins the shared scale to 2^0
            assert np.array_equal(quantize_block(block.astype(np.float32), fmt), block)


def test_known_values() -> None:
    # E2M1 grid 0, .5, 1, 1.5, 2, 3, 4, 6; 2.5 ties to 2 (even code), 5 ties to 4.
    x = np.array([6, 2.5, 5, 0.25, 0.75, 1.25, -3.5, 7] + [0] * 24, np.float32)
    got = quantize_block(x, mx("mxfp4"))[:8]
    assert got.tolist() == [6, 2, 4, 0, 1, 1, -4, 6]
    # BFP16 block 16: max 1.0 -> step 2^-6; 1/3 -> 21/64
    y = np.zeros(16, np.float32)
    y[:2] = [1.0, 1 / 3]
    assert quantize_block(y, bfp(8, 16))[:2].tolist() == [1.0, 21 / 64]


@pytest.mark.parametrize("fmt", [bfp(8, 16), bfp(4, 16), mx("mxfp8e4m3"), mx("mxfp4"),
                                 mx("mxint8")])
def test_all_zero_and_single_huge_blocks(fmt) -> None:
    n = fmt.block
    assert np.array_equal(quantize_block(np.zeros(2 * n, np.float32), fmt), np.zeros(2 * n))
    x = np.full(n, 1e-3, np.float32)
    x[5] = 3e30
    q = quantize_block(x, fmt)
    assert abs(q[5] - 3e30) / 3e30 < 0.26           # the outlier keeps its magnitude
    assert np.all(q[np.arange(n) != 5] == 0)        # the small ones flush to zero


@pytest.mark.parametrize("fmt", [bfp(8, 16), mx("mxfp8e4m3"), mx("mxfp8e5m2"), mx("mxfp4")])
def test_nan_poisons_its_block_and_inf_saturates(fmt) -> None:
    n = fmt.block
    x = np.ones(3 * n, np.float32)
    x[1] = np.nan
    x[n + 2], x[n + 3] = np.inf, -np.inf
    q = quantize_block(x, fmt)
    assert np.all(np.isnan(q[:n]))
    assert q[n + 2] == max_magnitude(fmt) and q[n + 3] == -max_magnitude(fmt)
    assert np.all(np.isfinite(q[n:]))
    assert np.array_equal(q[2 * n:], np.ones(n))   # other blocks untouched


def test_compile_time_weights_refuse_non_finite() -> None:
    w = np.ones((2, 4), np.float32)
    w[1, 2] = np.inf
    with pytest.raises(UsageError, match=r"layers.0.w: 1 NaN/Inf values \(first at \(1, 2\)\)"):
        check_finite("layers.0.w", w)


def test_width_not_a_multiple_of_the_block_is_refused() -> None:
    with pytest.raises(IRError, match="not a multiple of the block size 16"):
        quantize_block(np.ones(24, np.float32), bfp(8, 16))


FMTS = [bfp(8, 16), bfp(4, 16), bfp(8, 32)] + [mx(n) for n in MX_NAMES]
finite = st.floats(-(2.0**100), 2.0**100, allow_nan=False, width=32)


def error_bound(fmt, amax: float) -> float:
    """Largest |q - x| in a block whose max is amax: half a quantum of the top
    binade for rounding, or the saturation gap when the max exceeds the format.
    The 8-bit shared exponent stops at 2^-127: below it (float32 subnormals)
    a block's step is that of 2^-127 and its values may round to zero."""
    e = math.frexp(amax)[1] - 1
    if fmt.name.startswith("bfp"):
        e = max(e, -127)
        return 2.0 ** (e - int(fmt.elem[3:]) + 2)      # saturation can cost a whole step
    el = ELEMENTS[fmt.elem]
    scale = 2.0 ** max(-127, e - el.emax)
    quantum = 2.0 ** (-el.man_bits if el.is_int else el.emax - el.man_bits) * scale
    return max(quantum / 2, amax - el.max_normal * scale)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(FMTS), arrays(np.float32, 64, elements=finite))
def test_properties(fmt, x) -> None:
    q = quantize_block(x, fmt)
    assert np.array_equal(quantize_block(q, fmt), q)                 # idempotent
    assert np.array_equal(quantize_block(-x, fmt), -q)               # odd symmetry
    for b, qq in zip(x.reshape(-1, fmt.block), q.reshape(-1, fmt.block), strict=True):
        assert np.array_equal(quantize_block(b, fmt), qq)            # blocks independent
        amax = float(np.abs(b).max())
        if amax == 0:
            assert not qq.any()
            continue
        err = np.max(np.abs(qq.astype(np.float64) - b))
        assert err <= error_bound(fmt, amax) * (1 + 1e-12)


def test_subnormal_blocks_flush_within_the_smallest_step() -> None:
    """Found by the property test: float32 subnormals sit below the 8-bit
    shared exponent's floor (2^-127), so BFP rounds them on that floor's
    grid (here to zero) and MX likewise, never raising or overflowing."""
    x = np.full(64, 1e-45, np.float32)
    for fmt in FMTS:
        q = quantize_block(x, fmt)
        assert np.all(np.isfinite(q))
        assert np.max(np.abs(q.astype(np.float64) - x)) <= error_bound(fmt, 1.4e-45)
    assert not quantize_block(x, bfp(8, 16)).any()


magnitudes = st.one_of(st.just(0.0), st.floats(2.0**-10, 100.0, width=32),
                       st.floats(-100.0, -(2.0**-10), width=32))


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, 32, elements=magnitudes), st.integers(-20, 20))
def test_power_of_two_scaling_commutes(x, k) -> None:
    """Away from the shared exponent's limits, scaling by 2^k commutes with rounding."""
    for fmt in (bfp(8, 16), bfp(4, 32), mx("mxfp6e3m2"), mx("mxfp4"), mx("mxint8")):
        a = quantize_block(x * np.float32(2.0**k), fmt)
        assert np.array_equal(a, quantize_block(x, fmt) * np.float32(2.0**k))


def test_bfp_decompose_roundtrip(rng) -> None:
    x = quantize_block(_data(rng, 64), bfp(8, 16))
    m, e = bfp_decompose(x, 8, 16)
    assert np.abs(m).max() <= 127 and e.shape == (4,)
    back = m.reshape(4, 16) * np.ldexp(1.0, e - 6)[:, None]
    assert np.array_equal(back.reshape(-1), x.astype(np.float64))
