"""Split-K decode attention (Flash-Decoding): where it is used, how many
splits, and its launch (the kernels: templates/decode_attention.py).

`plan_decode(steps, types, device)` turns every attention step with one
query per head (T = 1: a decode step) whose H/G query heads per K/V head
fit one tile (<= MAX_ROWS) into a `decode_attention` step and records in
it the number of key splits chosen for `device`:

    splits = num_splits(B * G programs, the device's SM count,
                        ceil(TK / DECODE_BLOCK_K) key tiles)

FlashAttention-2's rule (`num_splits_heuristic`, flash-attention
csrc/flash_attn/flash_api.cpp, Dao 2023): no split when the programs already
fill >= 80% of the SMs; else the fewest splits whose wave efficiency
(programs * splits / SMs over its ceiling) is >= 85% of the best, at most
one split per key tile and 128. TK is the cache's length as compiled; at
run time each split covers 1/splits of the keys actually visible (up to the
current position, within the window), so a short context reads only its
own rows. The SM count is the device file's [gpu] sm_count; a device file
without it gets one split (recorded as sm_count null).

`run_decode_attention(runtime, step, values, types)` launches the split
kernel and, with more than one split, the reduce kernel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from llmc.backends.gpu.runtime import pow2

MAX_ROWS = 64          # query rows (heads per K/V head) of one decode program
DECODE_BLOCK_K = 64    # keys per tile
MAX_SPLITS = 128       # FlashAttention-2's cap


def sm_count(device: Any) -> int | None:
    """The device's [gpu] sm_count (streaming multiprocessors), if its file gives one."""
    fig = getattr(device, "sm_count", None)
    return int(fig.value) if fig is not None else None


def num_splits(programs: int, sms: int, key_tiles: int, max_splits: int = MAX_SPLITS) -> int:
    """FlashAttention-2's split count (see the module docstring)."""
    if programs >= 0.8 * sms:
        return 1
    top = min(max_splits, sms, key_tiles)

    def eligible(n: int) -> bool:     # n splits that do not leave the same chunks as n - 1
        return n == 1 or math.ceil(key_tiles / n) != math.ceil(key_tiles / (n - 1))

    eff = {n: programs * n / sms / math.ceil(programs * n / sms)
           for n in range(1, top + 1) if eligible(n)}
    if not eff:
        return 1
    best = max(eff.values())
    return min(n for n, e in eff.items() if e >= 0.85 * best)


def plan_decode(steps: list[dict[str, Any]], types: Mapping[str, Any], device: Any) -> None:
    """Attention steps with few query rows -> decode_attention steps, in place."""
    sms = sm_count(device)
    for s in steps:
        if s["op"] != "attention":
            continue
        B, H, T, _ = types[s["q"]][1]
        G, TK = types[s["k"]][1][1], types[s["k"]][1][2]
        if T != 1 or H // G > MAX_ROWS:
            continue
        tiles = math.ceil(TK / DECODE_BLOCK_K)
        s.update({"op": "decode_attention", "block_k": DECODE_BLOCK_K, "sm_count": sms,
                  "splits": num_splits(B * G, sms, tiles) if sms else 1})
        s.pop("block_q", None)


def anchors(mask: Any, T: int, TK: int, causal: bool) -> Any:
    """Each query position's last visible key (T or 1,) int32, -1 where none:
    what the sliding window counts back from and where the key range ends."""
    import torch

    keys = torch.arange(TK, device=mask.device)
    vis = mask
    if causal:
        vis = vis & (keys[None, :] <= torch.arange(T, device=mask.device)[:, None] + (TK - T))
    return torch.where(vis, keys, -1).amax(dim=-1).to(torch.int32).contiguous()


def run_decode_attention(rt: Any, s: Mapping[str, Any], vals: dict[str, Any],
                         types: Any) -> Any:
    """The decode_attention step on the runtime `rt` (llmc/backends/gpu/runtime.py)."""
    import torch

    q, km, vm, ke, ve, fmt, m = rt.attention_operands(s, vals)
    B, H, T, D = q.shape
    G, TK = km.shape[1], km.shape[2]
    mask, anchor, s_mt, s_at = km, km, 0, 0
    if m is not None:
        mask = m.to(torch.uint8).contiguous()
        s_mt = TK if m.shape[0] == T and T > 1 else 0
        anchor = anchors(m.bool(), T, TK, s["causal"])
        s_at = 1 if anchor.numel() > 1 else 0
    out = rt.empty((B, H, T, D), types[s["out"]][0])
    hpg, splits = H // G, int(s["splits"])
    bq, bd = pow2(hpg * T), pow2(D)
    bk = int(s["block_k"])
    f32 = {"dtype": torch.float32, "device": rt.where.device}
    if splits > 1:
        pm = torch.empty((B * G * splits * bq,), **f32)
        pl = torch.empty((B * G * splits * bq,), **f32)
        pacc = torch.empty((B * G * splits * bq * bd,), **f32)
    else:
        pm = pl = pacc = out
    window = s.get("window") or 0
    rt.k["decode_attention"][(splits, B * G)](
        q, km, vm, ke, ve, mask, anchor, out, pm, pl, pacc,
        G, T, TK, hpg, D, s["scale"], window, s.get("sinks") or 0,
        *rt.kv_strides(q, km, vm, ke, ve), s_mt, s_at, CAUSAL=s["causal"], HAS_MASK=s["mask"] is not None, WINDOW=window > 0,
        KV_BLOCK=fmt.get("block", 0), KV_SHIFT=fmt.get("shift", 0), SPLITS=splits,
        BLOCK_Q=bq, BLOCK_K=bk, BLOCK_D=bd, DOT_F32=rt.where.dot_f32,
        PRECISION="ieee" if q.dtype == torch.float32 else "tf32")
    if splits > 1:
        rt.k["decode_attention_reduce"][(B * G,)](
            pm, pl, pacc, out, G, T, hpg, D, SPLITS=splits, BLOCK_Q=bq, BLOCK_D=bd)
    return out
