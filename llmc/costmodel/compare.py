"""`llmc report --compare a100,h100,npu`: one model on several targets, side by side."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmc.costmodel.explain import fmt_bytes, fmt_s, fmt_tokens
from llmc.costmodel.render_md import table
from llmc.costmodel.report import Report
from llmc.outdir import write_dir


@dataclass
class Comparison:
    """Reports of one model on several targets (same sizes and --quant)."""

    reports: list[Report]

    @property
    def model(self) -> str:
        return self.reports[0].model

    def rows(self) -> list[tuple[str, list[str]]]:
        rs = self.reports
        fits = [r.memory.fits for r in rs]

        def each(f, ok_only: bool = True) -> list[str]:  # noqa: ANN001
            return [f(r) if (fit or not ok_only) else "—" for r, fit in zip(rs, fits, strict=True)]

        return [
            ("device", each(lambda r: r.device.description, False)),
            ("precision", each(lambda r: f"{r.precision.weight.name} weights, "
                                         f"{r.precision.kv.name} KV", False)),
            ("weights per device", each(lambda r: fmt_bytes(r.memory.weight_bytes), False)),
            ("fits", each(lambda r: "yes" if r.memory.fits else
                          f"**no: {fmt_bytes(r.memory.missing_bytes)} missing**", False)),
            ("prefill (time to first token)", each(lambda r: fmt_s(r.prefill.time_s))),
            ("prefill bound", each(lambda r: r.prefill.bound)),
            ("decode per token", each(lambda r: fmt_s(r.decode.time_s) if r.decode else "—")),
            ("decode tokens/s", each(lambda r: f"{r.batch / r.decode.time_s:,.1f}"
                                     if r.decode else "—")),
            ("decode bound", each(lambda r: r.decode.bound if r.decode else "—")),
            ("energy per output token", each(lambda r: f"{r.decode.energy_j / r.batch:,.3g} J"
                                             if r.decode else "—")),
            ("prefill energy", each(lambda r: f"{r.prefill.energy_j:,.3g} J")),
            (f"concurrent requests at {rs[0].context:,}",
             each(lambda r: str(r.max_concurrent_requests))),
            ("longest context for one request", each(
                lambda r: fmt_tokens(r.longctx.crossovers["max_context_one_request"])
                if r.longctx else "—")),
            ("context switch", each(lambda r: fmt_s(r.context_switch_s))),
        ]

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "targets": [r.target for r in self.reports],
                "reports": {r.target: r.to_json() for r in self.reports}}

    def to_markdown(self) -> str:
        r0 = self.reports[0]
        lines = [f"# {self.model}: {', '.join(r.target for r in self.reports)}", "",
                 f"Batch {r0.batch} · prompt {r0.prompt:,} tokens · {r0.output:,} output tokens · "
                 f"decode reads {r0.context:,} tokens of KV cache · tp {r0.tp}.", ""]
        lines += table(["", *[r.target for r in self.reports]],
                       [[k, *v] for k, v in self.rows()], "l" + "r" * len(self.reports)) + [""]
        lines += ["![time, energy and concurrency by target](compare.png)", ""]
        for r in self.reports:
            from llmc.costmodel.explain import bounds_paragraph

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
