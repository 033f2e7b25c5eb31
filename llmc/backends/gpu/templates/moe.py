"""Routed SwiGLU experts (op `moe_ffn`: Mixtral, Qwen3-MoE), in four kernels:

  moe_route     logits = x @ router.T, the top TOPK experts of each token
                (ties to the lower index) and their gates: the softmax over
                the chosen logits (NORM_TOPK), or the softmax over all E
                logits read at the chosen ones;
  (dispatch)    the runtime sorts the (token, slot) pairs by expert on the
                device (llmc/backends/gpu/moe.py): per expert a count and
                an offset into the sorted rows, no host round trip;
  moe_gate_up   grouped GEMM: program (e, row tile, column tile) gathers the
                rows of the tokens routed to expert e and computes
                h = silu(x wg_e^T) * (x wu_e^T), sorted rows, float32;
  moe_down      grouped GEMM: y = (h wd_e^T) * gate, sorted rows, float32;
  moe_combine   out[t] = (residual[t] +) sum of y over t's TOPK rows, the
                slots in ascending expert order (the IR's order), so the
                sum needs no atomics and is the same every run.

The grid is sized for the worst case (every token on one expert); tiles
past an expert's count do nothing, so the launch needs no host sync and a
decode step can be replayed as a CUDA graph.

    x (N, D)  router (E, D)  wg, wu (E, F, D)  wd (E, D, F)  out (N, D)
"""

import triton
import triton.language as tl


@triton.jit
def moe_route(x_ptr, r_ptr, idx_ptr, gate_ptr, N, D, E, s_x,
              TOPK: tl.constexpr, NORM_TOPK: tl.constexpr, BLOCK_T: tl.constexpr,
              BLOCK_E: tl.constexpr, BLOCK_D: tl.constexpr, DOT_F32: tl.constexpr,
              PRECISION: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    row_ok = rows < N
    e = tl.arange(0, BLOCK_E)
    logits = tl.zeros((BLOCK_T, BLOCK_E), tl.float32)
    for d0 in range(0, D, BLOCK_D):
        d = d0 + tl.arange(0, BLOCK_D)
        x = tl.load(x_ptr + rows[:, None] * s_x + d[None, :],
                    mask=row_ok[:, None] & (d[None, :] < D), other=0.0)
        r = tl.load(r_ptr + e[None, :] * D + d[:, None],
                    mask=(e[None, :] < E) & (d[:, None] < D), other=0.0)      # (BLOCK_D, BLOCK_E)
        if DOT_F32:
            x = x.to(tl.float32)
            r = r.to(tl.float32)
        else:
            r = r.to(x.dtype)
        logits += tl.dot(x, r, input_precision=PRECISION)
    logits = tl.where(e[None, :] < E, logits, float("-inf"))
    m = tl.max(logits, axis=1)                                # the chosen max is the max
    p = tl.exp(logits - m[:, None])
    # which experts are chosen: TOPK rounds of argmax (ties to the lower index)
    chosen = e[None, :] < 0
    left = logits
    for _ in tl.static_range(TOPK):
        best = tl.argmax(left, axis=1, tie_break_left=True)
        hit = e[None, :] == best[:, None]
        chosen = chosen | hit
        left = tl.where(hit, float("-inf"), left)
    if NORM_TOPK:
        total = tl.sum(tl.where(chosen, p, 0.0), axis=1)
    else:
        total = tl.sum(p, axis=1)
    left = logits
    for j in tl.static_range(TOPK):
        best = tl.argmax(left, axis=1, tie_break_left=True)
        hit = e[None, :] == best[:, None]
        gate = tl.sum(tl.where(hit, p, 0.0), axis=1) / total
        tl.store(idx_ptr + rows * TOPK + j, best.to(tl.int32), mask=row_ok)
        tl.store(gate_ptr + rows * TOPK + j, gate, mask=row_ok)
        left = tl.where(hit, float("-inf"), left)


@triton.jit
def moe_gate_up(x_ptr, wg_ptr, wu_ptr, h_ptr, tok_ptr, off_ptr, cnt_ptr, D, F, s_x,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                DOT_F32: tl.constexpr, PRECISION: tl.constexpr):
    ex = tl.program_id(0)
    cnt = tl.load(cnt_ptr + ex)
    if tl.program_id(1) * BLOCK_M < cnt:                     # else: no rows for this tile
        local = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
        r_ok = local < cnt
        r = tl.load(off_ptr + ex) + local                    # sorted rows of expert ex
        tok = tl.load(tok_ptr + r, mask=r_ok, other=0)       # their tokens
        n = tl.program_id(2) * BLOCK_N + tl.arange(0, BLOCK_N)
        n_ok = n < F
        acc_g = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
        acc_u = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
        w_at = ex * F * D + n[None, :] * D
        for k0 in range(0, D, BLOCK_K):
            k = k0 + tl.arange(0, BLOCK_K)
            k_ok = k < D
            x = tl.load(x_ptr + tok[:, None] * s_x + k[None, :],
                        mask=r_ok[:, None] & k_ok[None, :], other=0.0)   # gathered rows
            wg = tl.load(wg_ptr + w_at + k[:, None], mask=n_ok[None, :] & k_ok[:, None],
                         other=0.0)                                      # (BLOCK_K, BLOCK_N)
            wu = tl.load(wu_ptr + w_at + k[:, None], mask=n_ok[None, :] & k_ok[:, None],
                         other=0.0)
            if DOT_F32:
                x = x.to(tl.float32)
                wg = wg.to(tl.float32)
                wu = wu.to(tl.float32)
            else:
                wg = wg.to(x.dtype)
                wu = wu.to(x.dtype)
            acc_g += tl.dot(x, wg, input_precision=PRECISION)
            acc_u += tl.dot(x, wu, input_precision=PRECISION)
        h = acc_g * tl.sigmoid(acc_g) * acc_u                # SiLU(gate) * up
        tl.store(h_ptr + r[:, None] * F + n[None, :], h, mask=r_ok[:, None] & n_ok[None, :])


@triton.jit
def moe_down(h_ptr, wd_ptr, y_ptr, gate_ptr, slot_ptr, off_ptr, cnt_ptr, D, F,
             BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
             DOT_F32: tl.constexpr, PRECISION: tl.constexpr):
    ex = tl.program_id(0)
    cnt = tl.load(cnt_ptr + ex)
    if tl.program_id(1) * BLOCK_M < cnt:
        local = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
        r_ok = local < cnt
        r = tl.load(off_ptr + ex) + local
        n = tl.program_id(2) * BLOCK_N + tl.arange(0, BLOCK_N)
        n_ok = n < D
        acc = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
        for k0 in range(0, F, BLOCK_K):
            k = k0 + tl.arange(0, BLOCK_K)
            k_ok = k < F
            h = tl.load(h_ptr + r[:, None] * F + k[None, :], mask=r_ok[:, None] & k_ok[None, :],
                        other=0.0)
            w = tl.load(wd_ptr + ex * D * F + n[None, :] * F + k[:, None],
                        mask=n_ok[None, :] & k_ok[:, None], other=0.0).to(tl.float32)
            acc += tl.dot(h, w, input_precision=PRECISION)
        gate = tl.load(gate_ptr + tl.load(slot_ptr + r, mask=r_ok, other=0), mask=r_ok,
                       other=0.0)
        tl.store(y_ptr + r[:, None] * D + n[None, :], acc * gate[:, None],
                 mask=r_ok[:, None] & n_ok[None, :])


@triton.jit
def moe_combine(y_ptr, pos_ptr, res_ptr, out_ptr, N, D, s_res,
                TOPK: tl.constexpr, HAS_RES: tl.constexpr,
                BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    d = tl.arange(0, BLOCK_D)
    ok = (rows[:, None] < N) & (d[None, :] < D)
    acc = tl.zeros((BLOCK_T, BLOCK_D), tl.float32)
    for j in tl.static_range(TOPK):                          # slots in ascending expert order
        r = tl.load(pos_ptr + rows * TOPK + j, mask=rows < N, other=0)
        acc += tl.load(y_ptr + r[:, None] * D + d[None, :], mask=ok, other=0.0)
    if HAS_RES:
        res = tl.load(res_ptr + rows[:, None] * s_res + d[None, :], mask=ok, other=0.0)
        acc = res.to(tl.float32) + acc
    tl.store(out_ptr + rows[:, None] * D + d[None, :], acc.to(out_ptr.dtype.element_ty), mask=ok)
