"""RMSNorm over the last dim (op `rms_norm`, Zhang & Sennrich 2019):
y = x / sqrt(mean(x^2) + eps) * w, in float32, one row block per program."""

import triton
import triton.language as tl


@triton.jit
def rms_norm(x_ptr, w_ptr, y_ptr, R, D, eps, stride_x,
             HAS_W: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr):
    # x (R, D) with row stride stride_x; w (D,); y (R, D) row-major
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_D)
    ok = (rows[:, None] < R) & (cols[None, :] < D)
    x = tl.load(x_ptr + rows[:, None] * stride_x + cols[None, :], mask=ok, other=0.0)
    x = x.to(tl.float32)                        # before any scalar maths (see __init__)
    mean_sq = tl.sum(x * x, axis=1) / D         # (BLOCK_R,)
    y = x / tl.sqrt(mean_sq + eps)[:, None]
    if HAS_W:
        w = tl.load(w_ptr + cols, mask=cols < D, other=0.0).to(tl.float32)
        y = y * w[None, :]
    tl.store(y_ptr + rows[:, None] * D + cols[None, :], y.to(y_ptr.dtype.element_ty), mask=ok)
