"""report.html shows what report.md shows: every section, the memory plan
of a compile with its pictures inlined."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pytest

from llmc import api
from llmc.costmodel import build_report
from llmc.frontend.zoo.config import get_config


def _headings(md: str) -> list[str]:
    return [m.group(2) for m in re.finditer(r"^(#{1,6}) (.+)$", md, re.M)]


def _html_headings(page: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", m.group(1)))
            for m in re.finditer(r"<h\d>(.*?)</h\d>", page)]


def _plain(heading: str) -> str:
    return re.sub(r"\*\*|`", "", heading)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("render") / "a"
    api.compile("llama-tiny", "a100", out, seq_len=16, weights="random")
    return out


def test_compile_html_has_every_section_of_the_markdown(artifact: Path) -> None:
    md = (artifact / "report.md").read_text()
    page = (artifact / "report.html").read_text()
    heads = _headings(md)
    assert "Memory plan" in heads
    assert [_plain(h) for h in heads] == _html_headings(page)


def test_compile_html_inlines_the_plan_pictures(artifact: Path) -> None:
    page = (artifact / "report.html").read_text()
    md = (artifact / "report.md").read_text()
    for ph in ("prefill", "decode"):
        png = (artifact / f"plan_{ph}.png").read_bytes()
        assert f"](plan_{ph}.png)" in md
        assert base64.b64encode(png).decode() in page
    assert page.count("data:image/png;base64,") == md.count("![")
    # the plan table's figures, as in the markdown
    row = next(line for line in md.splitlines() if line.startswith("| decode |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert all(f">{html.escape(c)}</td>" in page for c in cells)


def test_report_html_has_every_section_of_the_markdown() -> None:
    r = build_report(None, None, get_config("tinyllama-1.1b"), "h100", prompt=512, output=64)
    files = r.files()
    md, page = files["report.md"].decode(), files["report.html"].decode()
    assert "Memory plan" not in _headings(md)           # no compile, no plan
    assert [_plain(h) for h in _headings(md)] == _html_headings(page)
    assert r.to_json()["memory_plan"] is None


def test_an_image_without_bytes_is_linked() -> None:
    from llmc.costmodel.render_html import md_to_html

    page = md_to_html("![a plan](plan_prefill.png)", {})
    assert '<img alt="a plan" src="plan_prefill.png">' in page
