"""Sparse attention patterns and FlashAttention's tiled form as explicit ops.

Sparse attention (optional attributes of `attention`, and of the tiled ops):

  window, sinks   streaming heads (StreamingLLM, Xiao et al. 2023, arXiv
                  2309.17453; LServe, Yang et al. 2025, arXiv 2502.14866):
                  a query keeps the keys within `window` of its anchor and
                  the first `sinks` keys. The anchor of query row i is the
                  last key it may see (causal and mask): i + Tk - Tq under a
                  causal mask; in decode with a KV-cache mask, the current
                  position.
  block_size,     block-sparse attention with block-level selection (as in
  block_topk      MInference, Jiang et al. 2024, and LServe): queries and keys
                  are cut into blocks of `block_size`; each query block keeps
                  `block_topk` key blocks, ranked by mean-pooled q . k, always
                  including the first visible block (sink) and the blocks of
                  its rows' anchors (local), then attends within them.

FlashAttention (Dao et al. 2022, arXiv 2205.14135, Algorithm 1) as IR:

  %o0, %l0, %m0 = flash_init(%q, %v)              O = 0, l = 0, m = -inf in HBM
  %k_j = slice(%k) {dim=2, ...}  %v_j = ...       key/value tile j (Bc keys)
  %o1, %l1, %m1 = flash_step(%q, %k_j, %v_j, %o0, %l0, %m0[, %mask][, %blocks])
  ...                                             one step per key tile
  the last step's o is the attention output.

Each step is FA1's outer-loop iteration: it loads K_j, V_j once, and for
every query tile of `block_q` rows that can see a key of the tile it reads
Q_i, O_i, l_i, m_i from HBM, updates them with the online softmax and writes
them back. Its cost is that traffic, so a tiled graph's bytes follow FA1's
Theta(N^2 d^2 / M) against standard attention's Theta(N d + N^2)
(`naive_attention_cost`). Rows that can see no key at all come out 0 (the
untiled op gives NaN there).
"""

from __future__ import annotations

import numpy as np

from llmc.errors import IRError
from llmc.ir import dtypes
from llmc.ir.ops.nn import attention_pairs
from llmc.ir.ops.registry import Cost, Gemm, VectorWork, define
from llmc.ir.types import TensorType

SPARSE_ATTRS = ("window", "sinks", "block_size", "block_topk")
_F32 = dtypes.f32


def check_sparse_attrs(attrs) -> None:  # noqa: ANN001
    """IRError unless the sparse-attention attributes present are consistent."""
    def positive(name: str) -> None:
        v = attrs.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise IRError(f"attention: {name} must be a positive integer, got {v!r}")

    for name in ("window", "block_size", "block_topk"):
        positive(name)
    sinks = attrs.get("sinks")
    if sinks is not None and (not isinstance(sinks, int) or sinks < 0):
        raise IRError(f"attention: sinks must be a non-negative integer, got {sinks!r}")
    if sinks and attrs.get("window") is None:
        raise IRError("attention: sinks need a window (streaming = sinks + local window)")
    if ("block_size" in attrs) != ("block_topk" in attrs):
        raise IRError("attention: block_size and block_topk go together")


# ---- which (query, key) pairs are kept: numpy, shared by every form -----------


def visibility(tq: int, tk: int, causal: bool, mask: np.ndarray | None) -> np.ndarray:
    """Bool (..., Tq, Tk): causal (bottom-right aligned) and mask (bool keeps
    True; a float mask hides -inf)."""
    vis = np.ones((tq, tk), dtype=bool)
    if causal:
        vis = np.arange(tk)[None, :] <= np.arange(tq)[:, None] + (tk - tq)
    if mask is not None:
        vis = vis & (mask if mask.dtype == np.bool_ else mask > -np.inf)
    return vis


def anchors(vis: np.ndarray) -> np.ndarray:
    """(..., Tq): the last visible key of each row, -1 where none is."""
    tk = vis.shape[-1]
    last = tk - 1 - np.argmax(vis[..., ::-1], axis=-1)
    return np.where(vis.any(axis=-1), last, -1)


def pattern_visibility(tq: int, tk: int, attrs, mask: np.ndarray | None) -> np.ndarray:  # noqa: ANN001
    """visibility() narrowed to the streaming pattern (sinks + window), if any."""
    vis = visibility(tq, tk, attrs["causal"], mask)
    window = attrs.get("window")
    if window is None:
        return vis
    j = np.arange(tk)
    near = j > anchors(vis)[..., None] - window
    return vis & (near | (j < attrs.get("sinks", 0)))


def _pool(x: np.ndarray, block: int) -> np.ndarray:
    """(B, H, T, D) -> (B, H, ceil(T/block), D) block means."""
    t = x.shape[2]
    starts = np.arange(0, t, block)
    counts = (np.minimum(starts + block, t) - starts).astype(x.dtype)
    return np.add.reduceat(x, starts, axis=2) / counts[:, None]


def _block_any(vis: np.ndarray, block: int) -> np.ndarray:
    rows = np.maximum.reduceat(vis, np.arange(0, vis.shape[-2], block), axis=-2)
    return np.maximum.reduceat(rows, np.arange(0, vis.shape[-1], block), axis=-1)


def select_blocks(q: np.ndarray, k: np.ndarray, vis: np.ndarray, attrs) -> np.ndarray:  # noqa: ANN001
    """Bool (B, H, nq, nk): the key blocks each query block keeps. q (B,H,Tq,D),
    k (B,H,Tk,D) with KV heads already repeated, vis broadcastable to (B,H,Tq,Tk)."""
    b, topk = attrs["block_size"], attrs["block_topk"]
    B, H, tq, _ = q.shape
    tk = k.shape[2]
    vis = np.broadcast_to(vis, (B, H, tq, tk))
    cand = _block_any(vis, b)                                           # (B, H, nq, nk)
    score = (_pool(q, b) @ np.swapaxes(_pool(k, b), -1, -2)) * np.asarray(attrs["scale"], q.dtype)
    forced = np.zeros(cand.shape, dtype=bool)
    a = anchors(vis)                                                    # (B, H, Tq)
    bi, hi, ri = np.nonzero(a >= 0)
    forced[bi, hi, ri // b, a[bi, hi, ri] // b] = True                  # local: anchor blocks
    np.put_along_axis(forced, np.argmax(cand, axis=-1)[..., None], True, axis=-1)  # sink
    forced &= cand
    score = np.where(forced, np.inf, np.where(cand, score, -np.inf))
    order = np.argsort(-score, axis=-1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(order.shape[-1]), order.shape), -1)
    return cand & (forced | (rank < topk))


def _expand_blocks(sel: np.ndarray, block: int, tq: int, k0: int, k1: int) -> np.ndarray:
    """(B, H, nq, nk) block selection -> (B, H, Tq, k1 - k0) pair selection."""
    rows = sel[:, :, np.arange(tq) // block, :]
    return rows[..., np.arange(k0, k1) // block]


def sparse_keep(q: np.ndarray, k: np.ndarray, attrs, mask: np.ndarray | None) -> np.ndarray:  # noqa: ANN001
    """Bool (B, H, Tq, Tk) pairs `attention` keeps under its sparse attributes
    (k with KV heads repeated). Used by the `attention` op's reference run."""
    tq, tk = q.shape[2], k.shape[2]
    vis = pattern_visibility(tq, tk, attrs, mask)
    if "block_size" in attrs:
        vis = vis & _expand_blocks(select_blocks(q, k, vis, attrs), attrs["block_size"],
                                   tq, 0, tk)
    return vis


# ---- static geometry for costs (no data: causal and cache-full assumptions) ----


def _overlap(lo: np.ndarray, hi: np.ndarray, k0: int, k1: int) -> np.ndarray:
    return np.clip(np.minimum(hi, k1) - np.maximum(lo, k0), 0, None)


def static_anchors(tq: int, tk: int, causal: bool) -> np.ndarray:
    """Anchors without data: causal gives i + Tk - Tq; otherwise (a mask we
    cannot see, e.g. decode's KV-cache mask) the cache is taken as full."""
    return np.arange(tq) + (tk - tq) if causal else np.full(tq, tk - 1)


def _stream_ranges(tq: int, tk: int, attrs):  # noqa: ANN001, ANN202
    """Per row: sinks [0, sink_hi) and window [lo, hi) key ranges, disjoint."""
    a = static_anchors(tq, tk, attrs["causal"])
    window = attrs.get("window")
    lo = np.zeros_like(a) if window is None else np.maximum(0, a - window + 1)
    sink_hi = np.minimum(attrs.get("sinks", 0) or 0, lo)
    return sink_hi, lo, a + 1


def kept_keys(tq: int, tk: int, attrs, k0: int = 0, k1: int | None = None) -> np.ndarray:  # noqa: ANN001
    """(Tq,) keys each query row keeps among keys [k0, k1), before block selection."""
    k1 = tk if k1 is None else k1
    sink_hi, lo, hi = _stream_ranges(tq, tk, attrs)
    return _overlap(lo, hi, k0, k1) + _overlap(np.zeros_like(lo), sink_hi, k0, k1)


def _blocks_kept(tq: int, tk: int, attrs):  # noqa: ANN001, ANN202
    """Per query block: (candidate key blocks, kept key blocks), static estimate."""
    b, topk = attrs["block_size"], attrs["block_topk"]
    sink_hi, lo, hi = _stream_ranges(tq, tk, attrs)
    starts = np.arange(0, tq, b)
    ends = np.minimum(starts + b, tq) - 1
    w_first, w_last = lo[starts] // b, (hi[ends] - 1) // b
    sink_blocks = np.minimum(-(-sink_hi[ends] // b), w_first)   # sink blocks before the window
    cand = (w_last - w_first + 1) + sink_blocks
    forced = np.minimum(cand, 3)                                # sink + up to two anchor blocks
    return cand, np.minimum(cand, np.maximum(topk, forced))


def block_keep_fraction(tq: int, tk: int, attrs) -> float:  # noqa: ANN001
    """Expected fraction of the visible pairs block selection keeps (each
    query block keeps kept/candidate of its visible pairs)."""
    if "block_size" not in attrs:
        return 1.0
    cand, kept = _blocks_kept(tq, tk, attrs)
    per_row = kept_keys(tq, tk, attrs)
    b = attrs["block_size"]
    frac_rows = np.repeat(kept / np.maximum(cand, 1), b)[:tq]
    total = per_row.sum()
    return float((per_row * frac_rows).sum() / total) if total else 1.0


def _kv_fraction(tq: int, tk: int, attrs) -> float:  # noqa: ANN001
    """Fraction of K/V rows some query reads once per pass (untiled op)."""
    sink_hi, lo, hi = _stream_ranges(tq, tk, attrs)
    union = (hi.max() - lo.min()) + min(int(sink_hi.max()), int(lo.min()))
    frac = min(1.0, union / tk)
    if "block_size" in attrs:
        _, kept = _blocks_kept(tq, tk, attrs)
        frac = min(frac, float(kept.sum()) * attrs["block_size"] / tk)
    return frac


def sparse_attention_cost(node) -> Cost:  # noqa: ANN001
    """Cost of an `attention` with sparse attributes: kept pairs only, and the
    K/V rows some query keeps (all of them in prefill, sinks + window in decode)."""
    q, k, v = (x.type for x in node.inputs[:3])
    B, H, tq, D = q.shape
    tk = k.shape[2]
    attrs = node.attrs
    pairs = B * H * kept_keys(tq, tk, attrs).sum() * block_keep_fraction(tq, tk, attrs)
    flops = pairs * (4 * D + 5) + _select_flops(q, k, attrs)
    kv = (k.nbytes + v.nbytes) * _kv_fraction(tq, tk, attrs)
    other = sum(x.type.nbytes for x in node.inputs[3:])
    return Cost(float(flops), int(round(q.nbytes + kv + other)), node.type.nbytes)


def _select_flops(q: TensorType, k: TensorType, attrs) -> float:  # noqa: ANN001
    if "block_size" not in attrs:
        return 0.0
    B, H, tq, D = q.shape
    b, tk = attrs["block_size"], k.shape[2]
    nq, nk = -(-tq // b), -(-tk // b)
    return B * H * (D * (tq + tk) + 2 * D * nq * nk)


def naive_attention_cost(node) -> Cost:  # noqa: ANN001
    """Standard attention (FlashAttention paper, Algorithm 0) on an `attention`
    node: S = QK^T written to HBM, read back for P = softmax(S), P written and
    read back for O = PV: Theta(N d + N^2) bytes, the N^2 score matrix
    materialised (the `attention` op's own cost assumes a fused kernel)."""
    q, k, v = (x.type for x in node.inputs[:3])
    B, H, tq, D = q.shape
    tk = k.shape[2]
    scores = q.dtype.nbytes(B * H * tq * tk)
    mask = sum(x.type.nbytes for x in node.inputs[3:])
    read = q.nbytes + k.nbytes + v.nbytes + mask + 2 * scores   # S and P read back
    write = 2 * scores + node.type.nbytes                       # S, P, O
    pairs = B * H * attention_pairs(tq, tk, node.attrs["causal"])
    return Cost(pairs * (4 * D + 5), read, write)


# ---- flash_init ------------------------------------------------------------------


def _state_types(q: TensorType, dv: int) -> tuple[TensorType, ...]:
    B, H, tq, _ = q.shape
    return (TensorType((B, H, tq, dv), q.dtype), TensorType((B, H, tq), _F32),
            TensorType((B, H, tq), _F32))


def _init_type(types, attrs):  # noqa: ANN001, ANN202
    q, v = types
    if q.rank != 4 or v.rank != 4:
        raise IRError(f"flash_init: q {q} and v {v} must be (B, H, T, D)")
    return _state_types(q, v.shape[3])


def _init(xs, attrs):  # noqa: ANN001, ANN202
    q, v = xs
    B, H, tq, _ = q.shape
    return (np.zeros((B, H, tq, v.shape[3]), q.dtype), np.zeros((B, H, tq), np.float32),
            np.full((B, H, tq), -np.inf, np.float32))


define("flash_init", infer=_init_type, run=_init,
       cost=lambda n: Cost(0, 0, sum(t.nbytes for t in n.types)),
       arity=(2, 2), kind="attention",
       gemms=lambda n: (),  # no product: it only writes the initial state (a DMA)
       doc="FlashAttention state in HBM for q (B,H,Tq,D), v (B,G,Tk,Dv): "
           "O = 0 (B,H,Tq,Dv), l = 0 and m = -inf (B,H,Tq) f32; only shapes are read")

# ---- flash_step ------------------------------------------------------------------


def _step_extras(xs: list, attrs) -> tuple:  # noqa: ANN001
    """(mask or None, block selection or None) from a flash_step's inputs."""
    extra = list(xs[6:])
    blocks = extra.pop() if "block_size" in attrs else None
    return (extra[0] if extra else None), blocks


def _step_type(types, attrs):  # noqa: ANN001, ANN202
    q, kt, vt, o, l, m = types[:6]
    check_sparse_attrs(attrs)
    if not (q.rank == kt.rank == vt.rank == 4):
        raise IRError(f"flash_step: q {q}, k {kt}, v {vt} must be (B, H, T, D)")
    (B, H, tq, D), (Bk, G, bc, Dk) = q.shape, kt.shape
    if Bk != B or Dk != D or vt.shape[:3] != kt.shape[:3] or H % G:
        raise IRError(f"flash_step: q {q}, k tile {kt}, v tile {vt} do not match")
    want = _state_types(q, vt.shape[3])
    if (o, l, m) != want:
        raise IRError(f"flash_step: state {o}, {l}, {m} should be {', '.join(map(str, want))}")
    k0, tk = attrs["key_start"], attrs["key_len"]
    if not (0 <= k0 and k0 + bc <= tk) or attrs["block_q"] < 1 or (attrs["causal"] and tq > tk):
        raise IRError(f"flash_step: key tile [{k0}, {k0 + bc}) of {tk} keys, block_q "
                      f"{attrs['block_q']} or causal with {tq} queries is out of range")
    want_inputs = 6 + ("block_size" in attrs)
    if len(types) not in (want_inputs, want_inputs + 1):
        raise IRError(f"flash_step: {len(types)} inputs; expected q, k, v, o, l, m, an "
                      f"optional mask{', and the block selection' if want_inputs == 7 else ''}")
    return want


def _step(xs, attrs):  # noqa: ANN001, ANN202
    q, kt, vt, o, l, m = xs[:6]
    mask, blocks = _step_extras(xs, attrs)
    group = q.shape[1] // kt.shape[1]
    kt, vt = np.repeat(kt, group, axis=1), np.repeat(vt, group, axis=1)
    tq, bc, tk = q.shape[2], kt.shape[2], attrs["key_len"]
    k0, k1 = attrs["key_start"], attrs["key_start"] + bc
    s = (q @ np.swapaxes(kt, -1, -2)) * np.asarray(attrs["scale"], q.dtype)   # (B,H,Tq,Bc)
    if mask is not None and mask.dtype != np.bool_:
        s = s + (mask[..., k0:k1] if mask.shape[-1] == tk else mask)
    keep = pattern_visibility(tq, tk, attrs, mask)[..., k0:k1]
    if blocks is not None:
        keep = keep & _expand_blocks(blocks, attrs["block_size"], tq, k0, k1)
    s = np.where(keep, s, -np.inf).astype(np.float32)
    m_new = np.maximum(m, s.max(axis=-1))
    m_safe = np.where(np.isfinite(m_new), m_new, np.float32(0))  # rows that saw nothing yet
    p = np.exp(s - m_safe[..., None])                              # (B,H,Tq,Bc)
    alpha = np.exp(m - m_safe)                                     # rescales the old state
    l_new = alpha * l + p.sum(axis=-1)
    pv = (p.astype(q.dtype) @ vt).astype(np.float32)
    num = o.astype(np.float32) * (alpha * l)[..., None] + pv
    o_new = np.where(l_new[..., None] > 0, num / np.where(l_new > 0, l_new, 1)[..., None], o)
    return o_new.astype(o.dtype), l_new.astype(np.float32), m_new.astype(np.float32)


def step_visited_rows(node) -> int:  # noqa: ANN001
    """Query rows in the query tiles (block_q rows each) a flash_step visits:
    those where some row keeps a key of the step's key tile (static causal
    and streaming geometry; FlashAttention skips the others)."""
    tq, bc = node.inputs[0].type.shape[2], node.inputs[1].type.shape[2]
    a = node.attrs
    per_row = kept_keys(tq, a["key_len"], a, a["key_start"], a["key_start"] + bc)
    starts = np.arange(0, tq, a["block_q"])
    tile_rows = np.diff(np.append(starts, tq))
    return int(tile_rows[np.add.reduceat(per_row, starts) > 0].sum())


def _state_bytes(node, rows: int) -> float:  # noqa: ANN001
    """Bytes of the O_i rows, l_i and m_i (f32) of `rows` query rows, all heads."""
    B, H = node.inputs[0].type.shape[:2]
    return B * H * rows * (node.inputs[2].type.shape[3] * node.inputs[0].type.dtype.bits / 8 + 8)


def _step_cost(node) -> Cost:  # noqa: ANN001
    q, kt, vt = (x.type for x in node.inputs[:3])
    B, H, _, D = q.shape
    G, bc, dv = kt.shape[1], kt.shape[2], vt.shape[3]
    a = node.attrs
    rows = step_visited_rows(node)
    if rows == 0:  # FA skips a key tile no query tile can see
        return Cost()
    frac = block_keep_fraction(q.shape[2], a["key_len"], a)
    esize = q.dtype.bits / 8
    kv = B * G * bc * (D + dv) * esize
    state = _state_bytes(node, rows)
    extras = sum(x.type.nbytes for x in node.inputs[6:]) * min(1.0, bc / a["key_len"])
    read = kv + B * H * rows * D * esize + state + extras
    flops = B * H * (rows * bc * (2 * D + 2 * dv + 5) + rows * dv * 3)
    return Cost(flops * frac, int(round(read * frac)), int(round(state * frac)))


def _step_gemms(node) -> tuple[Gemm | VectorWork, ...]:  # noqa: ANN001
    """Per query head, for the query rows that see the key tile (`step_visited_rows`):
    S = Q_i K_j^T (rows, Bc, D), the online softmax (exp, row max and sum, and
    rescaling O_i: 5 ops per score + 3 per output element), which reads and writes
    the rows' O, l, m state in HBM, then O_i += P V_j (rows, Dv, Bc). Block
    selection inside the visited tiles is not skipped (dense products)."""
    B, H, _, d = node.inputs[0].type.shape
    bc, dv = node.inputs[1].type.shape[2], node.inputs[2].type.shape[3]
    rows = step_visited_rows(node)
    if rows == 0:
        return ()
    heads, state = B * H, int(round(_state_bytes(node, rows)))
    return (Gemm(rows, bc, d, heads, ".qk"),
            VectorWork(heads * rows * bc, 5 + 3 * dv / bc, ".softmax", state, state),
            Gemm(rows, dv, bc, heads, ".pv"))


define("flash_step", infer=_step_type, run=_step, cost=_step_cost, arity=(6, 8),
       kind="attention", gemms=_step_gemms,
       doc="one FlashAttention key tile (FA1 Algorithm 1, outer loop): (q, k_tile, v_tile, "
           "O, l, m[, mask][, block selection]) -> updated (O, l, m) by the online softmax; "
           "key_start/key_len place the tile among all keys; block_q = query tile rows "
           "(Br); causal, scale and the sparse attributes as for `attention`",
       attrs=("causal", "scale", "block_q", "key_start", "key_len"),
       optional_attrs=SPARSE_ATTRS)

# ---- attention_block_select ----------------------------------------------------------


def _select_type(types, attrs):  # noqa: ANN001, ANN202
    q, k = types[:2]
    check_sparse_attrs(attrs)
    if "block_size" not in attrs or q.rank != 4 or k.rank != 4 or q.shape[1] % k.shape[1]:
        raise IRError(f"attention_block_select: needs block_size/block_topk and q {q}, "
                      f"k {k} as (B, H, T, D) with grouped KV heads")
    b = attrs["block_size"]
    B, H, tq, _ = q.shape
    return (TensorType((B, H, -(-tq // b), -(-k.shape[2] // b)), dtypes.boolean),)


def _select(xs, attrs):  # noqa: ANN001, ANN202
    q, k = xs[:2]
    k = np.repeat(k, q.shape[1] // k.shape[1], axis=1)
    vis = pattern_visibility(q.shape[2], k.shape[2], attrs, xs[2] if len(xs) > 2 else None)
    return select_blocks(q, k, vis, attrs)


def _select_cost(node) -> Cost:  # noqa: ANN001
    read = sum(x.type.nbytes for x in node.inputs)
    return Cost(_select_flops(node.inputs[0].type, node.inputs[1].type, node.attrs), read,
                node.type.nbytes)


def _select_gemms(node) -> tuple[Gemm | VectorWork, ...]:  # noqa: ANN001
    """Mean-pool q and k into blocks (reading them), score the block pairs by
    pooled q . k (nq, nk, D) per query head, then keep the top blocks (one
    comparison per block pair) and write the selection."""
    q, k = node.inputs[0].type, node.inputs[1].type
    B, H, tq, d = q.shape
    nq, nk = node.type.shape[2:]
    heads = B * H
    read = sum(x.type.nbytes for x in node.inputs)
    return (VectorWork(heads * (tq + k.shape[2]) * d, 1.0, ".pool", read_bytes=read),
            Gemm(nq, nk, d, heads, ".score"),
            VectorWork(heads * nq * nk, 1.0, ".select", write_bytes=node.type.nbytes))


define("attention_block_select", infer=_select_type, run=_select, cost=_select_cost,
       arity=(2, 3), kind="attention", gemms=_select_gemms,
       doc="block-sparse attention's block-level selection for q (B,H,Tq,D), k (B,G,Tk,D)"
           "[, mask]: bool (B,H,ceil(Tq/b),ceil(Tk/b)) key blocks each query block keeps",
       attrs=("causal", "scale", "block_size", "block_topk"),
       optional_attrs=("window", "sinks"))

