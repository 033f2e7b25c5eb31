"""Rotary position embedding (Su et al. 2021), the rotate-half form the
graph spells as neg / concat / mul / mul / add:

    y = x * cos + rotate_half(x) * sin,  rotate_half(x) = concat(-x[D/2:], x[:D/2])

x is the projection's output viewed as (B, H, T, D) (any strides, last dim
contiguous); cos and sin are (T, D) rows already gathered at the positions;
y is written contiguous (B, H, T, D)."""

import triton
import triton.language as tl


@triton.jit
def rope(x_ptr, cos_ptr, sin_ptr, y_ptr, R, H, T, D,
         stride_xb, stride_xh, stride_xt, stride_cs,
         BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)    # r = (b * H + h) * T + t
    b = rows // (H * T)
    h = (rows // T) % H
    t = rows % T
    d = tl.arange(0, BLOCK_D)
    half = D // 2
    partner = tl.where(d < half, d + half, d - half)    # the element rotate_half puts at d
    sign = tl.where(d < half, -1.0, 1.0)
    ok = (rows[:, None] < R) & (d[None, :] < D)
    x_row = x_ptr + b[:, None] * stride_xb + h[:, None] * stride_xh + t[:, None] * stride_xt
    x = tl.load(x_row + d[None, :], mask=ok, other=0.0).to(tl.float32)
    x_rot = tl.load(x_row + partner[None, :], mask=ok, other=0.0).to(tl.float32) * sign[None, :]
    cos = tl.load(cos_ptr + t[:, None] * stride_cs + d[None, :], mask=ok, other=0.0)
    sin = tl.load(sin_ptr + t[:, None] * stride_cs + d[None, :], mask=ok, other=0.0)
    y = x * cos.to(tl.float32) + x_rot * sin.to(tl.float32)
    tl.store(y_ptr + rows[:, None] * D + d[None, :], y.to(y_ptr.dtype.element_ty), mask=ok)
