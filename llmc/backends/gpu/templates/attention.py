"""Attention, FlashAttention-style (Dao et al. 2022; FlashAttention-2's loop
order, Dao 2023): one program owns BLOCK_Q query rows and streams the keys
in tiles of BLOCK_K, keeping the running max m_i, the running sum l_i and
the unnormalised output in registers (online softmax), so the T x Tk score
matrix never exists. The same kernel serves prefill (causal) and decode
(one query per head against the KV cache, masked to the written positions).

Grouped-query attention (H query heads share G K/V heads): the rows of a
tile are (query head in the group, position) pairs, r = hl * T + t, so in
decode the H/G heads reading one K/V head share one pass over the cache.

The K/V cache may be block-quantised (BFP / MXINT8): int8 mantissas m with
one int8 exponent E per KV_BLOCK channels, value = m * 2^(E - KV_SHIFT);
tiles are dequantised in registers after the load (KV_BLOCK = 0: float).

Sliding window and attention sinks (WINDOW; Mistral, Jiang et al. 2023;
StreamingLLM, Xiao et al. 2023): a row also drops the keys j <= anchor -
window other than the first `sinks`, anchor being its last visible key
(t + TK - T under the causal mask; given per position in `anchor` when
there is a mask), and key tiles wholly before every row's window are
skipped when there are no sinks.

PRECISION is tl.dot's input_precision: "ieee" for float32 activations (full
float32 products, as the IR interpreter computes), "tf32" otherwise.

    q (B, H, T, D)   k, v (B, G, TK, D)   mask (T or 1, TK) bool   o (B, H, T, D)
    anchor (T or 1,) int32 (WINDOW with a mask)
"""

import triton
import triton.language as tl

from llmc.backends.gpu.templates._kv_tile import _anchors, _attend_tile


@triton.jit
def attention(q_ptr, k_ptr, v_ptr, o_ptr, ke_ptr, ve_ptr, mask_ptr, anchor_ptr,
              G, T, TK, HPG, D, scale, window, sinks,
              s_qb, s_qh, s_qt, s_kb, s_kg, s_kn, s_vb, s_vg, s_vn,
              e_kb, e_kg, e_kn, e_vb, e_vg, e_vn, s_mt, s_at,
              CAUSAL: tl.constexpr, HAS_MASK: tl.constexpr, WINDOW: tl.constexpr,
              KV_BLOCK: tl.constexpr, KV_SHIFT: tl.constexpr,
              BLOCK_Q: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr,
              DOT_F32: tl.constexpr, PRECISION: tl.constexpr):
    bg = tl.program_id(1)
    b = bg // G
    g = bg % G
    rows = tl.program_id(0) * BLOCK_Q + tl.arange(0, BLOCK_Q)   # (query head, position)
    hl = rows // T
    t = rows % T
    h = g * HPG + hl                                              # the query head
    row_ok = rows < HPG * T
    d = tl.arange(0, BLOCK_D)
    d_ok = d < D

    q = tl.load(q_ptr + b * s_qb + h[:, None] * s_qh + t[:, None] * s_qt + d[None, :],
                mask=row_ok[:, None] & d_ok[None, :], other=0.0)
    if DOT_F32:
        q = q.to(tl.float32)
    m_i = tl.full((BLOCK_Q,), float("-inf"), tl.float32)       # running max
    l_i = tl.zeros((BLOCK_Q,), tl.float32)                       # running sum of exp
    acc = tl.zeros((BLOCK_Q, BLOCK_D), tl.float32)               # unnormalised output

    # keys past the tile's last query are never visible under a causal mask
    hi = TK
    if CAUSAL:
        first = tl.program_id(0) * BLOCK_Q
        last = tl.minimum(first + BLOCK_Q, HPG * T) - 1
        if first // T == last // T:
            hi = tl.minimum(TK, last % T + 1 + TK - T)
    lo = 0
    if WINDOW:
        anchor = _anchors(anchor_ptr, t, row_ok, s_at, T, TK, CAUSAL, HAS_MASK, BLOCK_Q)
        # without sinks, the tiles before every row's window are skipped
        a_min = tl.min(tl.where(row_ok, anchor, TK))
        lo = tl.where(sinks == 0, tl.maximum(a_min - window + 1, 0) // BLOCK_K * BLOCK_K, 0)

    for k0 in range(lo, hi, BLOCK_K):
        n = k0 + tl.arange(0, BLOCK_K)
        n_ok = n < TK
        visible = row_ok[:, None] & n_ok[None, :]
        if CAUSAL:
            visible = visible & (n[None, :] <= t[:, None] + (TK - T))
        if HAS_MASK:
            keep = tl.load(mask_ptr + t[:, None] * s_mt + n[None, :],
                           mask=row_ok[:, None] & n_ok[None, :], other=0)
            visible = visible & (keep != 0)
        if WINDOW:
            visible = visible & ((n[None, :] > anchor[:, None] - window)
                                 | (n[None, :] < sinks))
        m_i, l_i, acc = _attend_tile(q, m_i, l_i, acc, visible, n, n_ok, d, d_ok, b, g,
                                     k_ptr, v_ptr, ke_ptr, ve_ptr, scale,
                                     s_kb, s_kg, s_kn, s_vb, s_vg, s_vn,
                                     e_kb, e_kg, e_kn, e_vb, e_vg, e_vn,
                                     KV_BLOCK, KV_SHIFT, DOT_F32, PRECISION)

    o = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]
    H = G * HPG
    tl.store(o_ptr + ((b * H + h[:, None]) * T + t[:, None]) * D + d[None, :],
             o.to(o_ptr.dtype.element_ty), mask=row_ok[:, None] & d_ok[None, :])
