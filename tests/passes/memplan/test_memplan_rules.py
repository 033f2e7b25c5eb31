"""Placement rules: a buffer's own alignment, bank start / within, from the
hardware spec; honoured by every method and enforced by the checker."""

from __future__ import annotations

import random
import warnings
from dataclasses import replace

import pytest

from llmc.errors import IRError, UsageError
from llmc.hw.database import get_device
from llmc.passes.memplan import (
    Buffer,
    Plan,
    Problem,
    SolverTimeoutWarning,
    bank_bytes_of,
    check_plan,
    lower_bound,
    plan,
    plan_to_json,
    with_banks,
)

BANK = 1024
METHODS = ("greedy", "bestfit", "mip", "memo", "cpsat", "auto")


def banked(seed: int, n: int = 40) -> Problem:
    """Random buffers up to 1.5 banks, each with a rule: within, start, or its
    own 256 B alignment."""
    r = random.Random(seed)
    bufs = []
    for i in range(n):
        s = r.randint(0, 12)
        size = r.randint(1, 24) * 64
        kind = r.choice(["within", "start", "align", None])
        bufs.append(Buffer(f"b{i}", size, s, s + r.randint(0, 4), i % 3,
                           alignment=256 if kind == "align" else None,
                           bank=kind if kind in ("within", "start") else None))
    return Problem(bufs, 64, bank_bytes=BANK)


def obeys(prob: Problem, offsets: dict[str, int]) -> bool:
    for b in prob.buffers:
        o = offsets[b.name]
        if o % prob.align_of(b):
            return False
        if b.bank == "start" and o % BANK:
            return False
        banks = -(-prob.aligned(b.size) // BANK)
        if b.bank == "within" and o // BANK + banks < -(-(o + prob.aligned(b.size)) // BANK):
            return False
    return True


@pytest.mark.parametrize("method", METHODS)
def test_every_method_keeps_the_rules(method: str):
    prob = banked(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverTimeoutWarning)
        p = plan(prob, method=method, time_limit_s=1)
    check_plan(prob, p)
    assert obeys(prob, p.offsets)
    assert p.arena_bytes >= lower_bound(prob)


def test_cpsat_is_never_worse_than_greedy_under_rules():
    prob = banked(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverTimeoutWarning)
        best = plan(prob, method="cpsat", time_limit_s=1)
    assert best.arena_bytes <= min(plan(prob, method=m).arena_bytes
                                   for m in ("greedy", "bestfit"))


@pytest.mark.parametrize("bank,offset,msg", [
    ("start", 512, "must start on a bank boundary"),
    ("within", 768, "must stay within 1 bank"),
    (None, 64, "not a multiple of the alignment 128"),
])
def test_checker_refuses_a_broken_rule(bank: str | None, offset: int, msg: str):
    b = Buffer("t", 512, 0, 1, alignment=None if bank else 128, bank=bank)
    prob = Problem([b], bank_bytes=BANK)
    with pytest.raises(IRError, match=msg):
        check_plan(prob, Plan({"t": offset}, offset + 512, "hand", 0.0))
    check_plan(prob, Plan({"t": 0}, 512, "hand", 0.0))


def test_within_a_bank_for_large_buffers_means_fewest_banks():
    """1.5 banks may start half a bank in (still two banks), not further."""
    prob = Problem([Buffer("big", 1536, 0, 0, bank="within")], bank_bytes=BANK)
    check_plan(prob, Plan({"big": 512}, 2048, "hand", 0.0))
    with pytest.raises(IRError, match="within 2 bank"):
        check_plan(prob, Plan({"big": 576}, 2112, "hand", 0.0))


def test_rules_are_validated():
    with pytest.raises(UsageError, match="no bank size"):
        Problem([Buffer("a", 64, 0, 0, bank="start")])
    with pytest.raises(UsageError, match="bank rule"):
        Buffer("a", 64, 0, 0, bank="middle")
    with pytest.raises(UsageError, match="not a multiple of its alignment"):
        Problem([Buffer("a", 64, 0, 0, alignment=4096, bank="start")], bank_bytes=1024)
    with pytest.raises(UsageError, match="alignment"):
        Buffer("a", 64, 0, 0, alignment=0)


def test_bank_size_from_the_hardware_spec():
    """edge-npu: 8 MiB of SRAM in 32 banks ([scratchpad] in its device file)."""
    assert bank_bytes_of(get_device("npu")) == 256 * 1024
    with pytest.raises(UsageError, match="no banked scratchpad"):
        bank_bytes_of(get_device("a100"))
    prob = with_banks(Problem([Buffer("a", 64, 0, 0)]), 256 * 1024, "within")
    assert prob.buffers[0].bank == "within" and prob.bank_bytes == 256 * 1024
    data = plan_to_json(prob, plan(prob))
    assert data["bank_bytes"] == 256 * 1024 and data["buffers"][0]["bank"] == "within"


def test_memo_plans_flat_under_rules(make_stack):
    prob = make_stack(2)
    ruled = Problem([replace(b, alignment=512) for b in prob.buffers], prob.alignment)
    p = plan(ruled, method="memo")
    check_plan(ruled, p)
    assert p.info["source"] == "flat cpsat (placement rules)"
    assert all(o % 512 == 0 for o in p.offsets.values())
