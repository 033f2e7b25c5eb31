"""Long-context deployment analysis in the manner of Fu 2024 ("Challenges in
Deploying Long-Context Transformers: A Theoretical Peak Performance
Analysis", arXiv 2405.08944): one hardware bound per metric, from the config.

- concurrency: requests whose KV cache fits in the memory left after weights
  (and the runtime's reservation): floor(free / (kv_bytes_per_token · ctx));
- prefill: FLOP-bound, prefill_flops(ctx) / peak FLOP/s;
- decode: bandwidth-bound, (weights read + batch · KV per request) / bandwidth
  per step;
- context switching: PCIe-bound, (KV of user 1 + KV of user 2) / host-link
  bandwidth (one request swapped out to host memory, another swapped in).

With N-way tensor parallelism the devices' memories, FLOPs and bandwidths
add up and each swaps its share over its own host link (Fu assumes the
communication free; the per-phase roofline charges it). Everything is
analytic: a 1M-token sweep costs microseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from llmc.costmodel import formulas as F
from llmc.costmodel.precision import FORMATS, Precision, compute_class
from llmc.costmodel.roofline import place
from llmc.frontend.zoo.config import ModelConfig
from llmc.hw.device import Device
from llmc.passes.quant.schemes import BFP12

SWEEP = tuple(4096 * 2 ** i for i in range(9))            # 4K ... 1M tokens


@dataclass(frozen=True)
class Point:
    """The four bounds at one context length (per request unless said)."""

    context: int
    kv_bytes_per_request: float
    max_concurrent_requests: int
    prefill_flops: float
    prefill_s: float             # FLOP bound at peak
    prefill_expected_s: float    # after the matmul/attention efficiency factors
    decode_bytes: float          # per step, the whole batch
    decode_s: float              # bandwidth bound at peak, per step
    decode_expected_s: float
    switch_s: float              # swap one request out and another in

    def to_json(self) -> dict[str, float | int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class LongContext:
    """The analysis of one model on one device (x tp) at one precision."""

    config: ModelConfig
    device: Device
    precision: Precision
    tp: int
    batch: int
    kv_bytes_per_token: float
    weight_bytes: float
    kv_capacity_bytes: float     # memory for KV after weights and reservations (< 0: no fit)
    points: list[Point]
    crossovers: dict[str, float]
    compressed: LongContext | None = None
    formulas: dict[str, str] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return self.kv_capacity_bytes >= 0

    def at(self, context: int) -> Point:
        return next(p for p in self.points if p.context == context)


def kv_capacity(dev: Device, weight_bytes: float, tp: int) -> float:
    """Bytes left for KV over all tp devices: every KV-holding level minus the
    weights placed there and the runtime's reservation."""
    per_dev = weight_bytes / tp
    where = place(dev, per_dev, 0.0)
    cap = sum(m.capacity_bytes for m in dev.memory if "kv" in m.holds and not m.hardwired)
    on = 0.0 if where.weights.hardwired or "kv" not in where.weights.holds else per_dev
    return tp * (cap - on - dev.reserved_bytes.value)


def point(c: ModelConfig, dev: Device, p: Precision, ctx: int, *, tp: int, batch: int,
          capacity: float) -> Point:
    """The four bounds at context length `ctx`."""
    kvpt = F.kv_bytes_per_token(c, p.kv.bits)
    kv_req = kvpt * ctx
    unit = dev.unit(compute_class(p.act, p.weight), True)
    peak = (unit.sparse_flops_per_s if p.sparse and unit.sparse_flops_per_s
            else unit.flops_per_s) * tp
    attn_unit = dev.unit(compute_class(p.act, p.kv), False)
    pf = F.prefill_flops(c, ctx)
    attn = F.attention_flops(c, ctx, ctx, causal=True)
    prefill_exp = ((pf - attn) / (peak * dev.eff("matmul"))
                   + attn / (attn_unit.flops_per_s * tp * dev.eff("attention")))
    w_read = F.decode_weight_bytes(c, batch, p.weight.bits, p.act.bits)
    kv_read = batch * kv_req
    where = place(dev, F.weight_bytes(c, p.weight.bits, p.act.bits) / tp, kv_read / tp)
    w_s = 0.0 if where.weights.hardwired else w_read / (where.weights.bytes_per_s * tp)
    kv_s = kv_read / (where.kv.bytes_per_s * tp)
    decode_s = w_s + kv_s if where.weights is where.kv else max(w_s, kv_s)
    host = dev.host_link.bytes_per_s * tp if dev.host_link else math.inf
    return Point(ctx, kv_req, max(0, math.floor(capacity / kv_req)) if capacity > 0 else 0,
                 pf, pf / peak, prefill_exp, w_read + kv_read, decode_s,
                 decode_s / dev.eff("memory"), 2 * kv_req / host)


def analyze(c: ModelConfig, dev: Device, p: Precision, *, tp: int = 1, batch: int = 1,
            contexts: tuple[int, ...] = SWEEP, compress: bool = True) -> LongContext:
    """Sweep `contexts` (plus crossovers, and a KV-compressed variant)."""
    kvpt = F.kv_bytes_per_token(c, p.kv.bits)
    weights = F.weight_bytes(c, p.weight.bits, p.act.bits)
    cap = kv_capacity(dev, weights, tp)
    pts = [point(c, dev, p, ctx, tp=tp, batch=batch, capacity=cap)
           for ctx in sorted(set(contexts))]
    w_read = F.decode_weight_bytes(c, batch, p.weight.bits, p.act.bits)
    host = dev.host_link.bytes_per_s * tp if dev.host_link else math.inf
    bw = dev.main.bytes_per_s * tp
    cross = {
        "attention_dominates_prefill_from": F.attention_crossover(c),
        "kv_dominates_decode_from": w_read / (batch * kvpt),
        "max_context_one_request": max(0.0, cap / kvpt),
        "max_context_per_request_at_batch": max(0.0, cap / (batch * kvpt)),
        "switch_exceeds_decode_step_from": (host * w_read / (kvpt * (2 * bw - host))
                                            if 2 * bw > host else math.inf),
    }
    lc = LongContext(c, dev, p, tp, batch, kvpt, weights, cap, pts, cross)
    lc.formulas = _formulas(c, p, kvpt)
    if compress:
        other = BFP12 if p.kv.bits > BFP12.bits else FORMATS["bf16"]
        lc.compressed = analyze(c, dev, replace(p, kv=other, spec=f"{p.spec}+{other.name}-kv"),
                                tp=tp, batch=batch, contexts=contexts, compress=False)
    return lc


def _formulas(c: ModelConfig, p: Precision, kvpt: float) -> dict[str, str]:
    """The closed forms with this model's numbers filled in (for the report)."""
    b = p.kv.bits / 8
    return {
        "kv_bytes_per_token": (f"2·L·G·D·b = 2·{c.n_layers}·{c.n_kv_heads}·{c.head_dim}·{b:g}"
                               f" = {kvpt:,.0f} B"),
        "kv_bytes_per_request": "kv_bytes_per_token · context",
        "max_concurrent_requests": "floor((memory · N − reserved · N − weights) / kv_bytes_per_request)",
        "prefill_s": (f"(2·W_mm·T + L·H·T(T+1)/2·(4D+5)) / peak, W_mm = "
                      f"{F.matmul_weights(c):,.0f} weights multiplied per token"),
        "decode_s": "(weights read per step + batch · kv_bytes_per_request) / bandwidth",
        "context_switch_s": "(KV of user 1 + KV of user 2) / host-link bandwidth",
    }
