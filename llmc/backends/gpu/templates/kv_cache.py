"""The K/V cache: block quantisation and the cache write.

block_quantize rounds (B, G, T, D) rows to a block format with integer
mantissas, BFP `bfp{p}b{n}` or MXINT8 (llmc/ir/formats.py defines both; MXINT8
is BFP with p = 8 and blocks of 32): per block of KV_BLOCK channels the
shared exponent E = clamp(floor(log2 max|x|), -127, 127) and

    m = clamp(rint(x / 2^(E - SHIFT)), -TOP, TOP),  SHIFT = p - 2, TOP = 2^(p-1) - 1

stored as int8 m (B, G, T, D) and int8 E (B, G, T, D / KV_BLOCK).

kv_write copies rows src (B, G, TN, C) into dst (B, G, S, C) at positions
idx (TN,) (op `index_copy` on dim 2, done in place on the cache).
"""

import triton
import triton.language as tl


@triton.jit
def block_quantize(x_ptr, m_ptr, e_ptr, R, G, T, s_xb, s_xg, s_xt,
                   D: tl.constexpr, KV_BLOCK: tl.constexpr, SHIFT: tl.constexpr,
                   TOP: tl.constexpr, BLOCK_R: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)    # r = (b * G + g) * T + t
    b = rows // (G * T)
    g = (rows // T) % G
    t = rows % T
    ok = rows < R
    d = tl.arange(0, D)
    x = tl.load(x_ptr + b[:, None] * s_xb + g[:, None] * s_xg + t[:, None] * s_xt + d[None, :],
                mask=ok[:, None], other=0.0).to(tl.float32)
    NB: tl.constexpr = D // KV_BLOCK
    amax = tl.max(tl.abs(tl.reshape(x, (BLOCK_R, NB, KV_BLOCK))), axis=2)   # (BLOCK_R, NB)
    # floor(log2 amax) read off the float's exponent field (0 -> -127, clamped)
    e = ((amax.to(tl.int32, bitcast=True) >> 23) & 0xFF) - 127
    e = tl.minimum(tl.maximum(e, -127), 127)
    # y = x / 2^(E - SHIFT), the power of two applied in two halves: 2^(SHIFT + 127)
    # overflows float32 for an all-zero (or subnormal) block
    up = SHIFT - e
    half = up // 2
    y = tl.reshape(x, (BLOCK_R, NB, KV_BLOCK)) * tl.exp2(half.to(tl.float32))[:, :, None]
    y = y * tl.exp2((up - half).to(tl.float32))[:, :, None]
    y = (y + 12582912.0) - 12582912.0                  # round half to even (|y| < 2^22)
    m = tl.minimum(tl.maximum(y, -TOP), TOP).to(tl.int8)
    tl.store(m_ptr + rows[:, None] * D + d[None, :], tl.reshape(m, (BLOCK_R, D)),
             mask=ok[:, None])
    nb = tl.arange(0, NB)
    tl.store(e_ptr + rows[:, None] * NB + nb[None, :], e.to(tl.int8), mask=ok[:, None])


@triton.jit
def kv_write(src_ptr, dst_ptr, idx_ptr, R, G, TN, S, C, s_sb, s_sg, s_st,
             BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)    # r = (b * G + g) * TN + j
    bg = rows // TN
    j = rows % TN
    b = bg // G
    g = bg % G
    ok = rows < R
    pos = tl.load(idx_ptr + j, mask=ok, other=0)
    for c0 in range(0, C, BLOCK_C):
        c = c0 + tl.arange(0, BLOCK_C)
        m = ok[:, None] & (c[None, :] < C)
        v = tl.load(src_ptr + b[:, None] * s_sb + g[:, None] * s_sg + j[:, None] * s_st
                    + c[None, :], mask=m, other=0)
        tl.store(dst_ptr + (bg[:, None] * S + pos[:, None]) * C + c[None, :],
                 v.to(dst_ptr.dtype.element_ty), mask=m)
