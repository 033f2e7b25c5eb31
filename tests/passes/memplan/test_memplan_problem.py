"""The vocabulary: validation of buffers and problems, the lower bound."""

from __future__ import annotations

import pytest

from llmc.errors import UsageError
from llmc.passes.memplan import (
    Buffer,
    Problem,
    live_at,
    load_profile,
    lower_bound,
    peak_step,
    problem_from_intervals,
)


def test_negative_size_names_the_buffer():
    with pytest.raises(UsageError, match="'w'.*non-negative"):
        Buffer("w", -1, 0, 1)


def test_end_before_start_names_the_buffer():
    with pytest.raises(UsageError, match="'x'.*ends \\(step 2\\) before it starts \\(step 3\\)"):
        Buffer("x", 8, 3, 2)


@pytest.mark.parametrize("bad", [1.5, True, "8", None])
def test_non_integer_size_is_rejected(bad):
    with pytest.raises(UsageError, match="'b'"):
        Buffer("b", bad, 0, 0)


def test_duplicate_names_and_bad_alignment():
    with pytest.raises(UsageError, match="'a' appears twice"):
        Problem([Buffer("a", 1, 0, 0), Buffer("a", 2, 1, 1)])
    with pytest.raises(UsageError, match="alignment"):
        Problem([Buffer("a", 1, 0, 0)], alignment=0)


def test_lower_bound_counts_aligned_bytes_at_the_busiest_step():
    p = Problem([Buffer("a", 100, 0, 2), Buffer("b", 64, 2, 3), Buffer("c", 1, 3, 3),
                 Buffer("z", 0, 0, 9)], alignment=64)
    # step 2: a (128 aligned) + b (64); step 3: b + c (64 + 64)
    assert lower_bound(p) == 192
    assert peak_step(p) == (2, 192)
    assert [b.name for b in live_at(p, 2)] == ["a", "b"]
    assert load_profile(p) == [(0, 128), (2, 192), (3, 128), (4, 0)]


def test_empty_problem_and_intervals_helper():
    assert lower_bound(Problem([])) == 0
    p = problem_from_intervals([("a", 10, 0, 1, 0), ("b", 20, 1, 2, None)], alignment=8)
    assert p.alignment == 8 and p.buffers[0].block == 0 and p.has_blocks
