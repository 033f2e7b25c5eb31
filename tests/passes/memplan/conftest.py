"""Shared helpers for the memory-planner tests: every plan goes through the checker."""

from __future__ import annotations

import warnings

import pytest

from llmc.passes.memplan import (
    Buffer,
    Plan,
    Problem,
    best_fit,
    check_plan,
    greedy_by_size,
    lower_bound,
    plan_blocks,
    solve_mip,
)


def all_plans(problem: Problem, time_limit_s: float = 10.0) -> dict[str, Plan]:
    """Every method's plan, each verified by the checker and by the lower bound."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback or a time-out here is a failure
        plans = {
            "greedy": greedy_by_size(problem),
            "bestfit": best_fit(problem),
            "mip": solve_mip(problem, time_limit_s=time_limit_s),
            "memo": plan_blocks(problem, time_limit_s=time_limit_s),
        }
    lb = lower_bound(problem)
    for name, p in plans.items():
        check_plan(problem, p)
        assert p.arena_bytes >= lb, name
        assert p.lower_bound_bytes == lb, name
    assert plans["mip"].arena_bytes <= min(plans["greedy"].arena_bytes,
                                           plans["bestfit"].arena_bytes)
    assert plans["memo"].arena_bytes <= plans["greedy"].arena_bytes
    return plans


def transformer(layers: int, t: int = 4, h: int = 64, ffn: int = 256, heads: int = 2,
                alignment: int = 64) -> Problem:
    """A small decoder stack: per layer norm, q/k/v, scores, probs, attention,
    residual, norm, gate/up/act/down, residual; residual stream untagged."""
    bufs: list[Buffer] = [Buffer("embed", t * h, 0, 0)]
    step, x = 1, "embed"
    last: dict[str, int] = {"embed": 0}
    for i in range(layers):
        p = f"l{i}."
        ops = [("n1", t * h, [x]), ("q", t * h, ["n1"]), ("k", t * h, ["n1"]),
               ("v", t * h, ["n1"]), ("s", heads * t * t * 16, ["q", "k"]),
               ("pr", heads * t * t * 16, ["s"]), ("a", t * h, ["pr", "v"]),
               ("o", t * h, ["a"]), ("r1", t * h, [x, "o"]), ("n2", t * h, ["r1"]),
               ("g", t * ffn, ["n2"]), ("u", t * ffn, ["n2"]), ("act", t * ffn, ["g", "u"]),
               ("d", t * h, ["act"]), ("out", t * h, ["r1", "d"])]
        for name, size, ins in ops:
            full = p + name
            last[full] = step
            for src in ins:
                src_full = src if src == x else p + src
                last[src_full] = step
            bufs.append(Buffer(full, size, step, step, i))
            step += 1
        x = p + "out"
    bufs.append(Buffer("logits", 1000, step, step))
    last[x] = last["logits"] = step
    out = []
    for b in bufs:
        crosses = b.name.endswith(".out") or b.name == "embed"
        out.append(Buffer(b.name, b.size, b.start, last[b.name],
                          None if crosses or b.block is None else b.block))
    return Problem(out, alignment)


@pytest.fixture(scope="session")
def plans_of():
    """``plans_of(problem)``: every method's plan, all verified (see ``all_plans``)."""
    return all_plans


@pytest.fixture(scope="session")
def make_stack():
    """``make_stack(layers, ...)``: a small transformer-shaped blocked problem."""
    return transformer
