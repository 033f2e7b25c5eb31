"""Design-space sweeps: models x targets x precisions x batch sizes x TP.

Each point is one cost-model report (`build_report` on the model's config,
no tracing); points run in parallel worker processes, one per core by
default. The rows (one per point, in the order of the cartesian product)
go to sweep.json / sweep.csv / sweep.md and a scatter of decode throughput
against energy per token with the Pareto front (no other point is both
faster and cheaper) marked. A point that does not fit its device is a row
with `fits` false and how much memory is missing, not an error. The Pareto
front is per model (another model is another quality).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from llmc.errors import UsageError

COLUMNS = ("model", "target", "quant", "precision", "batch", "tp", "fits", "missing_bytes",
           "ttft_s", "time_per_token_s", "tokens_per_s", "energy_j_per_token",
           "prefill_bound", "decode_bound", "max_concurrent_requests", "pareto", "error")


@dataclass(frozen=True)
class Point:
    model: str
    target: str
    quant: str | None
    batch: int
    tp: int


@dataclass(frozen=True)
class Shape:
    prompt: int | None
    output: int
    context: int | None


def points(models: Sequence[str], targets: Sequence[str], quants: Sequence[str | None],
           batches: Sequence[int], tps: Sequence[int]) -> list[Point]:
    """Every combination, checked first: an unknown model, target or
    precision is refused before anything runs."""
    from llmc.costmodel.precision import parse_quant
    from llmc.frontend.zoo.config import get_config
    from llmc.hw.database import get_device

    for m in models:
        get_config(m)
    for t in targets:
        get_device(t)
    for q in quants:
        if q is not None:
            parse_quant(q)
    for name, values in (("--batch", batches), ("--tp", tps)):
        if any(v <= 0 for v in values):
            raise UsageError(f"{name} values must be positive, got {list(values)}")
    return [Point(*p) for p in itertools.product(models, targets, quants, batches, tps)]


def run_point(point: Point, shape: Shape) -> dict:
    """One report's figures as a row (a point the model cannot run on, e.g.
    a TP degree that does not divide the heads, is a row with its error)."""
    from llmc.costmodel.report import build_report
    from llmc.frontend.zoo.config import get_config

    row: dict = {"model": point.model, "target": point.target, "quant": point.quant or "default",
                 "batch": point.batch, "tp": point.tp}
    try:
        r = build_report(None, None, get_config(point.model), point.target, batch=point.batch,
                         prompt=shape.prompt, output=shape.output, context=shape.context,
                         tp=point.tp, quant=point.quant, model=point.model)
    except UsageError as e:
        return {**dict.fromkeys(COLUMNS), **row, "fits": False, "pareto": False, "error": str(e)}
    j = r.to_json()
    pr = r.precision
    return {**row, "precision": f"w {pr.weight.name}, kv {pr.kv.name}, act {pr.act.name}"
                                + (", 2:4" if pr.sparse else ""), "fits": r.memory.fits,
            "missing_bytes": round(r.memory.missing_bytes), "ttft_s": j["prefill"]["time_s"],
            "time_per_token_s": j["decode"]["time_per_token_s"],
            "tokens_per_s": j["decode"]["tokens_per_s"],
            "energy_j_per_token": j["decode"]["energy_j_per_token"],
            "prefill_bound": j["prefill"]["bound"], "decode_bound": j["decode"]["bound"],
            "max_concurrent_requests": j["max_concurrent_requests"], "pareto": False,
            "error": None}


def _run(args: tuple[Point, Shape]) -> dict:
    return run_point(*args)


def sweep(pts: Sequence[Point], shape: Shape, jobs: int | None = None,
          progress: Callable[[str], None] | None = None) -> list[dict]:
    """Run every point (in `jobs` processes; default one per core) and mark
    the Pareto front among the points that fit."""
    jobs = jobs or os.cpu_count() or 1
    work = [(p, shape) for p in pts]
    step = progress or (lambda label: None)
    rows: list[dict] = []
    if jobs == 1 or len(work) == 1:
        for w in work:
            step(f"{w[0].model} {w[0].target}")
            rows.append(_run(w))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for w, row in zip(work, pool.map(_run, work), strict=True):
                step(f"{w[0].model} {w[0].target}")
                rows.append(row)
    for i in pareto(rows):
        rows[i]["pareto"] = True
    return rows


def pareto(rows: Sequence[dict]) -> list[int]:
    """Indices of the points that fit and that no other fitting point of the
    same model beats on both decode throughput (higher) and energy per token
    (lower): the best hardware and precision choices for each model."""
    front: list[int] = []
    for model in dict.fromkeys(r["model"] for r in rows):
        front += _front(rows, [i for i, r in enumerate(rows) if r["model"] == model])
    return sorted(front)


def _front(rows: Sequence[dict], among: Sequence[int]) -> list[int]:
    ok = [i for i in among if rows[i]["fits"] and rows[i]["tokens_per_s"]]
    front = []
    for i in ok:
        a = rows[i]
        if not any(rows[j]["tokens_per_s"] >= a["tokens_per_s"]
                   and rows[j]["energy_j_per_token"] <= a["energy_j_per_token"]
                   and (rows[j]["tokens_per_s"], rows[j]["energy_j_per_token"])
                   != (a["tokens_per_s"], a["energy_j_per_token"]) for j in ok):
            front.append(i)
    return front


def files(rows: Sequence[dict], shape: Shape) -> dict[str, bytes | str]:
    """sweep.json, sweep.csv, sweep.md and sweep.png."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows({k: r.get(k) for k in COLUMNS} for r in rows)
    return {"sweep.json": json.dumps({"prompt": shape.prompt, "output": shape.output,
                                      "context": shape.context, "rows": list(rows)},
                                     indent=2, sort_keys=True) + "\n",
            "sweep.csv": buf.getvalue(), "sweep.md": markdown(rows, shape),
            "sweep.png": scatter(rows)}


def markdown(rows: Sequence[dict], shape: Shape) -> str:
    head = ("| model | target | precision | batch | tp | TTFT | ms/token | tokens/s | J/token "
            "| bound (prefill / decode) | Pareto |")
    lines = ["# llmc sweep", "",
             f"Prompt {shape.prompt or 'default'}, output {shape.output}, context "
             f"{shape.context or 'prompt + output'}. Figures from llmc's cost model (expected "
             "times after the devices' efficiency factors). Pareto (★): no other point of the "
             "same model that fits has both more tokens/s and fewer J/token; sweep.png joins "
             "each model's front with a dashed line.", "", head,
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        if r["error"]:
            lines.append(f"| {r['model']} | {r['target']} | {r['quant']} | {r['batch']} | "
                         f"{r['tp']} | — | — | — | — | {r['error']} | |")
        elif not r["fits"]:
            lines.append(f"| {r['model']} | {r['target']} | {r['precision']} | {r['batch']} | "
                         f"{r['tp']} | — | — | — | — | does not fit: "
                         f"{r['missing_bytes'] / 1e9:,.1f} GB missing | |")
        else:
            lines.append(
                f"| {r['model']} | {r['target']} | {r['precision']} | {r['batch']} | {r['tp']} | "
                f"{r['ttft_s'] * 1e3:,.1f} ms | {r['time_per_token_s'] * 1e3:,.2f} | "
                f"{r['tokens_per_s']:,.0f} | {r['energy_j_per_token']:.3g} | "
                f"{r['prefill_bound']} / {r['decode_bound']} | {'★' if r['pareto'] else ''} |")
    return "\n".join(lines) + "\n"


def scatter(rows: Sequence[dict]) -> bytes:
    """Decode tokens/s against J/token, one marker per target, one colour per
    model; each model's Pareto front outlined and joined by a dashed line."""
    from llmc.costmodel.plots import STYLE, _mpl, png

    plt = _mpl()
    ok = [r for r in rows if r["fits"] and r["tokens_per_s"]]
    models = sorted({r["model"] for r in rows})
    targets = sorted({r["target"] for r in rows})
    markers = "os^Dv<>PX*"
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        cmap = plt.get_cmap("tab10")
        for r in ok:
            ax.scatter(r["energy_j_per_token"], r["tokens_per_s"],
                       color=cmap(models.index(r["model"]) % 10),
                       marker=markers[targets.index(r["target"]) % len(markers)], s=36,
                       edgecolors="black" if r["pareto"] else "none", linewidths=0.8, zorder=3)
        for i, m in enumerate(models):
            front = sorted((r for r in ok if r["pareto"] and r["model"] == m),
                           key=lambda r: r["energy_j_per_token"])
            ax.plot([r["energy_j_per_token"] for r in front], [r["tokens_per_s"] for r in front],
                    color=cmap(i % 10), lw=0.8, ls="--", zorder=2)
        if ok:
            ax.set_xscale("log")
            ax.set_yscale("log")
        for i, m in enumerate(models):
            ax.scatter([], [], color=cmap(i % 10), marker="o", label=m)
        for i, t in enumerate(targets):
            ax.scatter([], [], color="grey", marker=markers[i % len(markers)], label=t)
        ax.set_xlabel("energy per output token (J)")
        ax.set_ylabel("decode throughput (tokens/s)")
        ax.set_title(f"llmc sweep: {len(ok)} of {len(rows)} points fit")
        ax.legend(loc="best", ncol=2)
        fig.tight_layout()
    return png(fig)
