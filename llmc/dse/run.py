"""Run a sweep spec's grid on an engine into an output directory, resumably.

Points already in DIR/points.jsonl (same hash: same point, same device
file, same llmc row schema) are not computed again; the rest go to the
engine in chunks and stream into the store as they finish. The final table
holds the spec's points in grid order, whatever engine ran them and in
whatever order they finished, so the same spec gives the same bytes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llmc.dse.evaluate import COLUMNS
from llmc.dse.spec import Spec, check_size, grid
from llmc.dse.store import Store, table_csv, table_jsonl, table_parquet, write_atomic

Progress = Callable[[int, int], None]   # (points done, points in all)


@dataclass(frozen=True)
class Outcome:
    """What a run did: points in the grid, computed now, found in the store."""
    points: int
    computed: int
    reused: int
    seconds: float
    front: int
    files: tuple[str, ...]

    @property
    def points_per_s(self) -> float:
        return self.computed / self.seconds if self.seconds > 0 else 0.0


def chunks_of(spec: Spec, points: Sequence[dict], size: int) -> list[dict]:
    """The points in chunks of `size`, each with the device files it needs."""
    out = []
    for i in range(0, len(points), size):
        part = list(points[i:i + size])
        shas = sorted({p["device"] for p in part})
        out.append({"devices": {s: spec.devices[s] for s in shas}, "points": part})
    return out


def chunk_size(n: int, workers: int) -> int:
    """About 8 chunks per worker (load balance), at most 64 points each."""
    return max(1, min(64, n // (8 * max(workers, 1)) or 1))


def compute(spec: Spec, points: Sequence[dict], store: Store, engine,  # noqa: ANN001
            chunk: int | None = None, progress: Progress | None = None) -> int:
    """Compute the points the store lacks; returns how many it computed."""
    seen: set[str] = set()
    todo = []
    for p in points:
        if p["hash"] not in store and p["hash"] not in seen:
            seen.add(p["hash"])
            todo.append(p)
    total, done = len(todo), 0
    if progress:
        progress(0, total)
    computed = 0
    size = chunk or chunk_size(total, engine.workers)
    for rows in engine.run(chunks_of(spec, todo, size)):
        computed += store.add(rows)
        done += len(rows)
        if progress:
            progress(min(done, total), total)
    return computed


def run_sweep(spec: Spec, out: str | Path, engine, *, yes: bool = False,  # noqa: ANN001
              chunk: int | None = None, progress: Progress | None = None) -> Outcome:
    """The spec's grid on `engine`, into `out`; the final tables written."""
    check_size(spec, yes)
    store = Store(out)
    try:
        pts = grid(spec)
        t0 = time.perf_counter()
        computed = compute(spec, pts, store, engine, chunk, progress)
        seconds = time.perf_counter() - t0
        rows = [dict(store.rows[p["hash"]]) for p in pts]
    finally:
        store.close()
    files, front = write_tables(store.dir, rows, spec, {
        "engine": engine.name, "workers": engine.workers, "computed": computed,
        "reused": len(pts) - computed, "seconds": round(seconds, 3)})
    return Outcome(len(pts), computed, len(pts) - computed, seconds, front, files)


def write_tables(out: Path, rows: list[dict], spec: Spec, run: dict
                 ) -> tuple[tuple[str, ...], int]:
    """sweep.jsonl, sweep.csv (sweep.parquet), pareto.png, summary.json: each atomically."""
    from llmc.dse.pareto import mark, scatter

    front = mark(rows)
    files = {"sweep.jsonl": table_jsonl(rows, COLUMNS), "sweep.csv": table_csv(rows, COLUMNS)}
    pq = table_parquet(rows, COLUMNS)
    if pq is not None:
        files["sweep.parquet"] = pq
    files["pareto.png"] = scatter(rows)
    files["summary.json"] = json.dumps(
        {"spec": spec.to_json(), "points": len(rows), "run": run,
         "pareto": [rows[i]["hash"] for i in front]}, indent=2, sort_keys=True) + "\n"
    for name, content in files.items():
        write_atomic(out / name, content)
    return tuple(files), len(front)
