"""plan.json and the plan picture: stable, deterministic output."""

from __future__ import annotations

import json

from llmc.passes.memplan import plan, plan_to_json, plot_plan, write_plan_json


def test_plot_is_deterministic(tmp_path, make_stack):
    prob = make_stack(3)
    p = plan(prob)
    a = plot_plan(prob, p, tmp_path / "a.png").read_bytes()
    b = plot_plan(prob, p, tmp_path / "b.png").read_bytes()
    assert a[:8] == b"\x89PNG\r\n\x1a\n"
    assert a == b
    assert b"matplotlib" not in a  # no Software tag with a version in it


def test_plan_json_fields_and_order(tmp_path, make_stack):
    prob = make_stack(2)
    p = plan(prob)
    d = plan_to_json(prob, p)
    assert list(d) == sorted(d)
    assert {"buffers", "arena_bytes", "lower_bound_bytes", "ratio", "method", "solve_s"} <= set(d)
    assert d["ratio"] == 1.0 and d["arena_bytes"] == p.arena_bytes
    first = d["buffers"][0]
    assert {"name", "size", "start", "end", "offset"} <= set(first)
    starts = [(b["start"], b["name"]) for b in d["buffers"]]
    assert starts == sorted(starts)
    path = write_plan_json(prob, p, tmp_path / "plan.json", timing=False)
    again = write_plan_json(prob, plan(prob), tmp_path / "plan2.json", timing=False)
    assert path.read_bytes() == again.read_bytes()
    assert json.loads(path.read_text())["solve_s"] is None
