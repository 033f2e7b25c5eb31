"""Integer-only kernels (`--quant w8a8-int`; the ops of llmc/ir/ops/intops.py),
bit-exact with the IR: integers are held in int64 between loads and the
store, rounding is the IR's "half up" (rshift: floor((a + 2^(s-1)) / 2^s)),
divisions of signed numbers are floor divisions written out (Triton's `//`
truncates), and every result saturates to its dtype's symmetric range.

int_gemm: int8 x (M, K) @ int8 w (N, K).T -> int32 on the tensor cores
(tl.dot, int32 accumulator), or packed int4 w with u8 group scales (w4a8:
each group's int32 partial product times its scale), then the `requant`
that follows `int_linear` as the epilogue: clamp(rshift(acc * mult, SHIFT)),
mult per output channel or one for all.

int_rms_norm: ms = sum(x^2) // C + eps, r = isqrt(ms << 2 RBITS) (Newton from
above, started at the float64 root + 1), y = round(x * g * 2^RBITS / (r * 2^SHIFT));
with CENTRED it is int_layer_norm: x minus round(sum(x) / C) first, + b after.

int_attention: I-BERT integer attention (Kim et al. 2021): scores q k^T
(int8 tl.dot, int32) to fixed point xf = rshift(acc * S_MULT, S_SHIFT);
softmax by i-exp of xf - rowmax, p = (e * (2^62 // sum e)) >> (62 - PROB_BITS);
o = rshift((p v) * O_MULT, O_SHIFT). The row max, the row sum and p v need
the whole row, so the kernel makes three passes over the keys (max, sum,
output) instead of an online softmax; GQA rows as in attention.py.

The elementwise integer groups (requant, cast, add, mul, neg, the rotate-half
concat, int_silu, dequantize_int) are generated per group after these
(llmc/backends/gpu/intk.py) and use the helpers below.
"""

import triton
import triton.language as tl


@triton.jit
def _rshift(a, s):
    # floor((a + 2^(s-1)) / 2^s) for s > 0, a for s == 0 (int64 a, s)
    half = tl.where(s > 0, (a * 0 + 1) << tl.maximum(s - 1, 0), 0)
    return (a + half) >> s


@triton.jit
def _floordiv(a, b):
    # floor(a / b) for b > 0, a of either sign
    return tl.where(a >= 0, a // b, -((b - 1 - a) // b))


@triton.jit
def _i_exp(x, x0, b_q, c_q):
    # I-BERT i-exp of x <= 0 with x0 = floor(-ln2 * 2^frac): x = q x0 + r, e^r ~ (r + b)^2 + c
    x = tl.maximum(x, 30 * x0)
    q = x // x0                                     # both <= 0: truncation is floor
    r = x - q * x0
    return ((r + b_q) * (r + b_q) + c_q) >> q


@triton.jit
def int_gemm(x_ptr, w_ptr, gs_ptr, m_ptr, y_ptr, M, N, K, KP, s_xm, s_m,
             INT4: tl.constexpr, GROUP: tl.constexpr, REQUANT: tl.constexpr,
             SHIFT: tl.constexpr, LO: tl.constexpr, HI: tl.constexpr,
             BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    # x (M, K) int8 row stride s_xm; w (N, KP) int8, or INT4: u8 (N, KP / 2) int4x2_lane32
    # with u8 group scales gs (N, KP / GROUP) (GROUP == BLOCK_K: one scale per K tile);
    # m (N,) or (1,) int32 multipliers (stride s_m 1 or 0)
    rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_M, BLOCK_N), tl.int64 if GROUP > 0 else tl.int32)
    for k0 in range(0, K, BLOCK_K):
        rk = k0 + tl.arange(0, BLOCK_K)
        k_ok = rk < K
        x = tl.load(x_ptr + rm[:, None] * s_xm + rk[None, :],
                    mask=(rm[:, None] < M) & k_ok[None, :], other=0)        # (BLOCK_M, BLOCK_K)
        w_ok = (rn[None, :] < N) & k_ok[:, None]
        if INT4:
            # element k of a row: byte 16 * (k // 32) + k % 16, low nibble for k % 32 < 16
            byte = tl.load(w_ptr + rn[None, :] * (KP // 2) + (rk[:, None] // 32) * 16
                           + rk[:, None] % 16, mask=w_ok, other=0).to(tl.int32)
            nib = tl.where(rk[:, None] % 32 < 16, byte & 0xF, (byte >> 4) & 0xF)
            w = (nib - ((nib & 8) << 1)).to(tl.int8)                     # sign-extend -8..7
        else:
            w = tl.load(w_ptr + rn[None, :] * KP + rk[:, None], mask=w_ok, other=0)
        part = tl.dot(x, w, out_dtype=tl.int32)                          # (BLOCK_M, BLOCK_N)
        if GROUP > 0:
            gs = tl.load(gs_ptr + rn * (KP // GROUP) + k0 // GROUP, mask=rn < N, other=0)
            acc += part.to(tl.int64) * gs.to(tl.int64)[None, :]
        else:
            acc += part
    out_ok = (rm[:, None] < M) & (rn[None, :] < N)
    y = acc.to(tl.int64)
    if REQUANT:
        m = tl.load(m_ptr + rn * s_m, mask=rn < N, other=0).to(tl.int64)
        y = _rshift(y * m[None, :], SHIFT + y * 0)
        y = tl.minimum(tl.maximum(y, LO), HI)
    tl.store(y_ptr + rm[:, None] * N + rn[None, :], y.to(y_ptr.dtype.element_ty), mask=out_ok)


@triton.jit
def int_rms_norm(x_ptr, g_ptr, b_ptr, y_ptr, R, D, s_x, eps,
                 RBITS: tl.constexpr, SHIFT: tl.constexpr, LO: tl.constexpr, HI: tl.constexpr,
                 CENTRED: tl.constexpr, HAS_B: tl.constexpr,
                 BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr):
    # x (R, D) row stride s_x; g, b (D,) int32; CENTRED: int_layer_norm (x minus its
    # rounded mean, + b), else int_rms_norm
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_D)
    ok = (rows[:, None] < R) & (cols[None, :] < D)
    d = tl.load(x_ptr + rows[:, None] * s_x + cols[None, :], mask=ok, other=0).to(tl.int64)
    g = tl.load(g_ptr + cols, mask=cols < D, other=0).to(tl.int64)
    if CENTRED:
        total = tl.sum(d, axis=1)
        mean = _floordiv(2 * total + D, 2 * D + total * 0)               # round half up
        d = tl.where(ok, d - mean[:, None], 0)
    ms = tl.sum(d * d, axis=1) // D + eps                            # (BLOCK_R,), >= 0
    n = tl.maximum(ms << (2 * RBITS), 1)
    r = tl.sqrt(n.to(tl.float64)).to(tl.int64) + 1                   # above isqrt(n)
    for _ in tl.static_range(4):                                      # Newton, from above
        nxt = (r + n // r) // 2
        r = tl.where(nxt < r, nxt, r)
    r = tl.maximum(r, 1)
    num = (d * g[None, :]) << RBITS
    den = (r << SHIFT)[:, None]
    y = _floordiv(2 * num + den, 2 * den)                             # round half up
    if HAS_B:
        y = y + tl.load(b_ptr + cols, mask=cols < D, other=0).to(tl.int64)[None, :]
    y = tl.minimum(tl.maximum(y, LO), HI)
    tl.store(y_ptr + rows[:, None] * D + cols[None, :], y.to(y_ptr.dtype.element_ty), mask=ok)


@triton.jit
def _int_scores(q, k_ptr, b, g, n, d, s_kb, s_kg, s_kn, ok, S_MULT: tl.constexpr,
                S_SHIFT: tl.constexpr):
    # fixed-point scores rshift(q k^T * S_MULT, S_SHIFT) of one key tile (int64)
    k = tl.load(k_ptr + b * s_kb + g * s_kg + n * s_kn + d, mask=ok, other=0)
    acc = tl.dot(q, k, out_dtype=tl.int32).to(tl.int64)
    return _rshift(acc * S_MULT, S_SHIFT + acc * 0)


@triton.jit
def _int_tile(q, k_ptr, mask_ptr, b, g, t, row_ok, n, d, d_ok, T, TK, s_kb, s_kg, s_kn, s_mt,
              S_MULT: tl.constexpr, S_SHIFT: tl.constexpr, CAUSAL: tl.constexpr,
              HAS_MASK: tl.constexpr):
    # the scores of rows (t, row_ok) against key tile n, and which of them are visible
    n_ok = n < TK
    xf = _int_scores(q, k_ptr, b, g, n[None, :], d[:, None], s_kb, s_kg, s_kn,
                     n_ok[None, :] & d_ok[:, None], S_MULT, S_SHIFT)
    visible = row_ok[:, None] & n_ok[None, :]
    if CAUSAL:
        visible = visible & (n[None, :] <= t[:, None] + (TK - T))
    if HAS_MASK:
        keep = tl.load(mask_ptr + t[:, None] * s_mt + n[None, :], mask=visible, other=0)
        visible = visible & (keep != 0)
    return xf, visible


@triton.jit
def int_attention(q_ptr, k_ptr, v_ptr, o_ptr, mask_ptr, G, T, TK, HPG, D,
                  s_qb, s_qh, s_qt, s_kb, s_kg, s_kn, s_vb, s_vg, s_vn, s_mt,
                  S_MULT: tl.constexpr, S_SHIFT: tl.constexpr, O_MULT: tl.constexpr,
                  O_SHIFT: tl.constexpr, X0: tl.constexpr, B_Q: tl.constexpr,
                  C_Q: tl.constexpr, PROB_BITS: tl.constexpr, LO: tl.constexpr,
                  HI: tl.constexpr, CAUSAL: tl.constexpr, HAS_MASK: tl.constexpr,
                  BLOCK_Q: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr):
    # q (B, H, T, D), k, v (B, G, TK, D) int8; mask (T or 1, TK) uint8; o (B, H, T, D)
    bg = tl.program_id(1)
    b = bg // G
    g = bg % G
    rows = tl.program_id(0) * BLOCK_Q + tl.arange(0, BLOCK_Q)   # (query head, position)
    hl = rows // T
    t = rows % T
    h = g * HPG + hl
    row_ok = rows < HPG * T
    d = tl.arange(0, BLOCK_D)
    d_ok = d < D
    q = tl.load(q_ptr + b * s_qb + h[:, None] * s_qh + t[:, None] * s_qt + d[None, :],
                mask=row_ok[:, None] & d_ok[None, :], other=0)
    LOW: tl.constexpr = -(2 ** 61)                    # below every score (the IR's int64 min // 4)

    # pass 1: the row max of the visible scores
    m_i = tl.full((BLOCK_Q,), LOW, tl.int64)
    for k0 in range(0, TK, BLOCK_K):
        n = k0 + tl.arange(0, BLOCK_K)
        xf, visible = _int_tile(q, k_ptr, mask_ptr, b, g, t, row_ok, n, d, d_ok, T, TK,
                                s_kb, s_kg, s_kn, s_mt, S_MULT, S_SHIFT, CAUSAL, HAS_MASK)
        m_i = tl.maximum(m_i, tl.max(tl.where(visible, xf, LOW), axis=1))
    # pass 2: the sum of i-exp(xf - max); one reciprocal per row
    total = tl.zeros((BLOCK_Q,), tl.int64)
    for k0 in range(0, TK, BLOCK_K):
        n = k0 + tl.arange(0, BLOCK_K)
        xf, visible = _int_tile(q, k_ptr, mask_ptr, b, g, t, row_ok, n, d, d_ok, T, TK,
                                s_kb, s_kg, s_kn, s_mt, S_MULT, S_SHIFT, CAUSAL, HAS_MASK)
        e = tl.where(visible, _i_exp(tl.where(visible, xf - m_i[:, None], 0), X0, B_Q, C_Q), 0)
        total += tl.sum(e, axis=1)
    factor = (1 << 62) // tl.maximum(total, 1)
    # pass 3: probabilities (PROB_BITS unsigned bits) times v, int64
    acc = tl.zeros((BLOCK_Q, BLOCK_D), tl.int64)
    for k0 in range(0, TK, BLOCK_K):
        n = k0 + tl.arange(0, BLOCK_K)
        xf, visible = _int_tile(q, k_ptr, mask_ptr, b, g, t, row_ok, n, d, d_ok, T, TK,
                                s_kb, s_kg, s_kn, s_mt, S_MULT, S_SHIFT, CAUSAL, HAS_MASK)
        e = tl.where(visible, _i_exp(tl.where(visible, xf - m_i[:, None], 0), X0, B_Q, C_Q), 0)
        p = tl.minimum((e * factor[:, None]) >> (62 - PROB_BITS), 2 ** PROB_BITS - 1)
        v = tl.load(v_ptr + b * s_vb + g * s_vg + n[:, None] * s_vn + d[None, :],
                    mask=(n < TK)[:, None] & d_ok[None, :], other=0).to(tl.int64)
        acc += tl.sum(p[:, :, None] * v[None, :, :], axis=1)    # exact: no float dot
    y = _rshift(acc * O_MULT, O_SHIFT + acc * 0)
    y = tl.minimum(tl.maximum(y, LO), HI)
    H = G * HPG
    tl.store(o_ptr + ((b * H + h[:, None]) * T + t[:, None]) * D + d[None, :],
             y.to(o_ptr.dtype.element_ty), mask=row_ok[:, None] & d_ok[None, :])
