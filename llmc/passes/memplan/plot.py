"""A picture of a plan: buffers as rectangles in time (x) by address (y).

Drawn with matplotlib's object API (no pyplot, no global state) on the Agg
canvas, with the PNG's ``Software`` tag removed, so the same plan gives the
same bytes.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path

from llmc.passes.memplan.problem import Plan, Problem, lower_bound

_UNITS = ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"), (1, "B"))
_PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
            "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")


def _unit(nbytes: int) -> tuple[int, str]:
    return next((u, n) for u, n in _UNITS if nbytes >= 4 * u or u == 1)


def plot_plan(problem: Problem, plan: Plan, path: str | Path, title: str | None = None,
              label_min_frac: float = 0.04) -> Path:
    """Write `plan_png` to ``path``; return the path."""
    path = Path(path)
    path.write_bytes(plan_png(problem, plan, title, label_min_frac))
    return path


def plan_png(problem: Problem, plan: Plan, title: str | None = None,
             label_min_frac: float = 0.04) -> bytes:
    """A PNG of ``plan``.

    Each buffer is a rectangle over steps [start, end + 1) and bytes
    [offset, offset + size); colour by block (or name) so the repeated layers
    show. The dashed line is the lower bound, the solid one the arena. Buffers
    taller than ``label_min_frac`` of the arena are labelled.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    arena = max(plan.arena_bytes, 1)
    scale, unit = _unit(arena)
    steps = [b.start for b in problem.buffers] + [b.end + 1 for b in problem.buffers]
    t0, t1 = (min(steps), max(steps)) if steps else (0, 1)
    fig = Figure(figsize=(10, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for b in sorted(problem.buffers, key=lambda b: b.name):
        if not b.size:
            continue
        key = str(b.block) if b.block is not None else b.name
        color = _PALETTE[zlib.crc32(key.encode()) % len(_PALETTE)]
        y = plan.offsets[b.name] / scale
        ax.add_patch(Rectangle((b.start, y), b.end + 1 - b.start, b.size / scale,
                               facecolor=color, edgecolor="black", linewidth=0.3, alpha=0.85))
        if b.size >= label_min_frac * arena:
            ax.text(b.start + (b.end + 1 - b.start) / 2, y + b.size / scale / 2, b.name,
                    ha="center", va="center", fontsize=6, clip_on=True)
    lb = lower_bound(problem)
    digits = 0 if scale == 1 else 2
    ax.axhline(lb / scale, color="black", linestyle="--", linewidth=1,
               label=f"lower bound {lb / scale:,.{digits}f} {unit}")
    ax.axhline(plan.arena_bytes / scale, color="crimson", linewidth=1,
               label=f"arena {plan.arena_bytes / scale:,.{digits}f} {unit} ({plan.method})")
    ax.set_xlim(t0, max(t1, t0 + 1))
    ax.set_ylim(0, arena / scale * 1.15)  # headroom for the legend
    ax.set_xlabel("step")
    ax.set_ylabel(f"address ({unit})")
    ax.set_title(title or f"memory plan: {len(problem.buffers)} buffers, "
                 f"ratio {plan.ratio:.4f} to the lower bound")
    ax.legend(loc="upper center", ncol=2, fontsize=8, framealpha=0.9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
