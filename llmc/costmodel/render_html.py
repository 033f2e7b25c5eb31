"""report.html: the markdown report as one self-contained page.

The markdown this package writes uses a small subset (headings, paragraphs,
tables, lists, **bold**, `code`, images), so a small converter renders it;
images are inlined as base64 PNG, and nothing is fetched from anywhere.
"""

from __future__ import annotations

import base64
import html
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmc.costmodel.report import Report

CSS = """
body{font:15px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;
max-width:1100px;margin:2em auto;padding:0 1.5em}
h1{font-size:1.7em;border-bottom:2px solid #4C72B0;padding-bottom:.2em}
h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.15em}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:.9em}
th,td{border:1px solid #ddd;padding:.3em .6em;vertical-align:top}
th{background:#f3f5f9}tr:nth-child(even) td{background:#fafafa}
td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}
code{background:#f3f3f3;padding:0 .25em;border-radius:3px;font-size:.92em}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#666;font-size:.9em}
"""


def _inline(text: str) -> str:
    s = html.escape(text, quote=False)
    s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", s)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table(rows: list[str]) -> str:
    head, sep, body = _cells(rows[0]), _cells(rows[1]), [_cells(r) for r in rows[2:]]
    cls = [' class="r"' if s.endswith(":") else "" for s in sep]
    out = ["<table><thead><tr>"]
    out += [f"<th{c}>{_inline(h)}</th>" for h, c in zip(head, cls, strict=False)]
    out.append("</tr></thead><tbody>")
    for r in body:
        out.append("<tr>" + "".join(f"<td{c}>{_inline(v)}</td>"
                                     for v, c in zip(r, cls, strict=False)) + "</tr>")
    return "".join(out) + "</tbody></table>"


def md_to_html(md: str, images: dict[str, bytes]) -> str:
    """Render the subset of markdown this package writes."""
    out: list[str] = []
    blocks = re.split(r"\n\s*\n", md.strip())
    for block in blocks:
        lines = block.splitlines()
        first = lines[0]
        if first.startswith("## "):
            out.append(f"<h2>{_inline(first[3:])}</h2>")
            lines = lines[1:]
        elif first.startswith("# "):
            out.append(f"<h1>{_inline(first[2:])}</h1>")
            lines = lines[1:]
        if not lines:
            continue
        if all(line.startswith("|") for line in lines):
            out.append(_table(lines))
        elif all(line.startswith("- ") for line in lines):
            out.append("<ul>" + "".join(f"<li>{_inline(x[2:])}</li>" for x in lines) + "</ul>")
        elif all(line.startswith("![") for line in lines):
            for line in lines:
                m = re.match(r"!\[(.*?)\]\((.*?)\)", line)
                if not m:
                    continue
                alt, name = m.groups()
                # inlined when given (a self-contained page), else linked beside it
                src = (f"data:image/png;base64,{base64.b64encode(images[name]).decode()}"
                       if name in images else html.escape(name))
                out.append(f'<figure><img alt="{html.escape(alt)}" src="{src}">'
                           f"<figcaption>{_inline(alt)}</figcaption></figure>")
        else:
            out.append(f"<p>{_inline(' '.join(lines))}</p>")
    return "\n".join(out)


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")


def report_html(r: Report, plots: dict[str, bytes] | None = None) -> str:
    plots = r.plots() if plots is None else plots
    return page(f"{r.model} on {r.target} — llmc report", md_to_html(r.to_markdown(), plots))
