"""The tokens/J x tokens/s x area Pareto front, its hypervolume, its plot.

A row's objectives are tokens per joule and tokens per second (higher is
better; the cost model's when it ran, else the simulator's) and area in mm²
(lower is better). Only rows that fit and have all three take part; the
front is per model (another model is another quality).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def objectives(row: dict) -> tuple[float, float, float] | None:
    """(tokens/J, tokens/s, area mm²) of a row, or None where it has no place on a front."""
    if row.get("error") or row.get("fits") is False or row.get("area_mm2") is None:
        return None
    tpj = row.get("tokens_per_j") if row.get("tokens_per_j") is not None \
        else row.get("sim_tokens_per_j")
    tps = row.get("tokens_per_s") if row.get("tokens_per_s") is not None \
        else row.get("sim_tokens_per_s")
    if not tpj or not tps:
        return None
    return float(tpj), float(tps), float(row["area_mm2"])


def _minimised(objs: Sequence[tuple[float, float, float]]) -> np.ndarray:
    a = np.array(objs, dtype=float).reshape(-1, 3)
    return np.column_stack([-a[:, 0], -a[:, 1], a[:, 2]])


def front(objs: Sequence[tuple[float, float, float]]) -> list[int]:
    """Indices of the non-dominated objective triples.

    In lexicographic order of the minimised objectives a point can only be
    dominated by an earlier one, and if by any then by one on the front: so
    each point is checked against the front found so far, O(points x front)."""
    m = _minimised(objs)
    kept: list[int] = []
    on = np.empty((0, 3))
    for i in np.lexsort((m[:, 2], m[:, 1], m[:, 0])):
        p = m[i]
        if len(on) and np.any(np.all(on <= p, axis=1) & np.any(on < p, axis=1)):
            continue
        kept.append(int(i))
        on = np.vstack([on, p])
    return sorted(kept)


def mark(rows: Sequence[dict]) -> list[int]:
    """Set each row's "pareto" (True on its model's front); the front's indices."""
    by_model: dict[str, list[int]] = {}
    objs = [objectives(r) for r in rows]
    for i, (r, o) in enumerate(zip(rows, objs, strict=True)):
        r["pareto"] = False
        if o is not None:
            by_model.setdefault(r["model"], []).append(i)
    marked = []
    for idx in by_model.values():
        marked += [idx[j] for j in front([objs[i] for i in idx])]
    for i in marked:
        rows[i]["pareto"] = True
    return sorted(marked)


def normalise(objs: Sequence[tuple[float, float, float]], lo: np.ndarray, hi: np.ndarray
              ) -> np.ndarray:
    """Objectives to minimise in [0, 1] over the box [lo, hi] of log10 values
    (the quantities span decades): 0 is the best corner, 1 the worst."""
    m = np.log10(np.array(objs, dtype=float).reshape(-1, 3))
    span = np.where(hi > lo, hi - lo, 1.0)
    z = (m - lo) / span
    z[:, 0] = 1 - z[:, 0]   # more tokens/J is better
    z[:, 1] = 1 - z[:, 1]   # more tokens/s is better
    return z


def bounds(objs: Sequence[tuple[float, float, float]]) -> tuple[np.ndarray, np.ndarray]:
    m = np.log10(np.array(objs, dtype=float).reshape(-1, 3))
    return m.min(axis=0), m.max(axis=0)


def hypervolume(z: np.ndarray, ref: float = 1.0) -> float:
    """Volume dominated by the points `z` (to minimise) up to (ref, ref, ref):
    slices along the third objective, each a 2-D staircase."""
    z = z[np.all(z < ref, axis=1)]
    if len(z) == 0:
        return 0.0
    z = z[np.argsort(z[:, 2], kind="stable")]
    total = 0.0
    for i in range(len(z)):
        top = z[i + 1, 2] if i + 1 < len(z) else ref
        if top <= z[i, 2]:
            continue
        total += _area2d(z[: i + 1, :2], ref) * (top - z[i, 2])
    return total


def _area2d(p: np.ndarray, ref: float) -> float:
    """Area dominated by 2-D points (to minimise) up to (ref, ref)."""
    p = p[np.lexsort((p[:, 1], p[:, 0]))]
    area, best_y = 0.0, ref
    for k in range(len(p)):
        best_y = min(best_y, p[k, 1])
        xn = p[k + 1, 0] if k + 1 < len(p) else ref
        area += (xn - p[k, 0]) * (ref - best_y)
    return area


def scatter(rows: Sequence[dict]) -> bytes:
    """tokens/J against tokens/s (log-log), area as colour, the front outlined."""
    from llmc.costmodel.plots import STYLE, _mpl, png

    plt = _mpl()
    pts = [(objectives(r), r["pareto"]) for r in rows]
    pts = [(o, p) for o, p in pts if o is not None]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        if pts:
            o = np.array([p[0] for p in pts])
            on = np.array([p[1] for p in pts])
            sc = ax.scatter(o[:, 1], o[:, 0], c=o[:, 2], cmap="viridis", s=14,
                            edgecolors=np.where(on, "red", "none"), linewidths=0.8, zorder=3)
            fig.colorbar(sc, ax=ax, label="area (mm²)")
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel("decode throughput (tokens/s)")
        ax.set_ylabel("tokens per joule")
        ax.set_title(f"llmc sweep: {sum(p[1] for p in pts)} on the front of {len(pts)} "
                     f"points that fit ({len(rows)} in all)")
        fig.tight_layout()
    return png(fig)
