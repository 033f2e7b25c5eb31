"""Words for numbers: unit formatting and the "what bounds you" paragraph."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from llmc.costmodel.render_json import by_group

if TYPE_CHECKING:
    from llmc.costmodel.report import Report


def fmt_s(s: float | None) -> str:
    """Seconds with a readable unit: 132 ms, 8.83 ms, 2.39 s, 14.2 µs."""
    if s is None or not math.isfinite(s):
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if abs(s) >= scale or unit == "ns":
            v = s / scale
            return f"{v:,.3g} {unit}" if v < 1000 else f"{v:,.0f} {unit}"
    return f"{s} s"


def _si(x: float, unit: str, base: float = 1000.0) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    for prefix, scale in (("P", base ** 5), ("T", base ** 4), ("G", base ** 3),
                          ("M", base ** 2), ("k", base), ("", 1.0)):
        if abs(x) >= scale or prefix == "":
            v = x / scale
            return f"{v:,.3g} {prefix}{unit}" if v < 1000 else f"{v:,.0f} {prefix}{unit}"
    return f"{x} {unit}"


def fmt_bytes(b: float | None) -> str:
    """Decimal units (GB = 1e9 bytes), as datasheets print them."""
    return "—" if b is None else _si(b, "B")


def fmt_flops(f: float) -> str:
    return _si(f, "FLOP")


def fmt_rate(f: float, unit: str = "FLOP/s") -> str:
    return _si(f, unit)


def fmt_tokens(n: float) -> str:
    """Token counts: 4K and 1M for powers of two, else digits (2,304)."""
    if not math.isfinite(n):
        return "∞"
    if n >= 2 ** 20 and n % 2 ** 20 == 0:
        return f"{n / 2 ** 20:,.0f}M"
    return f"{n / 1024:,.0f}K" if n >= 4096 and n % 1024 == 0 else f"{n:,.0f}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _top_group(ph) -> tuple[str, float]:  # noqa: ANN001
    groups = by_group(ph)
    total = sum(g["time_s"] for g in groups.values()) or 1.0
    name = max(groups, key=lambda k: groups[k]["time_s"])
    return name, groups[name]["time_s"] / total


def prefill_sentence(r: Report) -> str:
    ph, dev = r.prefill, r.device
    t = ph.time_by_bound()
    total = sum(t.values()) or 1.0
    top, share = _top_group(ph)
    units = sorted({o.unit for o in ph.ops if o.rec.kind in ("linalg", "moe")})
    peak = max((o.peak_flops_per_s for o in ph.ops if o.rec.kind in ("linalg", "moe")),
               default=0.0)
    rate = f" on the {'/'.join(units)} units ({fmt_rate(peak * r.tp)} peak)" if units else ""
    return (f"**Prefill** of {r.prompt:,} tokens × batch {r.batch} is **{ph.bound}-bound**: "
            f"{_pct(t[ph.bound] / total)} of its roofline time is in {ph.bound}-bound ops, the "
            f"largest share in {top} ({_pct(share)}){rate}. Time to first token: "
            f"{fmt_s(ph.roofline_s)} at datasheet peaks, **{fmt_s(ph.time_s)}** expected with "
            f"{dev.name}'s efficiency factors ({_pct(dev.eff('matmul'))} of peak for matmuls, "
            f"{_pct(dev.eff('attention'))} for attention).")


def decode_sentence(r: Report) -> str:
    ph = r.decode
    if ph is None:
        return ""
    w = sum(o.rec.weight_bytes * o.rec.count for o in ph.ops) * r.tp
    kv = sum(o.rec.kv_bytes * o.rec.count for o in ph.ops) * r.tp
    where = ph.placement
    wtxt = ("weights are hardwired (no traffic)" if where.weights.hardwired
            else f"{fmt_bytes(w)} of weights from {where.weights.name}")
    kvtxt = f"{fmt_bytes(kv)} of KV cache ({r.batch} × {r.context:,} tokens)"
    if where.weights is where.kv:
        core = (f"**Decode** is **{ph.bound}-bound**: each step reads {fmt_bytes(w)} of weights "
                f"and {kvtxt} from {where.kv.name} at "
                f"{fmt_rate(where.kv.bytes_per_s * r.tp, 'B/s')}")
    else:
        core = (f"**Decode** is **{ph.bound}-bound**: each step reads {wtxt} and {kvtxt} from "
                f"{where.kv.name} ({fmt_rate(where.kv.bytes_per_s * r.tp, 'B/s')})")
    if ph.bound == "compute":
        core = (f"**Decode** is **compute-bound** at batch {r.batch}: each step does "
                f"{fmt_flops(ph.flops)}")
    tps = r.batch / ph.time_s if ph.time_s else float("inf")
    return (f"{core}; {fmt_s(ph.roofline_s)} per step at peak, **{fmt_s(ph.time_s)}** "
            f"expected: {tps:,.1f} tokens/s{' for the batch' if r.batch > 1 else ''}.")


def memory_sentence(r: Report) -> str:
    m = r.memory
    if not m.fits:
        return (f"**It does not fit**: {fmt_bytes(m.weight_bytes)} of weights per device "
                f"need {fmt_bytes(m.missing_bytes)} more than the {fmt_bytes(m.capacity_bytes)} "
                f"({fmt_bytes(m.reserved_bytes)} reserved); use --tp or a smaller --quant.")
    if r.kv_bytes_per_token is None:
        return f"Weights take {fmt_bytes(m.weight_bytes)} per device."
    n = r.max_concurrent_requests
    lc = r.longctx
    s = (f"After {fmt_bytes(r.prefill_w.weight_bytes)} of weights, {fmt_bytes(m.kv_capacity_bytes)}"
         f" hold KV cache at {fmt_bytes(r.kv_bytes_per_token)} per token: **{n} concurrent "
         f"request{'s' if n != 1 else ''}** at {r.context:,} tokens")
    if lc is not None:
        s += (f" (one request can hold at most "
              f"{fmt_tokens(lc.crossovers['max_context_one_request'])} tokens)")
    sw = r.context_switch_s
    link = r.device.host_link
    if sw is not None and link is not None:
        s += (f". Swapping one request's KV out to host memory and another's in costs "
              f"{fmt_s(sw)} over {link.name}")
    return s + "."


def crossover_sentence(r: Report) -> str:
    lc = r.longctx
    if lc is None:
        return ""
    c = lc.crossovers
    return (f"As context grows, the KV cache outweighs the weights in decode traffic beyond "
            f"**{fmt_tokens(c['kv_dominates_decode_from'])} tokens** (batch {r.batch}), and "
            f"attention overtakes the matmuls in prefill beyond "
            f"**{fmt_tokens(c['attention_dominates_prefill_from'])} tokens**.")


def bounds_paragraph(r: Report) -> str:
    """The short "what bounds you" section of a report."""
    parts = [prefill_sentence(r), decode_sentence(r), memory_sentence(r), crossover_sentence(r)]
    if r.tp > 1:
        pre = r.prefill.time_by_bound()["interconnect"]
        dec = r.decode.time_by_bound()["interconnect"] if r.decode else 0.0
        parts.append(f"Tensor parallelism over {r.tp} devices: the all-reduces over "
                     f"{r.device.scale_up.name} take {fmt_s(pre)} of prefill and {fmt_s(dec)} "
                     f"of each decode step.")
    return "\n\n".join(p for p in parts if p)
