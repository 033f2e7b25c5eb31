"""MEMO's decomposition: one MIP per distinct block, reused, then the model."""

from __future__ import annotations

import time
import warnings

from llmc.passes.memplan import Buffer, Problem, check_plan, lower_bound, plan_blocks


def test_identical_layers_are_solved_once_and_meet_the_bound(make_stack):
    prob = make_stack(8)
    p = plan_blocks(prob)
    check_plan(prob, p)
    assert p.info["source"] == "memo"
    assert p.info["classes"] == 1 and p.info["blocks"] == 8
    # the residual stream rides in one periodic slot: no carried buffer left over
    assert p.info["carried_free"] == 1  # only the logits, which touch no layer
    assert p.arena_bytes == lower_bound(prob)


def test_layers_share_one_base(make_stack):
    prob = make_stack(4)
    p = plan_blocks(prob)
    assert len({p.offsets[f"l{i}.s"] for i in range(4)}) == 1
    assert len({p.offsets[f"l{i}.out"] for i in range(4)}) == 1


def test_sixty_layers_solve_in_seconds(make_stack):
    prob = make_stack(60, t=8, h=128, ffn=512, heads=4)
    t0 = time.perf_counter()
    p = plan_blocks(prob, time_limit_s=30)
    assert time.perf_counter() - t0 < 10
    check_plan(prob, p)
    assert p.arena_bytes <= 1.01 * lower_bound(prob)


def test_two_block_classes_and_a_long_lived_carried_buffer():
    bufs = [Buffer("mask", 64, 0, 40)]  # read by every block
    step = 1
    for i in range(6):
        big = 1024 if i % 2 else 512  # alternating block shapes
        bufs += [Buffer(f"b{i}.x", big, step, step + 2, i),
                 Buffer(f"b{i}.y", 256, step + 1, step + 3, i),
                 Buffer(f"b{i}.z", 128, step + 3, step + 4, i)]
        step += 5
    prob = Problem(bufs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = plan_blocks(prob)
    check_plan(prob, p)
    assert p.info["classes"] == 2
    assert p.arena_bytes == lower_bound(prob)


def test_overlapping_blocks_still_give_a_valid_plan():
    # blocks whose spans overlap cannot stack at one base; the plan must stay valid
    bufs = []
    for i in range(4):
        bufs += [Buffer(f"b{i}.a", 256, 3 * i, 3 * i + 4, i),
                 Buffer(f"b{i}.b", 128, 3 * i + 2, 3 * i + 5, i)]
    bufs.append(Buffer("carry", 64, 0, 14))
    prob = Problem(bufs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = plan_blocks(prob)
    check_plan(prob, p)
    assert p.arena_bytes >= lower_bound(prob)


def test_untagged_problem_is_planned_flat(plans_of):
    prob = Problem([Buffer("a", 128, 0, 3), Buffer("b", 64, 2, 5), Buffer("c", 192, 4, 6)])
    plans = plans_of(prob)
    assert plans["memo"].arena_bytes == lower_bound(prob)


def alternating(n: int = 8) -> Problem:
    """Two layer kinds taking turns (like sliding-window and full attention), chained
    by a residual buffer born at the end of one layer and read inside the next."""
    spec = {0: [1024, 512, 256], 1: [768, 768, 128, 64]}
    rows = [("x0", 256, 0, 3, None)]
    step = 1
    for k in range(n):
        sizes = spec[k % 2]
        rows += [(f"b{k}.{j}", s, step + j, step + j + 1, k) for j, s in enumerate(sizes)]
        nxt = step + len(sizes) + 1  # the next layer's first step
        rows.append((f"r{k}", 256, step + len(sizes), nxt + 2 if k < n - 1 else nxt))
        step = nxt
    return Problem(Buffer(*r) for r in rows)


def test_alternating_layer_kinds_share_one_base():
    prob = alternating()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = plan_blocks(prob)
    check_plan(prob, p)
    assert p.info["source"] == "memo" and p.info["classes"] == 2
    # the two kinds are linked by the residual, so they are planned together
    assert len(p.info["class_solves"]) == 1
    assert p.info["carried_free"] == 0
    assert p.arena_bytes == lower_bound(prob)
    assert len({p.offsets[f"b{k}.0"] for k in range(0, 8, 2)}) == 1
    assert len({p.offsets[f"r{k}"] for k in range(8)}) <= 2


def test_same_input_same_plan(make_stack):
    a, b = plan_blocks(make_stack(5)), plan_blocks(make_stack(5))
    assert a.offsets == b.offsets
    c, d = plan_blocks(alternating()), plan_blocks(alternating())
    assert c.offsets == d.offsets


def test_outputs_kept_to_the_end_do_not_split_the_classes(make_stack):
    # each layer also returns its K (a graph output, live to the last step):
    # later layers see more of them, yet all layers still share one plan
    base = make_stack(6)
    last = max(b.end for b in base.buffers)
    kept = [Buffer(f"present{i}", 256, b.start, last) for i, b in enumerate(
        b for b in base.buffers if b.name.endswith(".k"))]
    prob = Problem(list(base.buffers) + kept)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = plan_blocks(prob)
    check_plan(prob, p)
    assert p.info["classes"] <= 2  # the last layer has no block to pass through
    assert p.arena_bytes == lower_bound(prob)
