"""report.md: the report as readable markdown tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmc.costmodel.explain import (
    bounds_paragraph,
    fmt_bytes,
    fmt_flops,
    fmt_rate,
    fmt_s,
    fmt_tokens,
)
from llmc.costmodel.render_json import by_group, op_rows
from llmc.costmodel.roofline import PhaseResult

if TYPE_CHECKING:
    from llmc.costmodel.longctx import LongContext
    from llmc.costmodel.report import Report

PLOTS = (("roofline.png", "Roofline: every op placed by arithmetic intensity"),
         ("breakdown.png", "Where time and energy go, per phase"),
         ("context_sweep.png", "Long-context sweep: the four bounds of Fu 2024"))


def table(head: list[str], rows: list[list[Any]], align: str = "") -> list[str]:
    """A markdown table; align: one char per column, l or r (default l then r)."""
    align = align or "l" + "r" * (len(head) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    return (["| " + " | ".join(head) + " |", "| " + " | ".join(sep) + " |"]
            + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def header(r: Report) -> list[str]:
    d = r.device
    ctx = f"decode reads a KV cache of {r.context:,} tokens"
    tp = f" · tensor parallel over {r.tp} devices" if r.tp > 1 else ""
    return [f"# {r.model} on {r.target}", "",
            f"{d.description} (`{d.name}`){tp}. Batch {r.batch} · prompt {r.prompt:,} tokens · "
            f"{r.output:,} output tokens · {ctx}. Precision: {r.precision.describe()}.", ""]


def summary(r: Report) -> list[str]:
    pre, dec = r.prefill, r.decode
    rows = [["prefill (time to first token)", fmt_s(pre.roofline_s), fmt_s(pre.time_s),
             pre.bound, f"{pre.energy_j:,.3g} J", f"{pre.power_w:,.0f} W"]]
    if dec is not None:
        tps = r.batch / dec.time_s
        rows.append(["decode (time per output token)", fmt_s(dec.roofline_s),
                     f"{fmt_s(dec.time_s)} ({tps:,.1f} tokens/s)", dec.bound,
                     f"{dec.energy_j / r.batch:,.3g} J/token", f"{dec.power_w:,.0f} W"])
        e2e = pre.time_s + r.output * dec.time_s
        energy = pre.energy_j + r.output * dec.energy_j
        rows.append([f"end to end (prompt + {r.output:,} tokens)", "", fmt_s(e2e), "",
                     f"{energy:,.3g} J", ""])
    return ["## Summary", ""] + table(["phase", "roofline (peaks)", "expected", "bound",
                                       "energy", "power"], rows) + [""]


def memory(r: Report) -> list[str]:
    m, d = r.memory, r.device
    rows = [["parameters (total / active per token)",
             f"{r.prefill_w.params_total:,} / {r.prefill_w.params_active:,}"],
            [f"weights ({r.precision.weight.name})",
             f"{fmt_bytes(r.prefill_w.weight_bytes)} in {m.weights_level}"
             + (f" ({fmt_bytes(m.weight_bytes)} per device)" if r.tp > 1 else "")],
            ["memory per device (weight levels) / reserved",
             f"{fmt_bytes(m.capacity_bytes)} / {fmt_bytes(m.reserved_bytes)}"]]
    if r.kv_bytes_per_token is not None:
        c = r.config
        rows += [["KV cache per token (2·L·G·D·b)", f"{r.kv_bytes_per_token:,.0f} B"
                  + (f" = 2·{c.n_layers}·{c.n_kv_heads}·{c.head_dim}·{r.precision.kv.bits / 8:g}"
                     if c else "")],
                 [f"KV cache per request ({r.context:,} tokens)",
                  fmt_bytes(r.kv_bytes_per_token * r.context)],
                 ["free for KV after weights", fmt_bytes(max(0.0, m.kv_capacity_bytes))],
                 [f"concurrent requests at {r.context:,} tokens", f"{r.max_concurrent_requests:,}"]]
        if d.host_link is not None:
            rows.append([f"context switch over {d.host_link.name} (KV out + KV in)",
                         fmt_s(r.context_switch_s)])
    if not m.fits:
        rows.append(["**missing**", f"**{fmt_bytes(m.missing_bytes)}**"])
    return ["## Memory", ""] + table(["", "value"], rows) + [""]


PLAN_REGIONS = (("weights", "weights"), ("constants", "constants"), ("kv_cache", "KV cache"),
                ("inputs", "inputs"))


def plan_method(m: dict[str, Any]) -> str:
    """The method that made a plan and what it proved: "cpsat, optimal",
    "cpsat, gap 1.2%" (to the proved bound)."""
    if "optimal" not in m:
        return m["method"]
    if m["optimal"]:
        return f"{m['method']}, optimal"
    return m["method"] + (f", gap {m['gap']:.1%}" if m.get("gap") is not None else "")


def memory_plan(r: Report) -> list[str]:
    """The compile's memory plans, planned at the precision costed above: the
    activation arena against its lower bound, and the regions laid out apart."""
    mp = r.memory_plan
    if mp is None:
        return []
    rows = []
    for ph, m in mp.plans.items():
        regions = m["static"]["regions"]
        rows.append([ph, fmt_bytes(m["arena_bytes"]), fmt_bytes(m["lower_bound_bytes"]),
                     f"{m['ratio']:.4f}", plan_method(m),
                     *(fmt_bytes(regions[k]["bytes"]) for k, _ in PLAN_REGIONS)])
    how = {m["precision"]["describe"] for m in mp.plans.values()}
    out = ["## Memory plan", "",
           f"Planned at the precision costed above ({'; '.join(sorted(how))}): every "
           "intermediate tensor has an offset in one activation arena; weights, constant "
           "tables, the KV cache and the inputs are laid out apart, one packed region each.", ""]
    out += table(["phase", "activation arena", "lower bound", "ratio", "method",
                  *(label for _, label in PLAN_REGIONS)], rows, "lrrrlrrrr") + [""]
    pics = [f"![Memory plan, {ph}: activation buffers by step and address]({f})"
            for ph in mp.plans for f in [f"plan_{ph}.png"] if f in mp.pictures]
    if pics:
        out += pics + [""]
    return out + ["Data: plan.json (every buffer's offset; each region's tensors with their "
                  "offsets under `static`).", ""]


def phase(ph: PhaseResult, w: Any, title: str, top: int = 12) -> list[str]:
    groups = by_group(ph)
    total = sum(g["time_s"] for g in groups.values()) or 1.0
    rows = [[k, fmt_s(g["time_s"]), f"{100 * g['time_s'] / total:.1f}%", fmt_flops(g["flops"]),
             fmt_bytes(g["bytes"]), f"{g['energy_j']:,.3g} J"]
            for k, g in sorted(groups.items(), key=lambda kv: -kv[1]["time_s"])]
    kernels = sum(r.count for r in w.records)
    fused_ops = sum(r.count * r.fused for r in w.records)
    out = [f"## {title}", "", f"{w.nodes:,} graph nodes run as {kernels:,} kernels "
           f"({fused_ops - kernels:,} elementwise ops fused into their producers, their "
           f"intermediates kept on chip); {fmt_flops(ph.flops)}, "
           f"{fmt_bytes(ph.bytes)} moved ("
           + ", ".join(f"{k} {fmt_bytes(v)}" for k, v in sorted(ph.bytes_by_level().items()))
           + ").", ""]
    out += table(["group", "time", "share", "FLOPs", "bytes", "energy"], rows) + [""]
    ops = [[f"`{o['op']}`", f"`{o['loc'] or '—'}`", o["count"], fmt_flops(o["flops"]),
            fmt_bytes(o["bytes"]), "—" if o["intensity"] is None else f"{o['intensity']:,.1f}",
            f"{o['bound']} ({o['unit']})", fmt_s(o["time_s"]), f"{100 * o['share']:.1f}%"]
           for o in op_rows(ph, top)]
    out += [f"Top {min(top, len(ph.ops))} ops by time (counts merge identical ops across "
            "layers; per device):", ""]
    return out + table(["op", "where", "×", "FLOPs", "bytes", "FLOP/B", "bound", "time",
                        "share"], ops, "llrrrrlrr") + [""]


def long_context(r: Report) -> list[str]:
    lc = r.longctx
    if lc is None:
        return []
    out = ["## Long context (Fu 2024, arXiv 2405.08944)", "",
           f"One bound per metric, analytic from the config, at datasheet peaks ×{r.tp} "
           f"device{'s' if r.tp > 1 else ''}; decode at batch {lc.batch}.", ""]
    out += [f"- `{k}` = {v}" for k, v in lc.formulas.items()] + [""]
    rows = [[fmt_tokens(p.context), fmt_bytes(p.kv_bytes_per_request),
             f"{p.max_concurrent_requests:,}",
             fmt_s(p.prefill_s), fmt_s(p.decode_s), fmt_s(p.switch_s)] for p in lc.points]
    out += table(["context", "KV / request", "concurrent requests", "prefill (FLOP bound)",
                  "decode step (bandwidth bound)", "context switch (host link)"], rows) + [""]
    c = lc.crossovers
    out += ["Where each bound takes over:", "",
            f"- attention FLOPs exceed the matmuls' in prefill beyond "
            f"{fmt_tokens(c['attention_dominates_prefill_from'])} tokens;",
            f"- KV reads exceed weight reads in decode beyond "
            f"{fmt_tokens(c['kv_dominates_decode_from'])} tokens (batch {lc.batch});",
            f"- one request's KV no longer fits beyond "
            f"{fmt_tokens(c['max_context_one_request'])} tokens ({fmt_bytes(max(0, lc.kv_capacity_bytes))} free);",
            f"- a context switch costs more than a decode step beyond "
            f"{fmt_tokens(c['switch_exceeds_decode_step_from'])} tokens.", ""]
    out += compression(r, lc)
    return out


def compression(r: Report, lc: LongContext) -> list[str]:
    z = lc.compressed
    if z is None:
        return []
    a, b = lc.at(r.context), z.at(r.context)
    ratio = lc.kv_bytes_per_token / z.kv_bytes_per_token
    rows = [["KV per token", f"{lc.kv_bytes_per_token:,.0f} B", f"{z.kv_bytes_per_token:,.0f} B"],
            ["concurrent requests", a.max_concurrent_requests, b.max_concurrent_requests],
            ["longest context for one request",
             fmt_tokens(lc.crossovers["max_context_one_request"]),
             fmt_tokens(z.crossovers["max_context_one_request"])],
            ["decode step", fmt_s(a.decode_s), fmt_s(b.decode_s)],
            ["context switch", fmt_s(a.switch_s), fmt_s(b.switch_s)]]
    return ([f"KV-cache compression at {r.context:,} tokens: {lc.precision.kv.name} vs "
             f"{z.precision.kv.name} ({ratio:.2f}× {'smaller' if ratio > 1 else 'larger'}):", ""]
            + table(["", lc.precision.kv.name, z.precision.kv.name], rows) + [""])


def device_figures(r: Report) -> list[str]:
    d = r.device
    rows = [[f"compute.{k}", fmt_rate(u.flops_per_s)
             + (f" ({fmt_rate(u.sparse_flops_per_s)} 2:4)" if u.sparse_flops_per_s else ""),
             f"{u.energy_pj_per_flop:g} pJ/FLOP", u.source] for k, u in d.compute.items()]
    rows += [[f"memory.{m.name}", "hardwired" if m.hardwired else
              f"{fmt_bytes(m.capacity_bytes)} at {fmt_rate(m.bytes_per_s, 'B/s')}",
              f"{m.energy_pj_per_byte:g} pJ/B", m.source] for m in d.memory]
    rows += [[f"efficiency.{k}", f"{f.value:g}", "", f.source] for k, f in d.efficiency.items()]
    rows += [["power", f"TDP {d.tdp_w.value:g} W, idle {d.idle_w.value:g} W", "",
              f"{d.tdp_w.source}; {d.idle_w.source}"]]
    for role, link in (("scale-up link", d.scale_up), ("host link", d.host_link)):
        if link:
            rows.append([role, f"{link.name}: {fmt_rate(link.bytes_per_s, 'B/s')} per direction",
                         f"{link.energy_pj_per_byte:g} pJ/B", link.source])
    return ["## Device figures and their sources", ""] + table(
        ["figure", "value", "energy", "source"], [[c.replace("|", "/") if isinstance(c, str)
                                                   else c for c in row] for row in rows],
        "llll") + [""]


def report_md(r: Report) -> str:
    lines = header(r) + ["## What bounds you", "", bounds_paragraph(r), ""]
    lines += summary(r) + memory(r) + memory_plan(r)
    lines += phase(r.prefill, r.prefill_w, "Prefill: where the time goes")
    if r.decode is not None:
        lines += phase(r.decode, r.decode_w, "Decode (one step): where the time goes")
    lines += long_context(r)
    shown = [(f, t) for f, t in PLOTS if f != "context_sweep.png" or r.longctx is not None]
    lines += ["## Plots", ""] + [f"![{t}]({f})" for f, t in shown] + [""]
    lines += device_figures(r)
    if r.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in r.notes] + [""]
    return "\n".join(lines)
