"""`llmc::window_attention`: causal attention within a sliding window, one op.

Mistral-style sliding-window attention (Jiang et al. 2023, arXiv 2310.06825):
each query sees its anchor key (its own position) and the `window` - 1 keys
before it. Registered with `torch.library` so that `torch.export` keeps it as
one node, which the converter below turns into the IR's `attention` with a
`window` attribute, the same attribute `--attention window:W` sets: the cost
model, the tiling pass and the backends read it there (llmc/ir/ops/tiled.py
defines it: key j is kept when j > anchor - window).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from llmc.frontend.aten import Ctx, aten
from llmc.ir.graph import Value


@torch.library.custom_op("llmc::window_attention", mutates_args=())
def window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     mask: torch.Tensor | None, window: int) -> torch.Tensor:
    """q (B, H, Tq, D), k/v (B, G, Tk, D). mask None: causal, bottom-right
    aligned (prefill); else a bool mask broadcastable to (B, H, Tq, Tk) of the
    keys a query may see (decode's KV-cache mask). Each row keeps the visible
    keys j with j > anchor - window, anchor being its last visible key."""
    tq, tk = q.shape[2], k.shape[2]
    j = torch.arange(tk, device=q.device)
    if mask is None:
        visible = j[None, :] <= torch.arange(tq, device=q.device)[:, None] + (tk - tq)
    else:
        visible = mask
    anchor = torch.where(visible, j, -1).amax(dim=-1, keepdim=True)        # (..., Tq, 1)
    keep = visible & (j > anchor - window)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=keep,
                                          enable_gqa=q.shape[1] != k.shape[1])


@window_attention.register_fake
def _(q, k, v, mask, window):  # noqa: ANN001, ANN202
    return q.new_empty((*q.shape[:3], v.shape[3]))


@aten("llmc.window_attention.default")
def _convert(c: Ctx, q: Any, k: Any, v: Any, mask: Any, window: int) -> Value:
    vq = c.v(q)
    args = [vq, c.v(k), c.v(v)] + ([c.v(mask)] if mask is not None else [])
    return c.op("attention", *args, causal=mask is None,
                scale=1.0 / math.sqrt(vq.type.shape[-1]), window=int(window))
