"""The planner's vocabulary: buffers with lifetimes, a problem, a plan.

A memory plan gives every buffer a byte offset in one arena so that two
buffers that are live at the same step never share a byte. Steps are
integers (the position of an op in the execution order); a buffer is live
over ``[start, end]`` inclusive, so a buffer read by the op that writes
another one overlaps it at that step.

Sizes are rounded up to the problem's alignment before planning (every
offset is a multiple of it), so the arena and the lower bound are counted in
aligned bytes.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from llmc.errors import UsageError

BlockKey = Hashable  # a transformer layer index, a sub-graph name, ...


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True)
class Buffer:
    """A tensor to place: ``size`` bytes live over steps ``[start, end]``.

    ``block`` optionally names the repeated structure (e.g. the transformer
    layer index) the buffer lives entirely inside; buffers that cross block
    boundaries (the residual stream) leave it ``None``. Only the MEMO-style
    decomposition (:func:`plan_blocks`) reads it.
    """

    name: str
    size: int
    start: int
    end: int
    block: BlockKey | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise UsageError(f"buffer name must be a non-empty string, got {self.name!r}")
        if not _is_int(self.size) or self.size < 0:
            raise UsageError(
                f"buffer {self.name!r}: size must be a non-negative integer of bytes, "
                f"got {self.size!r}"
            )
        if not _is_int(self.start) or not _is_int(self.end):
            raise UsageError(
                f"buffer {self.name!r}: start and end must be integer steps, "
                f"got {self.start!r}..{self.end!r}"
            )
        if self.end < self.start:
            raise UsageError(
                f"buffer {self.name!r}: lifetime ends (step {self.end}) before it starts "
                f"(step {self.start}); use end >= start"
            )

    def overlaps(self, other: Buffer) -> bool:
        """True when the two lifetimes share at least one step."""
        return self.start <= other.end and other.start <= self.end


@dataclass(frozen=True)
class Problem:
    """Buffers to place in one arena whose offsets are multiples of ``alignment``."""

    buffers: tuple[Buffer, ...]
    alignment: int = 64

    def __init__(self, buffers: Iterable[Buffer], alignment: int = 64) -> None:
        bufs = tuple(buffers)
        if not _is_int(alignment) or alignment < 1:
            raise UsageError(f"alignment must be a positive integer, got {alignment!r}")
        seen: set[str] = set()
        for b in bufs:
            if not isinstance(b, Buffer):
                raise UsageError(f"expected Buffer objects, got {type(b).__name__}")
            if b.name in seen:
                raise UsageError(f"buffer name {b.name!r} appears twice; names must be unique")
            seen.add(b.name)
        object.__setattr__(self, "buffers", bufs)
        object.__setattr__(self, "alignment", alignment)

    def aligned(self, size: int) -> int:
        """``size`` rounded up to a multiple of the alignment."""
        a = self.alignment
        return -(-size // a) * a

    def by_name(self) -> dict[str, Buffer]:
        return {b.name: b for b in self.buffers}

    @property
    def has_blocks(self) -> bool:
        return any(b.block is not None for b in self.buffers)


@dataclass(frozen=True)
class Plan:
    """Offsets (bytes) for every buffer of a problem and how they were found.

    ``status`` is ``"optimal"`` (proved: the MIP closed, or the plan meets the
    lower bound), ``"feasible"`` (a solver stopped at its time limit with its
    best plan) or ``"heuristic"`` (a greedy plan). ``info`` carries
    method-specific statistics (block classes, solver gaps, ...).
    """

    offsets: dict[str, int]
    arena_bytes: int
    method: str
    solve_s: float
    status: str = "heuristic"
    lower_bound_bytes: int = 0
    info: dict[str, object] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """Arena over lower bound (1.0 is optimal); 1.0 for an empty problem."""
        if self.lower_bound_bytes == 0:
            return 1.0
        return self.arena_bytes / self.lower_bound_bytes


def arena_of(problem: Problem, offsets: dict[str, int]) -> int:
    """Bytes needed to hold every buffer at ``offsets`` (aligned sizes)."""
    top = 0
    for b in problem.buffers:
        size = problem.aligned(b.size)
        if size:
            top = max(top, offsets[b.name] + size)
    return top


def load_profile(problem: Problem) -> list[tuple[int, int]]:
    """(step, live aligned bytes) at every step where the load changes.

    A sweep over lifetime starts and ends: O(n log n).
    """
    delta: dict[int, int] = {}
    for b in problem.buffers:
        s = problem.aligned(b.size)
        if s:
            delta[b.start] = delta.get(b.start, 0) + s
            delta[b.end + 1] = delta.get(b.end + 1, 0) - s
    out: list[tuple[int, int]] = []
    live = 0
    for step in sorted(delta):
        live += delta[step]
        out.append((step, live))
    return out


def peak_step(problem: Problem) -> tuple[int, int]:
    """(first step of maximal load, that load in aligned bytes); (0, 0) if empty."""
    best = (0, 0)
    for step, live in load_profile(problem):
        if live > best[1]:
            best = (step, live)
    return best


def lower_bound(problem: Problem) -> int:
    """Max over steps of the aligned bytes live at that step.

    No plan can use less: everything live at one step needs disjoint bytes.
    """
    return peak_step(problem)[1]


def live_at(problem: Problem, step: int) -> list[Buffer]:
    """Buffers of non-zero size live at ``step``, largest first (ties by name)."""
    live = [b for b in problem.buffers if b.size and b.start <= step <= b.end]
    return sorted(live, key=lambda b: (-b.size, b.name))


def problem_from_intervals(
    rows: Iterable[tuple[str, int, int, int, BlockKey | None]], alignment: int = 64
) -> Problem:
    """A problem from ``(name, size, start, end, block)`` rows (e.g. IR liveness)."""
    return Problem((Buffer(n, s, a, e, blk) for n, s, a, e, blk in rows), alignment)
