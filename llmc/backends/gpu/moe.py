"""The routed experts (`moe_ffn`) on the gpu backend: the lowering rule and
the launches of templates/moe.py's kernels.

Lowering: `moe_ffn` -> one "moe" step; when its output is only reshaped back
to (B, T, D) and added to the residual in the same fusion group (the
decoder layer's `x + moe(norm(x))`), the add is the combine kernel's
epilogue and the step produces the sum.

Dispatch between routing and the expert GEMMs runs as device tensor ops
(a stable sort of the (token, slot) pairs by expert, per-expert counts and
offsets): nothing is read back to the host, so the grouped GEMMs' grid is
the worst case and a CUDA graph can replay a decode step.
"""

from __future__ import annotations

import math
from typing import Any

from llmc.backends.gpu.runtime import pow2
from llmc.ir.graph import Node


def moe_step(low: Any, n: Node) -> None:
    from llmc.backends.gpu.lower import ref

    x, router, wg, wu, wd = n.inputs
    N, D = x.type.shape
    E, F = wg.type.shape[0], wg.type.shape[1]
    if any(v.type.dtype.kind == "block" or not v.type.dtype.is_float for v in n.inputs):
        low.bad.setdefault(f"moe_ffn on {x.type.dtype} / {wg.type.dtype}", f"%{n.name}")
        return
    chain, res = [n], None
    view = low.only_user(n)
    add = low.only_user(view) if view is not None and view.op == "reshape" else None
    if (add is not None and add.op == "add" and len(add.inputs) == 2
            and add.attrs.get("fusion") is not None
            and add.attrs.get("fusion") == n.attrs.get("fusion", add.attrs.get("fusion"))
            and add.inputs[0].type.shape == add.inputs[1].type.shape == add.type.shape):
        other = next((i for i in add.inputs if i.node is not view), None)
        if other is not None and other.type.dtype.is_float and other.type.dtype.kind != "block":
            chain += [view, add]
            res = ref(other)
    low.emit(chain, {"op": "moe", "x": ref(x), "router": ref(router), "wg": ref(wg),
                     "wu": ref(wu), "wd": ref(wd), "res": res, "N": N, "D": D, "E": E, "F": F,
                     "top_k": int(n.attrs["top_k"]),
                     "norm_topk": bool(n.attrs.get("norm_topk", True))})


def run_moe(rt: Any, s: dict[str, Any], vals: dict[str, Any], types: Any) -> Any:
    import torch

    dev = rt.where.device
    N, D, E, F, K = s["N"], s["D"], s["E"], s["F"], s["top_k"]
    x = rt.rows(vals[s["x"]], D)
    precision = "ieee" if x.dtype == torch.float32 else "tf32"
    flags = {"DOT_F32": rt.where.dot_f32, "PRECISION": precision}
    # routing: top-k experts and gates per token
    idx = torch.empty((N, K), dtype=torch.int32, device=dev)
    gates = torch.empty((N, K), dtype=torch.float32, device=dev)
    bt = pow2(min(N, 64))
    rt.k["moe_route"][(math.ceil(N / bt),)](
        x, vals[s["router"]], idx, gates, N, D, E, x.stride(0), TOPK=K,
        NORM_TOPK=s["norm_topk"], BLOCK_T=bt, BLOCK_E=pow2(E), BLOCK_D=pow2(min(D, 128)),
        **flags)
    # dispatch: slots in ascending expert order per token, rows sorted by expert
    idx, perm = torch.sort(idx.long(), dim=1)
    gates = torch.gather(gates, 1, perm).reshape(-1).contiguous()
    flat = idx.reshape(-1)
    slot = torch.argsort(flat, stable=True)                    # sorted row -> slot
    counts = torch.zeros(E, dtype=torch.int64, device=dev).scatter_add_(
        0, flat, torch.ones_like(flat))
    offsets = torch.cumsum(counts, 0) - counts
    pos = torch.empty_like(slot).scatter_(0, slot, torch.arange(N * K, device=dev))
    tok = slot // K
    h = torch.empty((N * K, F), dtype=torch.float32, device=dev)
    y = torch.empty((N * K, D), dtype=torch.float32, device=dev)
    bm = pow2(min(N, 64 if rt.where.interpret else 32))
    bn_f, bn_d = pow2(min(F, 128)), pow2(min(D, 128))
    bk_d, bk_f = pow2(min(D, 64), 32), pow2(min(F, 64), 32)
    rt.k["moe_gate_up"][(E, math.ceil(N / bm), math.ceil(F / bn_f))](
        x, vals[s["wg"]], vals[s["wu"]], h, tok, offsets, counts, D, F, x.stride(0),
        BLOCK_M=bm, BLOCK_N=bn_f, BLOCK_K=bk_d, **flags)
    rt.k["moe_down"][(E, math.ceil(N / bm), math.ceil(D / bn_d))](
        h, vals[s["wd"]], y, gates, slot, offsets, counts, D, F,
        BLOCK_M=bm, BLOCK_N=bn_d, BLOCK_K=bk_f, **flags)
    dtype, shape = types[s["out"]]
    out = rt.empty((N, D), dtype)
    res = rt.rows(vals[s["res"]], D) if s["res"] else out
    bt = pow2(min(N, 64), 1)
    rt.k["moe_combine"][(math.ceil(N / bt),)](
        y, pos, res, out, N, D, res.stride(0), TOPK=K, HAS_RES=s["res"] is not None,
        BLOCK_T=bt, BLOCK_D=pow2(D, 1))
    return out.reshape(shape)
