"""A user's buffer list as a planning problem (``llmc plan --buffers FILE``).

JSON: a list of ``{"name", "size", "start", "end"}`` objects, or an object
``{"alignment": 64, "bank_bytes": ..., "buffers": [...]}``. CSV: a header
row naming the columns ``name,size,start,end`` (in any order). Either may
give a buffer its own ``alignment`` and a ``bank`` rule ("start" or
"within"); JSON may also list ``access``: the steps (or ``[a, b]`` step
ranges) it is read or written at, between which it may be spilled. A
plan.json's ``offset``, ``segments`` and ``block`` keys are accepted (and
the offsets ignored), so a plan can be planned again.

Any error names the file and the entry (JSON: its index and name; CSV: its
line) and nothing is planned.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from llmc.errors import UsageError
from llmc.passes.memplan.problem import BANK_RULES, Buffer, Problem

REQUIRED = ("name", "size", "start", "end")
OPTIONAL = ("alignment", "bank", "access", "block")
IGNORED = ("offset", "segments")  # plan.json's own keys
_INT = re.compile(r"^[+-]?\d+$")


def load_buffers(path: str | Path, alignment: int | None = None,
                 bank_bytes: int | None = None) -> Problem:
    """The problem in ``path`` (module docstring); ``alignment`` and
    ``bank_bytes`` override the file's (default: alignment 64, no banks; a
    CSV file can give neither)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read the buffer list ({e})") from None
    kind = path.suffix.lower()
    if kind == ".json" or (kind != ".csv" and text.lstrip()[:1] in ("[", "{")):
        rows, head = _json_rows(path, text)
    else:
        rows, head = _csv_rows(path, text), {}
    buffers: list[Buffer] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        b = _buffer(path, where, row)
        if b.name in seen:
            raise UsageError(f"{path}: {where}: buffer name {b.name!r} repeats {seen[b.name]}; "
                             "names must be unique")
        seen[b.name] = where
        buffers.append(b)
    align = alignment if alignment is not None else head.get("alignment", 64)
    try:
        return Problem(buffers, align,
                       bank_bytes if bank_bytes is not None else head.get("bank_bytes"))
    except UsageError as e:
        raise UsageError(f"{path}: {e}") from None


def _json_rows(path: Path, text: str) -> tuple[list[tuple[str, dict]], dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: "
                         f"{e.msg}); give a list of {{name, size, start, end}} objects "
                         "or a CSV file with those columns") from None
    head: dict[str, Any] = {}
    if isinstance(data, dict):
        extra = sorted(set(data) - {"buffers", "alignment", "bank_bytes"})
        if "buffers" not in data or extra:
            raise UsageError(f"{path}: a JSON object needs a 'buffers' list, with optional "
                             f"'alignment' and 'bank_bytes'" + (f" (unknown: {extra})"
                                                                 if extra else ""))
        for key in ("alignment", "bank_bytes"):
            if key in data:
                head[key] = _int(path, "the file", key, data[key])
        data = data["buffers"]
    if not isinstance(data, list):
        raise UsageError(f"{path}: expected a list of buffers, got {type(data).__name__}")
    rows = []
    for i, row in enumerate(data):
        name = row.get("name") if isinstance(row, dict) else None
        where = f"entry {i}" + (f" ({name!r})" if isinstance(name, str) else "")
        if not isinstance(row, dict):
            raise UsageError(f"{path}: {where}: expected an object with {', '.join(REQUIRED)}, "
                             f"got {type(row).__name__}")
        rows.append((where, row))
    return rows, head


def _csv_rows(path: Path, text: str) -> list[tuple[str, dict]]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    cols = [c.strip().lower() for c in header or []]
    if not header or not set(REQUIRED) <= set(cols):
        lacking = [c for c in REQUIRED if c not in cols]
        raise UsageError(f"{path}: not JSON, and not CSV with a header naming "
                         f"{', '.join(REQUIRED)} (missing {', '.join(lacking)})")
    unknown = sorted(set(cols) - set(REQUIRED) - {"alignment", "bank", "block"} - set(IGNORED))
    if unknown:
        raise UsageError(f"{path}: line 1: unknown column(s) {unknown}; use "
                         f"{', '.join(REQUIRED)}, alignment, bank")
    rows = []
    for k, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(cols):
            raise UsageError(f"{path}: line {k}: {len(cells)} fields, the header has "
                             f"{len(cols)}")
        row = {c: v.strip() for c, v in zip(cols, cells, strict=True) if v.strip() != ""}
        rows.append((f"line {k}" + (f" ({row['name']!r})" if "name" in row else ""), row))
    return rows


def _int(path: Path, where: str, key: str, v: object) -> int:
    if isinstance(v, str) and _INT.match(v.strip()):
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool):
        raise UsageError(f"{path}: {where}: {key} must be an integer, got {v!r}")
    return v


def _buffer(path: Path, where: str, row: dict) -> Buffer:
    missing = [k for k in REQUIRED if k not in row]
    if missing:
        raise UsageError(f"{path}: {where}: missing field(s) {', '.join(missing)}")
    unknown = sorted(set(row) - set(REQUIRED) - set(OPTIONAL) - set(IGNORED))
    if unknown:
        raise UsageError(f"{path}: {where}: unknown field(s) {unknown}")
    name = row["name"]
    if not isinstance(name, str) or not name:
        raise UsageError(f"{path}: {where}: name must be a non-empty string, got {name!r}")
    size, start, end = (_int(path, where, k, row[k]) for k in ("size", "start", "end"))
    if size < 0:
        raise UsageError(f"{path}: {where}: size must be non-negative, got {size}")
    if end < start:
        raise UsageError(f"{path}: {where}: end (step {end}) is before start (step {start})")
    align = None if row.get("alignment") is None else _int(path, where, "alignment",
                                                            row["alignment"])
    if align is not None and align < 1:
        raise UsageError(f"{path}: {where}: alignment must be positive, got {align}")
    bank = row.get("bank")
    if bank is not None and bank not in BANK_RULES:
        raise UsageError(f"{path}: {where}: bank must be one of {BANK_RULES}, got {bank!r}")
    access = tuple(_access(path, where, row.get("access", [])))
    block = row.get("block")
    if block is not None and (not isinstance(block, (int, str)) or isinstance(block, bool)):
        raise UsageError(f"{path}: {where}: block must be a layer number or a name, "
                         f"got {block!r}")
    try:
        return Buffer(name, size, start, end, block, align, bank, access)
    except UsageError as e:
        raise UsageError(f"{path}: {where}: {e}") from None


def _access(path: Path, where: str, items: object) -> list[tuple[int, int]]:
    if not isinstance(items, list):
        raise UsageError(f"{path}: {where}: access must be a list of steps or [a, b] ranges")
    out = []
    for x in items:
        if isinstance(x, list) and len(x) == 2:
            out.append((_int(path, where, "access", x[0]), _int(path, where, "access", x[1])))
        else:
            s = _int(path, where, "access", x)
            out.append((s, s))
    return out
