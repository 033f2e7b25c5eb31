"""`llmc::moe_ffn`: a top-k routed SwiGLU expert layer as one PyTorch op.

Registered with `torch.library` so that `torch.export` keeps it as a single
node; the frontend maps it to the IR op `moe_ffn`, whose cost counts only the
experts a token is routed to (Mixtral / gpt-oss style top-k routing).
"""

from __future__ import annotations

import torch


@torch.library.custom_op("llmc::moe_ffn", mutates_args=())
def moe_ffn(x: torch.Tensor, router: torch.Tensor, w_gate: torch.Tensor,
            w_up: torch.Tensor, w_down: torch.Tensor, top_k: int) -> torch.Tensor:
    """Route each row of x (N, d) to its top_k experts and mix their outputs.

    router (E, d); w_gate, w_up (E, f, d); w_down (E, d, f). Gate weights are a
    softmax over the top_k router logits (Mixtral, gpt-oss).
    """
    logits = x @ router.t()                                  # (N, E)
    top_vals, top_idx = torch.topk(logits, top_k, dim=-1)    # (N, k)
    gates = torch.softmax(top_vals, dim=-1)                  # (N, k)
    out = torch.zeros_like(x)
    for e in range(router.shape[0]):
        rows, slot = torch.nonzero(top_idx == e, as_tuple=True)
        if rows.numel() == 0:
            continue
        xe = x[rows]                                          # (n_e, d)
        h = torch.nn.functional.silu(xe @ w_gate[e].t()) * (xe @ w_up[e].t())
        out.index_add_(0, rows, (h @ w_down[e].t()) * gates[rows, slot, None])
    return out


@moe_ffn.register_fake
def _(x, router, w_gate, w_up, w_down, top_k):  # noqa: ANN001, ANN202
    return torch.empty_like(x)
