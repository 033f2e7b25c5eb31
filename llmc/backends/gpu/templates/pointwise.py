"""Elementwise float ops that no GEMM epilogue absorbed: `binary` (add, sub,
mul) with the second operand broadcast over leading rows, and `unary`
(GELU, erf and tanh forms), in float32.

binary: y[r, c] = a[r, c] OP b[r % RB, c], so b may be a whole (R, C)
operand (RB = R) or one repeated over the leading dims (a position
embedding (T, C) added to (B, T, C): RB = T).

GELU (Hendrycks & Gimpel 2016): erf form x * (1 + erf(x / sqrt 2)) / 2;
tanh form x * (1 + tanh(u)) / 2 with u = sqrt(2 / pi) (x + 0.044715 x^3),
computed as x * sigmoid(2u), the same function (1 + tanh u) / 2 = sigmoid(2u).
"""

import triton
import triton.language as tl


@triton.jit
def binary(a_ptr, b_ptr, y_ptr, R, C, RB, s_a, s_b,
           OP: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    # a (R, C) row stride s_a; b (RB, C) row stride s_b; y (R, C) row-major
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    for c0 in range(0, C, BLOCK_C):
        cols = c0 + tl.arange(0, BLOCK_C)
        ok = (rows[:, None] < R) & (cols[None, :] < C)
        a = tl.load(a_ptr + rows[:, None] * s_a + cols[None, :], mask=ok, other=0.0)
        b = tl.load(b_ptr + (rows % RB)[:, None] * s_b + cols[None, :], mask=ok, other=0.0)
        a = a.to(tl.float32)
        b = b.to(tl.float32)
        if OP == "add":
            y = a + b
        elif OP == "sub":
            y = a - b
        else:
            y = a * b
        tl.store(y_ptr + rows[:, None] * C + cols[None, :], y.to(y_ptr.dtype.element_ty), mask=ok)


@triton.jit
def unary(x_ptr, y_ptr, R, C, s_x,
          OP: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    # x (R, C) row stride s_x; y (R, C) row-major
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    for c0 in range(0, C, BLOCK_C):
        cols = c0 + tl.arange(0, BLOCK_C)
        ok = (rows[:, None] < R) & (cols[None, :] < C)
        x = tl.load(x_ptr + rows[:, None] * s_x + cols[None, :], mask=ok, other=0.0)
        x = x.to(tl.float32)
        if OP == "gelu_tanh":
            y = x * tl.sigmoid(1.5957691216057308 * (x + 0.044715 * x * x * x))
        else:                                    # gelu, erf form
            y = 0.5 * x * (1.0 + tl.erf(x * 0.7071067811865476))
        tl.store(y_ptr + rows[:, None] * C + cols[None, :], y.to(y_ptr.dtype.element_ty), mask=ok)
