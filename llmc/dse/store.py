"""A sweep's output directory: rows streamed as they finish, tables at the end.

    DIR/points.jsonl   one JSON row per computed point, appended (and flushed
                       to disk) as results arrive, keyed by the point's hash;
                       a rerun reads it first and computes only what is missing
    DIR/sweep.jsonl    the final table: one row per point of the spec, in
    DIR/sweep.csv      grid order, with the Pareto column (also sweep.parquet
                       when pyarrow is installed)
    DIR/pareto.png     tokens/J against tokens/s, area as colour, front marked
    DIR/summary.json   the spec, counts (computed now, reused) and the front

The final files are each written beside and renamed into place, so a reader
never sees half a table. A torn last line of points.jsonl (a sweep killed
while writing) is dropped and its point computed again. The directory is
refused, before any work, if it is not empty and holds no points.jsonl.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from llmc.errors import UsageError

MARKER = "points.jsonl"


class Store:
    """The streamed rows of one output directory."""

    def __init__(self, out: str | Path) -> None:
        from llmc.outdir import check_dest

        self.dir = check_dest(out, MARKER)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create {self.dir}: {exc.strerror}") from None
        self.path = self.dir / MARKER
        self.rows: dict[str, dict] = {}
        good = 0
        if self.path.is_file():
            data = self.path.read_bytes()
            for line in data.split(b"\n"):
                try:
                    row = json.loads(line)
                except ValueError:
                    break  # a torn last line: everything after it is dropped
                self.rows.setdefault(row["hash"], row)
                good += len(line) + 1
            if good < len(data):
                with open(self.path, "r+b") as f:
                    f.truncate(min(good, len(data)))
        self._f = open(self.path, "ab")  # noqa: SIM115 - closed by close()

    def __contains__(self, h: str) -> bool:
        return h in self.rows

    def add(self, rows: Iterable[dict]) -> int:
        """Append the rows not yet held (one line each, flushed and synced);
        returns how many were new."""
        new = [r for r in rows if r["hash"] not in self.rows]
        if not new:
            return 0
        for r in new:
            self.rows[r["hash"]] = r
        self._f.write(b"".join(json.dumps(r, sort_keys=True).encode() + b"\n" for r in new))
        self._f.flush()
        os.fsync(self._f.fileno())
        return len(new)

    def close(self) -> None:
        self._f.close()


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write `path` beside itself, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    if isinstance(content, bytes):
        tmp.write_bytes(content)
    else:
        tmp.write_text(content)
    os.replace(tmp, path)


def table_csv(rows: Sequence[dict], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    w.writerows({k: r.get(k) for k in columns} for r in rows)
    return buf.getvalue()


def table_jsonl(rows: Sequence[dict], columns: Sequence[str]) -> str:
    return "".join(json.dumps({k: r.get(k) for k in columns}) + "\n" for r in rows)


def table_parquet(rows: Sequence[dict], columns: Sequence[str]) -> bytes | None:
    """The table as Parquet, or None when pyarrow is not installed."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    t = pa.Table.from_pylist([{k: r.get(k) for k in columns} for r in rows])
    sink = pa.BufferOutputStream()
    pq.write_table(t, sink)
    return sink.getvalue().to_pybytes()
