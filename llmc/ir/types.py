"""TensorType: the static type of every IR value."""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmc.ir.dtypes import DType


@dataclass(frozen=True)
class TensorType:
    """shape (static ints), element dtype, and an optional layout tag naming a
    packed/blocked storage layout (documented in llmc/passes where made)."""

    shape: tuple[int, ...]
    dtype: DType
    layout: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.dtype.nbytes(self.numel)

    def with_shape(self, shape: tuple[int, ...]) -> TensorType:
        return TensorType(tuple(shape), self.dtype, self.layout)

    def with_dtype(self, dtype: DType) -> TensorType:
        return TensorType(self.shape, dtype, self.layout)

    def __str__(self) -> str:
        text = f"{self.dtype.name}[{','.join(map(str, self.shape))}]"
        return f"{text}@{self.layout}" if self.layout else text
