"""The mapping table covers core ATen's indexing, mask, scan, sort, split and
factory operators: each small module below is exported, converted and run
on the interpreter, and must match PyTorch eager."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from llmc import api
from llmc.frontend.aten import TABLE
from llmc.frontend.export import DROPPED, KEEP_WHOLE
from llmc.frontend.loader import LoadedModel
from llmc.numerics import assert_close

X = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
I = torch.tensor([[0, 2], [1, 5], [5, 0], [2, 2]])  # noqa: E741

CASES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "select": lambda x, i: x[:, -1] + x[2, :4],
    "index_select": lambda x, i: x.index_select(1, i[:, 0]),
    "index_none_slot": lambda x, i: x[:, i[:, 1]],
    "index_two": lambda x, i: x[i[:, 0] % 4, i[:, 1]],
    "gather": lambda x, i: x.gather(1, i),
    "scatter_value": lambda x, i: torch.zeros(4, 6).scatter(1, i, 1.5),
    "scatter_src": lambda x, i: torch.zeros(4, 6).scatter(1, i[:, :1], x[:, :2]),
    "scatter_add": lambda x, i: torch.zeros(4, 6).scatter_add(1, i, x[:, :2])
                                + x.scatter_reduce(1, i, x[:, 2:4], "sum"),
    "index_put_accumulate": lambda x, i: x.index_put((i[:, 0] % 4,), torch.ones(6), accumulate=True),
    "index_put_two": lambda x, i: x.index_put((i[:, 0] % 4, i[:, 1]), torch.tensor(5.0)),
    "cumsum": lambda x, i: (x > 0).cumsum(-1) + x.cumsum(0).long(),
    "sort": lambda x, i: torch.sort(x, dim=0, descending=True)[0] + x.argsort(-1)
                         + torch.sort(x, stable=True, descending=True)[1],
    "histc": lambda x, i: torch.histc(x, bins=5, min=-1, max=1),
    "split": lambda x, i: x.split(4, -1)[1].sum() + x.chunk(2, 0)[1] + x.unbind(0)[3],
    "repeat_flip": lambda x, i: x.repeat(2, 1).flip(0)[:4] + x.flip(-1),
    "clamp": lambda x, i: x.clamp(-0.5, 0.5) + x.clamp(min=0) + x.clamp_max(0.1)
                          + x.clamp(min=x[0], max=x[1]),
    "any_all": lambda x, i: (x > 0).any(-1) | (x > 0).all(0).any() | (x < -1).all(),
    "logic": lambda x, i: torch.logical_or(x > 0, x < -1) ^ torch.logical_not(x > 1)
                          ^ torch.logical_xor(x > 0.5, i.sum() > 3) ^ ~(x > 0.2) ^ True
                          ^ torch.logical_and(x > -0.5, i.sum() > 0),
    "argmax": lambda x, i: x.argmax(-1) + x.argmin(0).sum() + x.argmax(),
    "max_min_dim": lambda x, i: x.max(-1).values + x.min(0, keepdim=True).values.sum()
                                + x.max(0).indices.sum(),
    "log_softmax": lambda x, i: x.log_softmax(-1),
    "masked_fill": lambda x, i: x.masked_fill(x > 0, -1e9),
    "remainder": lambda x, i: i % 3 + (-i) % 4 + i % (i + 1),
    "factories": lambda x, i: torch.zeros_like(x) + torch.ones_like(x) + torch.full_like(x, 3.0)
                              + x.new_zeros(6) + torch.empty_like(x).fill_(2)
                              + torch.empty(4, 6).fill_(1) + torch.empty_strided((4, 6), (6, 1))
                              .fill_(2) + torch.zeros(4, 6).copy_(x[0]),
    "one_hot": lambda x, i: torch.nn.functional.one_hot(i, 6).sum(1),    # drops _assert_async
    "sum_bool": lambda x, i: (x > 0).sum() + (x > 0).sum(-1),
}


class _Case(torch.nn.Module):
    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return self.fn(x, i)


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_matches_torch(name: str) -> None:
    module = _Case(CASES[name])
    t = api.trace(LoadedModel(name, module, None, "test", (X, I)))
    got = api.interpret(t.graph, t.inputs)[0]
    with torch.no_grad():
        ref = module(X, I).numpy()
    assert got.dtype == ref.dtype
    if ref.dtype.kind == "f":
        assert_close(got, ref, what=name)
    else:
        assert np.array_equal(got, ref), name


def test_the_table_follows_the_decomposition_rule() -> None:
    """The table maps what core-ATen lowering leaves, and the ops kept whole:
    no entry for an op the decomposition removes; dropped checks are not in it."""
    decomposed = torch.export.default_decompositions()
    for op in KEEP_WHOLE:
        assert f"aten.{op}.default" in TABLE
        decomposed.pop(getattr(torch.ops.aten, op).default, None)
    assert not {str(op) for op in decomposed} & set(TABLE)
    assert not set(DROPPED) & set(TABLE)
    assert all(reason for reason in DROPPED.values())
