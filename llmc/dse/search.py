"""Multi-objective search over a spec's axes (Optuna's NSGA-II).

Instead of every point of the grid, NSGA-II proposes generations of points
(one value per axis) and keeps the ones no other beats on tokens/J, tokens/s
and area. Each generation runs on the same engine as a grid sweep and goes
into the same store (DIR/points.jsonl, keyed by point hash), so a point the
search proposes twice, or that an earlier grid or search computed, is not
computed again. The search stops after `trials` distinct points. Points that
do not fit, or that llmc refuses, are infeasible (Optuna's constraints), not
errors.

`hypervolume_ratio` compares a search's front with a grid's in the grid's
normalised log space (llmc.dse.pareto).
"""

from __future__ import annotations

import time
from pathlib import Path

from llmc.dse.pareto import bounds, front, hypervolume, normalise, objectives
from llmc.dse.run import Outcome, Progress, compute, write_tables
from llmc.dse.spec import AXES, Spec, make_point
from llmc.dse.store import Store
from llmc.errors import UsageError

SEARCH_INSTALL = "pip install 'llmc[search]' (or: pip install 'optuna>=4')"


def _optuna():  # noqa: ANN202
    try:
        import optuna
    except ImportError:
        raise UsageError(f"--search needs Optuna, which is not installed: {SEARCH_INSTALL}"
                         ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _index(spec: Spec, values: dict) -> int:
    """The point's position in the grid (mixed radix over AXES)."""
    i = 0
    for k in AXES:
        vals = spec.axes[k]
        i = i * len(vals) + vals.index(values[k])
    return i


def search(spec: Spec, out: str | Path, engine, *, trials: int | None = None,  # noqa: ANN001
           seed: int = 0, population: int | None = None, chunk: int | None = None,
           progress: Progress | None = None) -> Outcome:
    """NSGA-II over the spec's axes until `trials` distinct points (default a
    tenth of the grid) are evaluated; the evaluated points' table written."""
    optuna = _optuna()
    trials = trials if trials is not None else max(1, spec.size // 10)
    if trials <= 0:
        raise UsageError(f"--trials must be positive, got {trials}")
    trials = min(trials, spec.size)
    pop = population or max(4, min(50, trials // 5))
    free = [k for k in AXES if len(spec.axes[k]) > 1]
    # Optuna 5 takes constraints on the trial; Optuna 4 through the sampler
    new_api = hasattr(optuna.trial.Trial, "set_constraint")
    sampler = optuna.samplers.NSGAIISampler(
        population_size=pop, seed=seed, constraints_func=None if new_api else
        (lambda t: t.user_attrs.get("violation", [1.0])))
    study = optuna.create_study(directions=["maximize", "maximize", "minimize"],
                                sampler=sampler)
    store = Store(out)
    evaluated: dict[str, dict] = {}
    computed, stale = 0, 0
    t0 = time.perf_counter()
    try:
        while len(evaluated) < trials and stale < 20:
            batch = []
            for _ in range(pop):
                t = study.ask()
                values = {k: spec.axes[k][0] for k in AXES}
                for k in free:
                    pick = t.suggest_categorical(k, list(range(len(spec.axes[k]))))
                    values[k] = spec.axes[k][pick]
                batch.append((t, make_point(spec, values)))
            new = [p for _, p in batch if p["hash"] not in evaluated]
            room = trials - len(evaluated)
            keep = list({p["hash"]: p for p in new}.values())[:room]
            computed += compute(spec, keep, store, engine, chunk)
            for p in keep:
                evaluated[p["hash"]] = p
            stale = 0 if keep else stale + 1
            for t, p in batch:
                if p["hash"] not in evaluated:
                    study.tell(t, state=optuna.trial.TrialState.PRUNED)
                    continue
                o = objectives(store.rows[p["hash"]])
                if new_api:
                    t.set_constraint("infeasible", 0.0 if o is not None else 1.0)
                else:
                    t.set_user_attr("violation", [0.0 if o is not None else 1.0])
                study.tell(t, list(o) if o is not None else [0.0, 0.0, 0.0])
            if progress:
                progress(len(evaluated), trials)
        seconds = time.perf_counter() - t0
        pts = sorted(evaluated.values(), key=lambda p: _index(spec, p))
        rows = [dict(store.rows[p["hash"]]) for p in pts]
    finally:
        store.close()
    files, n_front = write_tables(store.dir, rows, spec, {
        "engine": engine.name, "workers": engine.workers, "computed": computed,
        "reused": len(rows) - computed, "seconds": round(seconds, 3),
        "search": {"sampler": "nsga2", "trials": trials, "population": pop, "seed": seed,
                   "evaluated": len(rows), "grid": spec.size}})
    return Outcome(len(rows), computed, len(rows) - computed, seconds, n_front, files)


def hypervolume_ratio(grid_rows: list[dict], search_rows: list[dict]) -> dict:
    """The search front's hypervolume over the grid front's, both in the grid's
    normalised log10 box (reference point: its worst corner), one model."""
    g = [o for o in map(objectives, grid_rows) if o is not None]
    s = [o for o in map(objectives, search_rows) if o is not None]
    if not g:
        raise UsageError("the grid has no point with all three objectives")
    lo, hi = bounds(g)
    gz = normalise([g[i] for i in front(g)], lo, hi)
    hv_grid = hypervolume(gz)
    hv_search = hypervolume(normalise([s[i] for i in front(s)], lo, hi)) if s else 0.0
    return {"grid_hv": float(hv_grid), "search_hv": float(hv_search),
            "ratio": float(hv_search / hv_grid) if hv_grid else 0.0,
            "grid_front": len(gz), "search_front": len(front(s)) if s else 0}
