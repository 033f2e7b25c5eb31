"""LayerNorm over the last dim (op `layer_norm`, Ba, Kiros & Hinton 2016):
y = (x - mean(x)) / sqrt(var(x) + eps) * w + b, in float32, one row block per
program, the whole row in registers (two passes over it: mean, then variance)."""

import triton
import triton.language as tl


@triton.jit
def layer_norm(x_ptr, w_ptr, b_ptr, y_ptr, R, D, eps, stride_x,
               HAS_W: tl.constexpr, HAS_B: tl.constexpr,
               BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr):
    # x (R, D) with row stride stride_x; w, b (D,); y (R, D) row-major
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_D)
    ok = (rows[:, None] < R) & (cols[None, :] < D)
    x = tl.load(x_ptr + rows[:, None] * stride_x + cols[None, :], mask=ok, other=0.0)
    x = x.to(tl.float32)                        # before any scalar maths (templates/__init__)
    mean = tl.sum(x, axis=1) / D                # (BLOCK_R,)
    xc = tl.where(ok, x - mean[:, None], 0.0)   # padding columns stay out of the variance
    var = tl.sum(xc * xc, axis=1) / D
    y = xc / tl.sqrt(var + eps)[:, None]
    if HAS_W:
        y = y * tl.load(w_ptr + cols, mask=cols < D, other=0.0).to(tl.float32)[None, :]
    if HAS_B:
        y = y + tl.load(b_ptr + cols, mask=cols < D, other=0.0).to(tl.float32)[None, :]
    tl.store(y_ptr + rows[:, None] * D + cols[None, :], y.to(y_ptr.dtype.element_ty), mask=ok)
