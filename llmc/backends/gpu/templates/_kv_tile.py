"""Attention helpers that attention.py and decode_attention.py share: each
row's last visible key (`_anchors`) and one K/V tile of the online softmax
(`_attend_tile`, loading tiles with `_load_kv`). The templates import them
from here, and `template` writes this file's functions into each of them in
place of that import, so every generated kernel file stays self-contained.
A block-quantised cache (BFP / MXINT8: int8 mantissas m, one int8 exponent E
per KV_BLOCK channels) is dequantised in registers, value = m * 2^(E -
KV_SHIFT); KV_BLOCK = 0: a float cache."""

import triton
import triton.language as tl


@triton.jit
def _load_kv(ptr, e_ptr, b, g, n, d, s_b, s_g, s_n, e_b, e_g, e_n, ok,
             KV_BLOCK: tl.constexpr, KV_SHIFT: tl.constexpr):
    # one K or V tile, element (n, d) of head g of batch row b, as float32
    x = tl.load(ptr + b * s_b + g * s_g + n * s_n + d, mask=ok, other=0).to(tl.float32)
    if KV_BLOCK > 0:
        e = tl.load(e_ptr + b * e_b + g * e_g + n * e_n + d // KV_BLOCK, mask=ok, other=0)
        x = x * tl.exp2((e.to(tl.int32) - KV_SHIFT).to(tl.float32))
    return x


@triton.jit
def _attend_tile(q, m_i, l_i, acc, visible, n, n_ok, d, d_ok, b, g,
                 k_ptr, v_ptr, ke_ptr, ve_ptr, scale,
                 s_kb, s_kg, s_kn, s_vb, s_vg, s_vn, e_kb, e_kg, e_kn, e_vb, e_vg, e_vn,
                 KV_BLOCK: tl.constexpr, KV_SHIFT: tl.constexpr, DOT_F32: tl.constexpr,
                 PRECISION: tl.constexpr):
    # one step of the online softmax: the keys n (row r sees key j where visible[r, j])
    # folded into the running max m_i, the running sum l_i and the unnormalised acc
    k = _load_kv(k_ptr, ke_ptr, b, g, n[None, :], d[:, None], s_kb, s_kg, s_kn,
                 e_kb, e_kg, e_kn, n_ok[None, :] & d_ok[:, None], KV_BLOCK, KV_SHIFT)
    if not DOT_F32:
        k = k.to(q.dtype)
    s = tl.dot(q, k, input_precision=PRECISION) * scale        # (BLOCK_Q, BLOCK_K) f32
    s = tl.where(visible, s, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(s, axis=1))
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)     # rows with nothing seen yet
    alpha = tl.exp(m_i - m_safe)
    p = tl.exp(s - m_safe[:, None])
    l_i = l_i * alpha + tl.sum(p, axis=1)
    v = _load_kv(v_ptr, ve_ptr, b, g, n[:, None], d[None, :], s_vb, s_vg, s_vn,
                 e_vb, e_vg, e_vn, n_ok[:, None] & d_ok[None, :], KV_BLOCK, KV_SHIFT)
    if not DOT_F32:
        p = p.to(q.dtype)
        v = v.to(q.dtype)
    acc = acc * alpha[:, None] + tl.dot(p, v, input_precision=PRECISION)
    return m_new, l_i, acc


@triton.jit
def _anchors(anchor_ptr, t, row_ok, s_at, T, TK, CAUSAL: tl.constexpr,
             HAS_MASK: tl.constexpr, BLOCK_Q: tl.constexpr):
    # each row's last visible key (what a sliding window counts back from): given
    # per query position with a mask, t + TK - T under the causal mask, else TK - 1
    if HAS_MASK:
        anchor = tl.load(anchor_ptr + t * s_at, mask=row_ok, other=-1).to(tl.int32)
    elif CAUSAL:
        anchor = t + TK - T
    else:
        anchor = tl.zeros((BLOCK_Q,), tl.int32) + TK - 1
    return anchor
