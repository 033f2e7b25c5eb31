"""Property tests: random problems, every method valid, MIP between bound and greedy."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmc.passes.memplan import Buffer, Problem

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problems(draw) -> Problem:
    n = draw(st.integers(1, 8))
    bufs = []
    for i in range(n):
        start = draw(st.integers(0, 10))
        bufs.append(Buffer(f"b{i}", draw(st.integers(0, 640)), start,
                           start + draw(st.integers(0, 5))))
    return Problem(bufs, alignment=draw(st.sampled_from([1, 16, 64])))


@st.composite
def blocked_problems(draw) -> Problem:
    """Blocks from one or two templates laid one after another, plus carried buffers
    (a residual-like chain from block to block, and random long-lived ones)."""
    templates = [
        [(draw(st.integers(1, 8)) * 64, a, a + draw(st.integers(0, 3)))
         for a in draw(st.lists(st.integers(0, 4), min_size=1, max_size=4))]
        for _ in range(draw(st.integers(1, 2)))
    ]
    nblocks = draw(st.integers(1, 5))
    chain = draw(st.booleans())
    bufs, step, prev = [], 0, None
    for k in range(nblocks):
        tpl = templates[draw(st.integers(0, len(templates) - 1))]
        for j, (size, a, e) in enumerate(tpl):
            bufs.append(Buffer(f"k{k}.{j}", size, step + a, step + e, k))
        span = max(e for _, _, e in tpl) + 1
        if chain:
            if prev is not None:
                bufs.append(Buffer(f"r{k}", 128, prev, step + draw(st.integers(0, span - 1))))
            prev = step + span - 1
        step += span
    for c in range(draw(st.integers(0, 2))):
        a = draw(st.integers(0, step))
        bufs.append(Buffer(f"c{c}", draw(st.integers(1, 4)) * 64, a, a + draw(st.integers(0, 8))))
    return Problem(bufs)


@SETTINGS
@given(problems())
def test_random_problems(plans_of, prob):
    plans_of(prob)  # checks: valid, >= lower bound, MIP <= greedy and best-fit, memo <= greedy


@SETTINGS
@given(blocked_problems())
def test_random_blocked_problems(plans_of, prob):
    plans_of(prob)


@st.composite
def rigid_items(draw) -> list:
    """Items of one to three parts at random relative offsets and steps."""
    from llmc.passes.memplan._items import Item, Part

    items = []
    for i in range(draw(st.integers(1, 7))):
        parts = []
        for _ in range(draw(st.integers(1, 3))):
            a = draw(st.integers(0, 8))
            parts.append(Part(draw(st.integers(0, 96)), draw(st.integers(0, 64)), a,
                              a + draw(st.integers(0, 4))))
        items.append(Item(f"i{i}", tuple(parts)))
    return items


@SETTINGS
@given(rigid_items(), st.randoms(use_true_random=False))
def test_first_fit_takes_the_lowest_free_base(items, rnd) -> None:  # noqa: ANN001
    """place(fit="first") puts each item at the lowest base where it overlaps
    nothing placed before it: checked against a scan of every base."""
    from llmc.passes.memplan import _items

    order = list(range(len(items)))
    rnd.shuffle(order)
    cons = _items.conflicts(items)
    got = _items.place(items, order, cons, "first")
    top = sum(it.height for it in items) + 1
    done: list[int] = []
    for i in order:
        def clashes(base: int, i: int = i) -> bool:
            for j in done:
                for p in items[i].parts:
                    for q in items[j].parts:
                        if (p.size and q.size and p.start <= q.end and q.start <= p.end
                                and base + p.rel < got[j] + q.rel + q.size
                                and got[j] + q.rel < base + p.rel + p.size):
                            return True
            return False
        assert got[i] == next(b for b in range(top) if not clashes(b))
        done.append(i)
    assert _items.valid(items, got, cons)
