"""`llmc report --compare a100,h100,npu`: one model on several targets, side by side.

`compare_table(reports)` is the comparison as data (one row per figure a user
compares, one column per target, raw values and their text);
`render_compare_text` lays it out for a terminal, `render_compare_md` as a
markdown table; `Comparison` writes report.md/.json/.html and compare.png.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmc.costmodel.explain import fmt_bytes, fmt_s, fmt_tokens
from llmc.costmodel.render_json import num
from llmc.costmodel.render_md import table
from llmc.costmodel.report import Report
from llmc.errors import UsageError
from llmc.outdir import write_dir

NONE = "—"


@dataclass(frozen=True)
class Row:
    """One figure across targets: `value` gives the raw number (or word) of a
    report, `text` formats it; `fitted`: only meaningful where the model fits
    (elsewhere the value is None and the text a dash)."""

    key: str
    label: str
    value: Callable[[Report], Any]
    text: Callable[[Any], str] = str
    fitted: bool = True


def _decode(f: Callable[[Report], Any]) -> Callable[[Report], Any]:
    return lambda r: f(r) if r.decode is not None else None


def _rows(context: int) -> tuple[Row, ...]:
    return (
        Row("device", "device", lambda r: r.device.name, fitted=False),  # `llmc devices`
        Row("precision", "precision",
            lambda r: f"{r.precision.weight.name} weights, {r.precision.kv.name} KV",
            fitted=False),
        Row("weight_bytes_per_device", "weights per device", lambda r: r.memory.weight_bytes,
            fmt_bytes, fitted=False),
        Row("kv_bytes_per_token", "KV cache per token", lambda r: r.kv_bytes_per_token,
            lambda v: f"{v:,.0f} B", fitted=False),
        Row("missing_bytes", "fits", lambda r: r.memory.missing_bytes,
            lambda v: "yes" if v == 0 else f"no: {fmt_bytes(v)} missing", fitted=False),
        Row("time_to_first_token_s", "time to first token", lambda r: r.prefill.time_s, fmt_s),
        Row("prefill_bound", "prefill bound", lambda r: r.prefill.bound),
        Row("prefill_energy_j", "prefill energy", lambda r: r.prefill.energy_j,
            lambda v: f"{v:,.3g} J"),
        Row("time_per_token_s", "decode time per token", _decode(lambda r: r.decode.time_s),
            fmt_s),
        Row("tokens_per_s", "decode tokens/s", _decode(lambda r: r.batch / r.decode.time_s),
            lambda v: f"{v:,.1f}"),
        Row("energy_j_per_token", "energy per output token",
            _decode(lambda r: r.decode.energy_j / r.batch), lambda v: f"{v:,.3g} J"),
        Row("decode_bound", "decode bound", _decode(lambda r: r.decode.bound)),
        Row("max_concurrent_requests", f"concurrent requests at {context:,} tokens",
            lambda r: r.max_concurrent_requests, lambda v: f"{v:,}", fitted=False),
        Row("max_context_one_request", "longest context for one request",
            lambda r: r.longctx.crossovers["max_context_one_request"] if r.longctx else None,
            fmt_tokens),
        Row("context_switch_s", "context switch (KV out + in)", lambda r: r.context_switch_s,
            fmt_s),
    )


def compare_table(reports: Sequence[Report]) -> dict[str, Any]:
    """One model on several targets as data: the shape they were costed at
    and, per row, the raw value (bytes, seconds, joules, counts; None where
    it does not apply) and its text, one of each per target, in order."""
    if not reports:
        raise UsageError("nothing to compare: no reports")
    r0 = reports[0]
    rows = []
    for row in _rows(r0.context):
        values = [None if row.fitted and not r.memory.fits else row.value(r) for r in reports]
        rows.append({"key": row.key, "label": row.label,
                     "values": [v if isinstance(v, str | bool) else num(v) for v in values],
                     "text": [NONE if v is None else row.text(v) for v in values]})
    return {"model": r0.model, "targets": [r.target for r in reports],
            "shape": {"batch": r0.batch, "prompt": r0.prompt, "output": r0.output,
                      "context": r0.context, "tp": r0.tp},
            "rows": rows}


def _title(t: dict[str, Any]) -> str:
    s = t["shape"]
    return (f"{t['model']} on {', '.join(t['targets'])}: batch {s['batch']} · prompt "
            f"{s['prompt']:,} tokens · {s['output']:,} output tokens · decode reads "
            f"{s['context']:,} tokens of KV cache · tp {s['tp']}")


def render_compare_text(t: dict[str, Any]) -> str:
    """`compare_table`'s table for a terminal: aligned columns, labels left,
    one right-aligned column per target."""
    head = ["", *t["targets"]]
    body = [[row["label"], *row["text"]] for row in t["rows"]]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([_title(t), "", line(head), rule, *map(line, body)])


def render_compare_md(t: dict[str, Any]) -> str:
    """`compare_table`'s table in markdown, under a line saying the shape."""
    return "\n".join([_title(t) + ".", "", *table(
        ["", *t["targets"]], [[row["label"], *row["text"]] for row in t["rows"]],
        "l" + "r" * len(t["targets"]))])


@dataclass
class Comparison:
    """Reports of one model on several targets (same sizes and --quant)."""

    reports: list[Report]

    @property
    def model(self) -> str:
        return self.reports[0].model

    def table(self) -> dict[str, Any]:
        return compare_table(self.reports)

    def to_text(self) -> str:
        return render_compare_text(self.table())

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "targets": [r.target for r in self.reports],
                "table": self.table(),
                "reports": {r.target: r.to_json() for r in self.reports}}

    def to_markdown(self) -> str:
        from llmc.costmodel.explain import bounds_paragraph

        lines = [f"# {self.model}: {', '.join(r.target for r in self.reports)}", "",
                 render_compare_md(self.table()), "",
                 "![time, energy and concurrency by target](compare.png)", ""]
        for r in self.reports:
            lines += [f"## {r.target}: what bounds you", "", bounds_paragraph(r), ""]
        return "\n".join(lines)

    def plots(self) -> dict[str, bytes]:
        from llmc.costmodel.plots import compare_plot

        return {"compare.png": compare_plot(self.reports)}

    def files(self) -> dict[str, bytes]:
        from llmc.costmodel.render_html import md_to_html, page

        plots = self.plots()
        md = self.to_markdown()
        return {"report.json": (json.dumps(self.to_json(), indent=2, sort_keys=True)
                                + "\n").encode(),
                "report.md": md.encode(),
                "report.html": page(f"{self.model} compared — llmc report",
                                    md_to_html(md, plots)).encode(), **plots}

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write files() as the directory out_dir, atomically; returns the paths."""
        files = self.files()
        out = write_dir(out_dir, files, marker="report.json")
        return [out / name for name in files]
