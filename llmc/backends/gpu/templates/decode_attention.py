"""Decode attention over the KV cache, split along the keys (split-K, as in
Flash-Decoding: Dao, Haziza, Massa, Sizov 2023): a decode step has one query
per head, so one program per K/V head leaves most SMs idle; instead SPLITS
programs per K/V head each stream one chunk of the visible keys with the
online softmax and write a partial (running max m, sum l, unnormalised
output acc), and `decode_attention_reduce` merges the SPLITS partials with
the same rescaling (SPLITS = 1: the output is written directly).

Only keys a query may see are read: key j of row r is visible when

    j <= anchor_r                                  (causal / the cache mask)
    and mask[t, j]                                 (HAS_MASK)
    and (j > anchor_r - window or j < sinks)       (WINDOW: sliding window,
                                                    attention sinks)

where anchor_r is the row's last visible key (the current position in
decode): given per query position by the runtime when there is a mask,
t + TK - T under a causal mask, else TK - 1. The keys [lo, hi) between the
lowest window start and the highest anchor are cut into SPLITS chunks of
whole BLOCK_K tiles; the sink keys below lo go to split 0.

Rows are (query head in the K/V group, position) pairs, r = hl * T + t, so
the H/G query heads reading one K/V head share one pass over it (GQA).
A block-quantised cache (BFP / MXINT8: int8 mantissas, one int8 exponent
per KV_BLOCK channels, value = m * 2^(E - KV_SHIFT)) is dequantised in
registers after the load (KV_BLOCK = 0: a float cache).

PRECISION is tl.dot's input_precision: "ieee" for float32 activations (full
float32 products, as the IR interpreter computes), "tf32" otherwise.

    q (B, H, T, D)   k, v (B, G, TK, D)   mask (T or 1, TK)   anchor (T or 1,)
    partials: m, l (B*G, SPLITS, BLOCK_Q)   acc (B*G, SPLITS, BLOCK_Q, BLOCK_D) f32
    o (B, H, T, D)
"""

import triton
import triton.language as tl

from llmc.backends.gpu.templates._kv_tile import _anchors, _attend_tile


@triton.jit
def _attend(q, m_i, l_i, acc, k_lo, k_hi, anchor, t, row_ok, d, d_ok, b, g,
            k_ptr, v_ptr, ke_ptr, ve_ptr, mask_ptr, scale, window, sinks,
            s_kb, s_kg, s_kn, s_vb, s_vg, s_vn, e_kb, e_kg, e_kn, e_vb, e_vg, e_vn, s_mt,
            HAS_MASK: tl.constexpr, WINDOW: tl.constexpr,
            KV_BLOCK: tl.constexpr, KV_SHIFT: tl.constexpr,
            BLOCK_K: tl.constexpr, DOT_F32: tl.constexpr, PRECISION: tl.constexpr):
    # the online softmax over keys [k_lo, k_hi), continuing from (m_i, l_i, acc)
    for k0 in range(k_lo, k_hi, BLOCK_K):
        n = k0 + tl.arange(0, BLOCK_K)
        n_ok = n < k_hi
        visible = row_ok[:, None] & n_ok[None, :] & (n[None, :] <= anchor[:, None])
        if WINDOW:
            visible = visible & ((n[None, :] > anchor[:, None] - window)
                                 | (n[None, :] < sinks))
        if HAS_MASK:
            keep = tl.load(mask_ptr + t[:, None] * s_mt + n[None, :],
                           mask=row_ok[:, None] & n_ok[None, :], other=0)
            visible = visible & (keep != 0)
        m_i, l_i, acc = _attend_tile(q, m_i, l_i, acc, visible, n, n_ok, d, d_ok, b, g,
                                     k_ptr, v_ptr, ke_ptr, ve_ptr, scale,
                                     s_kb, s_kg, s_kn, s_vb, s_vg, s_vn,
                                     e_kb, e_kg, e_kn, e_vb, e_vg, e_vn,
                                     KV_BLOCK, KV_SHIFT, DOT_F32, PRECISION)
    return m_i, l_i, acc


@triton.jit
def decode_attention(q_ptr, k_ptr, v_ptr, ke_ptr, ve_ptr, mask_ptr, anchor_ptr, o_ptr,
                     pm_ptr, pl_ptr, pacc_ptr,
                     G, T, TK, HPG, D, scale, window, sinks,
                     s_qb, s_qh, s_qt, s_kb, s_kg, s_kn, s_vb, s_vg, s_vn,
                     e_kb, e_kg, e_kn, e_vb, e_vg, e_vn, s_mt, s_at,
                     CAUSAL: tl.constexpr, HAS_MASK: tl.constexpr, WINDOW: tl.constexpr,
                     KV_BLOCK: tl.constexpr, KV_SHIFT: tl.constexpr, SPLITS: tl.constexpr,
                     BLOCK_Q: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr,
                     DOT_F32: tl.constexpr, PRECISION: tl.constexpr):
    split = tl.program_id(0)
    bg = tl.program_id(1)
    b = bg // G
    g = bg % G
    rows = tl.arange(0, BLOCK_Q)                                  # (query head, position)
    hl = rows // T
    t = rows % T
    h = g * HPG + hl
    row_ok = rows < HPG * T
    d = tl.arange(0, BLOCK_D)
    d_ok = d < D

    anchor = _anchors(anchor_ptr, t, row_ok, s_at, T, TK, CAUSAL, HAS_MASK, BLOCK_Q)
    hi = tl.max(tl.where(row_ok, anchor, -1)) + 1                 # keys past every anchor: unread
    lo = 0
    if WINDOW:
        lo = tl.maximum(tl.min(tl.where(row_ok, anchor, TK)) - window + 1, 0)
    # this program's chunk of [lo, hi): whole BLOCK_K tiles
    chunk = tl.cdiv(tl.cdiv(hi - lo, SPLITS), BLOCK_K) * BLOCK_K
    k_lo = lo + split * chunk
    k_hi = tl.minimum(k_lo + chunk, hi)

    q = tl.load(q_ptr + b * s_qb + h[:, None] * s_qh + t[:, None] * s_qt + d[None, :],
                mask=row_ok[:, None] & d_ok[None, :], other=0.0)
    if DOT_F32:
        q = q.to(tl.float32)
    m_i = tl.full((BLOCK_Q,), float("-inf"), tl.float32)        # running max
    l_i = tl.zeros((BLOCK_Q,), tl.float32)                        # running sum of exp
    acc = tl.zeros((BLOCK_Q, BLOCK_D), tl.float32)                # unnormalised output
    m_i, l_i, acc = _attend(q, m_i, l_i, acc, k_lo, k_hi, anchor, t, row_ok, d, d_ok, b, g,
                            k_ptr, v_ptr, ke_ptr, ve_ptr, mask_ptr, scale, window, sinks,
                            s_kb, s_kg, s_kn, s_vb, s_vg, s_vn,
                            e_kb, e_kg, e_kn, e_vb, e_vg, e_vn, s_mt,
                            HAS_MASK, WINDOW, KV_BLOCK, KV_SHIFT, BLOCK_K, DOT_F32, PRECISION)
    if WINDOW:
        if split == 0:                                            # the sinks below the window
            m_i, l_i, acc = _attend(q, m_i, l_i, acc, 0, tl.minimum(sinks, lo), anchor, t,
                                    row_ok, d, d_ok, b, g,
                                    k_ptr, v_ptr, ke_ptr, ve_ptr, mask_ptr, scale, window,
                                    sinks, s_kb, s_kg, s_kn, s_vb, s_vg, s_vn,
                                    e_kb, e_kg, e_kn, e_vb, e_vg, e_vn, s_mt,
                                    HAS_MASK, WINDOW, KV_BLOCK, KV_SHIFT, BLOCK_K, DOT_F32, PRECISION)

    if SPLITS == 1:
        o = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]
        H = G * HPG
        tl.store(o_ptr + ((b * H + h[:, None]) * T + t[:, None]) * D + d[None, :],
                 o.to(o_ptr.dtype.element_ty), mask=row_ok[:, None] & d_ok[None, :])
    else:
        part = (bg * SPLITS + split) * BLOCK_Q + rows             # this split's partial rows
        tl.store(pm_ptr + part, m_i)
        tl.store(pl_ptr + part, l_i)
        tl.store(pacc_ptr + part[:, None] * BLOCK_D + d[None, :], acc)


@triton.jit
def decode_attention_reduce(pm_ptr, pl_ptr, pacc_ptr, o_ptr, G, T, HPG, D,
                            SPLITS: tl.constexpr, BLOCK_Q: tl.constexpr,
                            BLOCK_D: tl.constexpr):
    # merge the SPLITS partials of one (batch row, K/V head): the online
    # softmax's rescaling, one split at a time
    bg = tl.program_id(0)
    b = bg // G
    g = bg % G
    rows = tl.arange(0, BLOCK_Q)
    d = tl.arange(0, BLOCK_D)
    m_i = tl.full((BLOCK_Q,), float("-inf"), tl.float32)
    l_i = tl.zeros((BLOCK_Q,), tl.float32)
    acc = tl.zeros((BLOCK_Q, BLOCK_D), tl.float32)
    for split in range(SPLITS):
        part = (bg * SPLITS + split) * BLOCK_Q + rows
        m_s = tl.load(pm_ptr + part)
        l_s = tl.load(pl_ptr + part)
        acc_s = tl.load(pacc_ptr + part[:, None] * BLOCK_D + d[None, :])
        m_new = tl.maximum(m_i, m_s)
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)      # no key seen by any split yet
        alpha = tl.exp(m_i - m_safe)
        beta = tl.exp(m_s - m_safe)
        l_i = l_i * alpha + l_s * beta
        acc = acc * alpha[:, None] + acc_s * beta[:, None]
        m_i = m_new
    o = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]
    hl = rows // T
    t = rows % T
    h = g * HPG + hl
    ok = (rows < HPG * T)[:, None] & (d < D)[None, :]
    H = G * HPG
    tl.store(o_ptr + ((b * H + h[:, None]) * T + t[:, None]) * D + d[None, :],
             o.to(o_ptr.dtype.element_ty), mask=ok)
