"""Row gather: out[r, :] = table[idx[r], :] (op `embedding`, optionally with the
`cast` fused after it: the store converts to the output's dtype)."""

import triton
import triton.language as tl


@triton.jit
def embedding(table_ptr, idx_ptr, out_ptr, R, C,
              BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    # table (V, C) row-major, idx (R,) integers, out (R, C) row-major
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    ids = tl.load(idx_ptr + rows, mask=rows < R, other=0)
    for c0 in range(0, C, BLOCK_C):
        cols = c0 + tl.arange(0, BLOCK_C)
        ok = (rows[:, None] < R) & (cols[None, :] < C)
        v = tl.load(table_ptr + ids[:, None] * C + cols[None, :], mask=ok, other=0.0)
        tl.store(out_ptr + rows[:, None] * C + cols[None, :],
                 v.to(out_ptr.dtype.element_ty), mask=ok)
