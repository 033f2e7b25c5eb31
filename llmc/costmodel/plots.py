"""The report's plots as PNG bytes (matplotlib, Agg, deterministic).

Same inputs give the same bytes: fixed size and DPI, no timestamps or
software tags in the PNG metadata, fixed colours and draw order.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

from llmc.costmodel.explain import fmt_tokens
from llmc.costmodel.render_json import by_group, group

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from llmc.costmodel.report import Report

DPI = 110
GROUP_COLORS = {
    "attn proj": "#4C72B0", "ffn": "#55A868", "ffn (experts)": "#2E8B57", "matmul": "#937860",
    "attention": "#C44E52", "lm head": "#8172B2", "kv write": "#CCB974", "norm": "#64B5CD",
    "embedding": "#DD8452", "elementwise": "#A0A0A0", "tp all-reduce": "#333333",
}
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold", "axes.grid": True,
         "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
         "legend.fontsize": 8, "legend.frameon": False, "figure.dpi": DPI,
         "svg.hashsalt": "llmc", "path.simplify": False}


def _mpl():  # noqa: ANN202 - matplotlib is imported lazily (it costs ~1 s)
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _has_positive_data(ax) -> bool:  # noqa: ANN001
    for line in ax.get_lines():
        ys = [y for y in line.get_ydata() if isinstance(y, int | float) and math.isfinite(y)]
        if any(y > 0 for y in ys):
            return True
    return False


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes without metadata that would change run to run."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    _mpl().close(fig)
    return buf.getvalue()


def roofline(r: Report) -> bytes:
    """Attainable FLOP/s against arithmetic intensity, every op placed on it."""
    plt = _mpl()
    dev = r.device
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        phases = [(r.prefill, "o", "prefill")] + ([(r.decode, "^", "decode")] if r.decode else [])
        ops = [(o, m, name) for ph, m, name in phases for o in ph.ops
               if o.rec.flops > 0 and o.rec.bytes > 0 and o.time_s > 0]
        if not ops:
            ax.text(0.5, 0.5, "no op does arithmetic", ha="center", transform=ax.transAxes)
            return png(fig)
        xs = [o.intensity for o, _, _ in ops]
        lo, hi = min(xs) / 3, max(xs) * 3
        main = r.prefill.placement.weights if not r.prefill.placement.weights.hardwired \
            else r.prefill.placement.kv
        units = sorted({o.unit for o, _, _ in ops},
                       key=lambda u: -dev.compute[u].flops_per_s if u in dev.compute else 0)
        grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
        top_peak = max(dev.compute[u].flops_per_s for u in units if u in dev.compute)
        for k, u in enumerate(u for u in units if u in dev.compute):
            peak = dev.compute[u].flops_per_s
            ax.plot(grid, [min(peak, x * main.bytes_per_s) for x in grid],
                    color="black", lw=1.6 if k == 0 else 1.0, ls="-" if k == 0 else "--",
                    label=f"{u} peak {peak / 1e12:,.3g} TFLOP/s" + (
                        f" · {main.name} {main.bytes_per_s / 1e12:,.3g} TB/s" if k == 0 else ""))
            if k == 0:
                ridge = peak / main.bytes_per_s
                ax.axvline(ridge, color="black", lw=0.6, ls=":")
                ax.annotate(f"ridge {ridge:,.0f} FLOP/B", (ridge, 0.02),
                            xycoords=("data", "axes fraction"), xytext=(4, 0),
                            textcoords="offset points", fontsize=8)
        used = {lvl for o, _, _ in ops for lvl in o.bytes_by_level} - {main.name}
        for m in dev.memory:
            if m.name in used and not m.hardwired:
                ax.plot(grid, [min(top_peak, x * m.bytes_per_s) for x in grid], color="#777777",
                        lw=0.9, ls=":", label=f"{m.name} {m.bytes_per_s / 1e12:,.3g} TB/s "
                                              "(activations that fit)")
        total = {name: ph.time_s for ph, _, name in phases}
        seen = set()
        for o, marker, name in sorted(ops, key=lambda t: -t[0].time_s * t[0].rec.count):
            g = group(o)
            share = o.time_s * o.rec.count / total[name]
            ax.scatter(o.intensity, o.rec.flops / o.time_s, marker=marker,
                       s=12 + 400 * share, color=GROUP_COLORS.get(g, "#777777"),
                       edgecolor="white", lw=0.5, alpha=0.9, zorder=3,
                       label=g if g not in seen else None)
            seen.add(g)
        for _, _, name in phases:
            top = max((o for o, _, n in ops if n == name), key=lambda o: o.time_s * o.rec.count,
                      default=None)
            if top is None:
                continue
            ax.annotate(f"{name}: {top.rec.loc or top.rec.op}", (top.intensity,
                        top.rec.flops / top.time_s), xytext=(-8, -14), ha="right",
                        textcoords="offset points", fontsize=7.5, color="#333333")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("arithmetic intensity (FLOP per byte moved)")
        ax.set_ylabel("FLOP/s (lines: roofs at peak; points: expected)")
        ax.set_title(f"{r.model} on {r.target}: roofline "
                     "(○ prefill, △ decode; area ∝ share of phase time)")
        ax.set_ylim(bottom=min(o.rec.flops / o.time_s for o, _, _ in ops) / 5)
        legend = ax.legend(loc="lower right", ncol=2, fontsize=7.5)
        for handle in legend.legend_handles:
            if hasattr(handle, "set_sizes"):
                handle.set_sizes([30])
        fig.subplots_adjust(left=0.1, right=0.98, bottom=0.1, top=0.93)
        return png(fig)


def breakdown(r: Report) -> bytes:
    """Share of time and energy by op group, prefill and one decode step."""
    plt = _mpl()
    phases = [("prefill", r.prefill)] + ([("decode step", r.decode)] if r.decode else [])
    data = {name: by_group(ph) for name, ph in phases}
    groups = [g for g in GROUP_COLORS if any(g in d for d in data.values())]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(8.5, 1.2 + 0.7 * len(phases)), sharey=True)
        for ax, key, unit in ((axes[0], "time_s", "time"), (axes[1], "energy_j", "energy")):
            for y, (name, _) in enumerate(phases):
                total = sum(v[key] for v in data[name].values()) or 1.0
                left = 0.0
                for g in groups:
                    v = data[name].get(g, {}).get(key, 0.0) / total
                    ax.barh(y, v, left=left, color=GROUP_COLORS[g], edgecolor="white", lw=0.5,
                            label=g if (y == 0 and unit == "time") else None)
                    if v > 0.08:
                        ax.text(left + v / 2, y, f"{100 * v:.0f}%", ha="center", va="center",
                                fontsize=7.5, color="white")
                    left += v
                label = _fmt_total(total, key)
                ax.text(1.01, y, label, va="center", fontsize=8)
            ax.set_xlim(0, 1)
            ax.set_yticks(range(len(phases)), [n for n, _ in phases])
            ax.invert_yaxis()
            ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0", "25%", "50%", "75%", "100%"])
            ax.grid(axis="y", visible=False)
            ax.set_title(f"share of {unit}")
        fig.legend(loc="lower center", ncol=min(6, len(groups)), bbox_to_anchor=(0.5, 0.0))
        fig.suptitle(f"{r.model} on {r.target}: where time and energy go", fontweight="bold",
                     fontsize=10)
        rows = -(-len(groups) // 6)                        # legend rows under the bars
        h = fig.get_figheight()
        fig.subplots_adjust(left=0.12, right=0.93, wspace=0.18, top=1 - 0.62 / h,
                            bottom=(0.5 + 0.2 * rows) / h)
        return png(fig)


def _fmt_total(v: float, key: str) -> str:
    from llmc.costmodel.explain import fmt_s

    return fmt_s(v) if key == "time_s" else f"{v:,.3g} J"


def context_sweep(r: Report) -> bytes:
    """Fu 2024's four bounds against context length, with KV compression."""
    from llmc.costmodel.longctx import point

    plt = _mpl()
    lc = r.longctx
    assert lc is not None
    xs = [int(4096 * 2 ** (i / 4)) for i in range(33)]           # 4K ... 1M, 4 per octave
    if r.context < xs[0]:
        xs.insert(0, r.context)
    variants = [(lc, "-", "#4C72B0")] + ([(lc.compressed, "--", "#DD8452")]
                                         if lc.compressed else [])
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2, 2, figsize=(9, 6.2))
        panels = axes.ravel()
        for v, ls, color in variants:
            pts = [point(v.config, v.device, v.precision, x, tp=v.tp, batch=v.batch,
                         capacity=v.kv_capacity_bytes) for x in xs]
            lab = f"KV {v.precision.kv.name}"
            conc = [p.max_concurrent_requests if p.max_concurrent_requests > 0 else math.nan
                    for p in pts]
            panels[0].step(xs, conc, where="post", ls=ls, color=color, label=lab)
            panels[1].plot(xs, [p.prefill_s for p in pts], ls=ls, color=color,
                           label=f"{lab}: FLOP bound")
            panels[2].plot(xs, [p.decode_s * 1e3 for p in pts], ls=ls, color=color, label=lab)
            panels[3].plot(xs, [p.switch_s for p in pts], ls=ls, color=color, label=lab)
        first = [point(lc.config, lc.device, lc.precision, x, tp=lc.tp, batch=lc.batch,
                       capacity=lc.kv_capacity_bytes) for x in xs]
        panels[1].plot(xs, [p.prefill_expected_s for p in first], ls=":", color="#4C72B0",
                       label="expected (efficiency factors)")
        c = lc.crossovers
        marks = [(panels[1], c["attention_dominates_prefill_from"], "attention > matmuls"),
                 (panels[2], c["kv_dominates_decode_from"], "KV > weights"),
                 (panels[0], c["max_context_one_request"], "1 request fills memory")]
        for ax, x, text in marks:
            if xs[0] <= x <= xs[-1]:
                ax.axvline(x, color="#C44E52", lw=0.8, ls=":")
                ax.annotate(text, (x, 0.92), xycoords=("data", "axes fraction"),
                            xytext=(3, 0), textcoords="offset points", fontsize=7.5,
                            color="#C44E52")
        titles = ["concurrent requests (memory bound)", "prefill time, s (FLOP bound)",
                  f"decode step at batch {lc.batch}, ms (bandwidth bound)",
                  "context switch, s (host-link bound)"]
        ticks = [4096 * 4 ** i for i in range(5)]
        for ax, title, where in zip(panels, titles, ("lower left", "upper left", "upper left",
                                                     "upper left"), strict=True):
            ax.set_xscale("log", base=2)
            if _has_positive_data(ax):
                ax.set_yscale("log")
            else:  # e.g. no request fits at any length: say so instead of an empty log axis
                ax.text(0.5, 0.5, "does not fit in memory", transform=ax.transAxes,
                        ha="center", va="center", color="#C44E52")
            ax.set_xticks(sorted(set(ticks)), [fmt_tokens(t) for t in sorted(set(ticks))])
            ax.minorticks_off()
            ax.set_title(title)
            ax.axvline(r.context, color="#777777", lw=0.8)
            ax.legend(loc=where)
        for ax in panels[2:]:
            ax.set_xlabel("context length (tokens)")
        fig.suptitle(f"{r.model} on {r.target} ×{lc.tp}: long-context bounds "
                     f"(grey line: context {r.context:,})", fontweight="bold", fontsize=10)
        fig.subplots_adjust(left=0.07, right=0.98, bottom=0.08, top=0.9, hspace=0.32,
                            wspace=0.18)
        return png(fig)


def report_plots(r: Report) -> dict[str, bytes]:
    out = {"roofline.png": roofline(r), "breakdown.png": breakdown(r)}
    if r.longctx is not None:
        out["context_sweep.png"] = context_sweep(r)
    return out


def compare_plot(reports: list[Report]) -> bytes:
    """Bars per target: time to first token, time per token, J/token, concurrency."""
    plt = _mpl()
    from matplotlib.ticker import FuncFormatter

    names = [r.target for r in reports]
    metrics = [
        ("time to first token, s", lambda r: r.prefill.time_s),
        ("time per output token, ms", lambda r: r.decode.time_s * 1e3 if r.decode else None),
        ("energy per output token, J",
         lambda r: r.decode.energy_j / r.batch if r.decode else None),
        (f"concurrent requests at {fmt_tokens(reports[0].context)}",
         lambda r: r.max_concurrent_requests),
    ]
    colors = ["#4C72B0", "#55A868", "#C44E52", "#8172B2", "#DD8452", "#64B5CD", "#937860"]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(metrics), figsize=(3.0 * len(metrics), 3.4))
        for ax, (title, f) in zip(axes, metrics, strict=True):
            vals = []
            for i, r in enumerate(reports):
                v = f(r) if r.memory.fits else None
                if not v:
                    ax.text(i, 0.02, "does not fit" if not r.memory.fits else "0",
                            rotation=90, ha="center", va="bottom", fontsize=8,
                            transform=ax.get_xaxis_transform())
                    continue
                vals.append(v)
                ax.bar(i, v, color=colors[i % len(colors)], width=0.6)
                ax.annotate(f"{v:,.3g}", (i, v), ha="center", va="bottom", fontsize=7.5,
                            xytext=(0, 2), textcoords="offset points")
            if len(names) > 3:
                ax.set_xticks(range(len(names)), names, rotation=30, ha="right",
                              rotation_mode="anchor")
            else:
                ax.set_xticks(range(len(names)), names)
            if vals and max(vals) / min(vals) > 50:          # orders of magnitude apart
                ax.set_yscale("log")
                ax.set_ylim(min(vals) / 5, max(vals) * 4)
            elif vals:
                ax.set_ylim(0, max(vals) * 1.15)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.grid(axis="x", visible=False)
            ax.set_title(title, fontsize=9)
        fig.suptitle(f"{reports[0].model}: batch {reports[0].batch}, prompt "
                     f"{reports[0].prompt:,}, context {reports[0].context:,}",
                     fontweight="bold", fontsize=10)
        fig.subplots_adjust(left=0.05, right=0.99, bottom=0.24 if len(names) > 3 else 0.12,
                            top=0.82, wspace=0.3)
        return png(fig)
