"""Where tensors live on the NPU: strided locations, views, and the DRAM map.

A `Loc` is a tensor's elements in one memory: base byte address, dtype code,
shape and element strides. Views (reshape, permute, slice, expand) are new
Locs over the same bytes when strides can express them (`view`); a reshape
that strides cannot express returns None, and the lowering copies the
tensor first. `Dram` hands out the DRAM image's addresses: every phase's
weights (by param name, stored once), inputs and outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from llmc.backends.npu.isa import DTYPE_CODE, Desc, NpuError, itemsize
from llmc.ir.graph import Node

ALIGN = 64


def dtype_code(name: str) -> int:
    if name not in DTYPE_CODE or name == "i4x2":
        raise NpuError(f"the NPU has no {name} tensors")
    return DTYPE_CODE[name]


def contiguous(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= n
    return tuple(reversed(strides))


@dataclass(frozen=True)
class Loc:
    space: int
    dtype: int
    base: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]

    @classmethod
    def dense(cls, space: int, dtype: int, base: int, shape: tuple[int, ...]) -> Loc:
        return cls(space, dtype, base, tuple(shape), contiguous(tuple(shape)))

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.numel * itemsize(self.dtype)

    @property
    def is_dense(self) -> bool:
        return self.strides == contiguous(self.shape) or self.numel == 1

    def desc(self, **regs: int) -> Desc:
        """The descriptor of this tensor (rank reduced to at most 4)."""
        shape, strides = _rank4(self.shape, self.strides)
        return Desc(self.space, self.dtype, self.base, shape, strides, **regs)

    def index(self, *idx: int) -> Loc:
        """The sub-tensor at leading indices `idx`."""
        off = sum(i * s for i, s in zip(idx, self.strides, strict=False))
        return replace(self, base=self.base + off * itemsize(self.dtype),
                       shape=self.shape[len(idx):], strides=self.strides[len(idx):])

    def cols(self, start: int, n: int) -> Loc:
        """Columns start..start+n of the last dim."""
        return replace(self, base=self.base + start * self.strides[-1] * itemsize(self.dtype),
                       shape=self.shape[:-1] + (n,))

    def rows(self, start: int, n: int) -> Loc:
        """Rows start..start+n of the first dim."""
        return replace(self, base=self.base + start * self.strides[0] * itemsize(self.dtype),
                       shape=(n,) + self.shape[1:])

    def t(self) -> Loc:
        """The 2-D transpose."""
        return replace(self, shape=self.shape[::-1], strides=self.strides[::-1])


def _rank4(shape: tuple[int, ...], strides: tuple[int, ...]
           ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if not shape:
        return (1,), (0,)
    if len(shape) <= 4:
        return shape, strides
    dims = [(n, s) for n, s in zip(shape, strides, strict=True) if n != 1] or [(1, 0)]
    merged = [dims[0]]
    for n, s in dims[1:]:
        pn, ps = merged[-1]
        if ps == n * s:
            merged[-1] = (pn * n, s)
        else:
            merged.append((n, s))
    if len(merged) > 4:
        raise NpuError(f"a tensor of shape {list(shape)} needs more than 4 strided dims")
    return tuple(n for n, _ in merged), tuple(s for _, s in merged)


def reshape(loc: Loc, shape: tuple[int, ...]) -> Loc | None:
    """`loc` reshaped (row-major) without moving data, or None if strides cannot."""
    shape = tuple(int(n) for n in shape)
    if loc.is_dense:
        return replace(loc, shape=shape, strides=contiguous(shape))
    old = [(n, s) for n, s in zip(loc.shape, loc.strides, strict=True) if n != 1]
    new_strides: list[int] = []
    oi = 0
    for n in shape:
        if n == 1:
            new_strides.append(0)
            continue
        if oi >= len(old):
            return None
        # take old dims until their product is n; they must be mergeable
        prod, group = 1, []
        while prod < n and oi < len(old):
            group.append(old[oi])
            prod *= old[oi][0]
            oi += 1
        if prod == n:
            for (_, sa), (b, sb) in zip(group, group[1:], strict=False):
                if sa != b * sb:
                    return None
            new_strides.append(group[-1][1])
        elif len(group) == 1 and group[0][0] % n == 0:
            return None  # splitting one old dim across new dims: keep it simple
        else:
            return None
    if oi != len(old):
        return None
    return replace(loc, shape=shape, strides=tuple(new_strides))


def view(node: Node, loc: Loc) -> Loc | None:
    """The Loc of view node `node` over its input at `loc` (None: needs a copy)."""
    a = node.attrs
    if node.op == "reshape":
        return reshape(loc, tuple(a["shape"]))
    if node.op == "permute":
        perm = tuple(a["perm"])
        return replace(loc, shape=tuple(loc.shape[i] for i in perm),
                       strides=tuple(loc.strides[i] for i in perm))
    if node.op == "slice":
        d = a["dim"] % len(loc.shape)
        r = range(loc.shape[d])[slice(a["start"], a["end"], a["step"])]
        shape, strides = list(loc.shape), list(loc.strides)
        base = loc.base + (r.start if len(r) else 0) * strides[d] * itemsize(loc.dtype)
        shape[d], strides[d] = len(r), strides[d] * r.step
        return replace(loc, base=base, shape=tuple(shape), strides=tuple(strides))
    if node.op == "expand":
        return broadcast(loc, tuple(a["shape"]))
    raise NpuError(f"{node.op} is not a view")


def broadcast(loc: Loc, shape: tuple[int, ...]) -> Loc:
    """`loc` broadcast to `shape` (numpy rules) with zero strides."""
    pad = len(shape) - len(loc.shape)
    src = (1,) * pad + loc.shape
    st = (0,) * pad + loc.strides
    strides = tuple(0 if (m == 1 and n != 1) else s for m, n, s in zip(src, shape, st,
                                                                          strict=True))
    return replace(loc, shape=tuple(shape), strides=strides)


@dataclass
class Dram:
    """The DRAM image's map: named regions, 64-byte aligned, handed out in order."""

    regions: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> (addr, bytes)
    size: int = 0

    def alloc(self, key: str, nbytes: int) -> int:
        if key in self.regions:
            return self.regions[key][0]
        addr = self.size
        self.regions[key] = (addr, int(nbytes))
        self.size = addr + -(-max(int(nbytes), 1) // ALIGN) * ALIGN
        return addr
