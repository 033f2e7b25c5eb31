"""`compare_table` and its renderings: one model on several targets, side by side."""

from __future__ import annotations

import json

import pytest

from llmc.costmodel import build_report
from llmc.costmodel.compare import (
    Comparison,
    compare_table,
    render_compare_md,
    render_compare_text,
)
from llmc.errors import UsageError
from llmc.frontend.zoo.config import get_config

TARGETS = ("a100", "h100", "npu")
WANTED = ("device", "precision", "weight_bytes_per_device", "kv_bytes_per_token",
          "missing_bytes", "time_to_first_token_s", "prefill_bound", "time_per_token_s",
          "tokens_per_s", "energy_j_per_token", "decode_bound", "max_concurrent_requests")


@pytest.fixture(scope="module")
def reports() -> list:
    cfg = get_config("yi-34b")                        # fits a100 and h100, not the NPU
    return [build_report(None, None, cfg, t, prompt=1024, output=64) for t in TARGETS]


def _row(table: dict, key: str) -> dict:
    return next(r for r in table["rows"] if r["key"] == key)


def test_table_has_a_column_per_target_and_the_figures_compared(reports: list) -> None:
    t = compare_table(reports)
    assert t["targets"] == list(TARGETS) and t["model"] == "yi-34b"
    assert t["shape"] == {"batch": 1, "prompt": 1024, "output": 64, "context": 1088, "tp": 1}
    keys = [r["key"] for r in t["rows"]]
    assert set(WANTED) <= set(keys) and len(keys) == len(set(keys))
    assert all(len(r["values"]) == len(r["text"]) == len(TARGETS) for r in t["rows"])
    a100, h100, _ = reports
    assert _row(t, "device")["values"] == [r.device.name for r in reports]
    assert _row(t, "time_to_first_token_s")["values"][:2] == \
        pytest.approx([a100.prefill.time_s, h100.prefill.time_s], rel=1e-5)
    assert _row(t, "tokens_per_s")["values"][0] == pytest.approx(1 / a100.decode.time_s, rel=1e-5)
    assert _row(t, "decode_bound")["text"][:2] == ["memory", "memory"]
    assert _row(t, "kv_bytes_per_token")["values"] == [245_760, 245_760, 122_880]
    json.dumps(t)                                     # JSON-ready as it is


def test_a_target_that_does_not_fit_says_how_much_is_missing(reports: list) -> None:
    t = compare_table(reports)
    npu = reports[2]
    assert not npu.memory.fits
    fits = _row(t, "missing_bytes")
    assert fits["values"][:2] == [0, 0] and fits["text"][:2] == ["yes", "yes"]
    assert npu.memory.missing_bytes > 0
    assert fits["values"][2] == pytest.approx(npu.memory.missing_bytes, rel=1e-5)
    assert fits["text"][2] == f"no: {npu.memory.missing_bytes / 1e9:.3g} GB missing"
    ttft = _row(t, "time_to_first_token_s")
    assert ttft["values"][2] is None and ttft["text"][2] == "—"   # no time for what cannot run
    assert _row(t, "max_concurrent_requests")["values"][2] == 0


def test_text_is_aligned_columns(reports: list) -> None:
    t = compare_table(reports)
    text = render_compare_text(t)
    lines = text.splitlines()
    assert lines[0].startswith("yi-34b on a100, h100, npu: batch 1")
    table = lines[2:]
    assert table[0].split() == list(TARGETS)
    assert len(table) == 2 + len(t["rows"])
    assert len({len(line) for line in table}) == 1          # right-aligned to one edge
    for row, line in zip(t["rows"], table[2:], strict=True):
        assert line.startswith(row["label"])
        assert line.rstrip().endswith(row["text"][-1])
        at = [line.rindex(cell) + len(cell) for cell in row["text"]]
        assert at == sorted(at)                              # cells in target order


def test_markdown_table(reports: list) -> None:
    t = compare_table(reports)
    md = render_compare_md(t).splitlines()
    assert md[2] == "|  | a100 | h100 | npu |" and md[3] == "| --- | ---: | ---: | ---: |"
    assert md[4:] == [f"| {r['label']} | " + " | ".join(r["text"]) + " |" for r in t["rows"]]
    c = Comparison(reports)
    assert render_compare_md(t) in c.to_markdown()
    assert c.to_json()["table"] == t
    assert c.to_text() == render_compare_text(t)


def test_nothing_to_compare() -> None:
    with pytest.raises(UsageError, match="nothing to compare"):
        compare_table([])
