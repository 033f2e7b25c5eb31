"""The planner's vocabulary: buffers with lifetimes, a problem, a plan.

A memory plan gives every buffer a byte offset in one arena so that two
buffers that are live at the same step never share a byte. Steps are
integers (the position of an op in the execution order); a buffer is live
over ``[start, end]`` inclusive, so a buffer read by the op that writes
another one overlaps it at that step.

Sizes are rounded up to the problem's alignment before planning (every
offset is a multiple of it), so the arena and the lower bound are counted in
aligned bytes.

Backends may constrain where a buffer goes (*placement rules*): a buffer's
own ``alignment`` (a DMA engine's burst, a vector unit's row), and, in a
scratchpad of banks of ``Problem.bank_bytes``, ``bank="start"`` (begin on a
bank boundary) or ``bank="within"`` (touch no more banks than its size needs:
a buffer that fits in a bank stays inside one).

A buffer must be in the arena at the steps it is written and read
(``access``); in between it may be *spilled* to DRAM and brought back, when
an arena is too small for everything live (``llmc.passes.memplan.spill``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from llmc.errors import UsageError

BlockKey = Hashable  # a transformer layer index, a sub-graph name, ...
BANK_RULES = ("start", "within")


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True)
class Buffer:
    """A tensor to place: ``size`` bytes live over steps ``[start, end]``.

    ``block`` optionally names the repeated structure (e.g. the transformer
    layer index) the buffer lives entirely inside; buffers that cross block
    boundaries (the residual stream) leave it ``None``. Only the MEMO-style
    decomposition (:func:`plan_blocks`) reads it.

    ``alignment`` (bytes) and ``bank`` (one of ``BANK_RULES``) are placement
    rules (module docstring). ``access`` lists the step ranges ``(a, b)`` in
    which the buffer is written or read, so must be in the arena; the steps
    between them may be spent spilled. Empty means "written at ``start``,
    read at ``end``".
    """

    name: str
    size: int
    start: int
    end: int
    block: BlockKey | None = None
    alignment: int | None = None
    bank: str | None = None
    access: tuple[tuple[int, int], ...] = ()

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
        if self.alignment is not None and (not _is_int(self.alignment) or self.alignment < 1):
            raise UsageError(f"buffer {self.name!r}: alignment must be a positive integer, "
                             f"got {self.alignment!r}")
        if self.bank is not None and self.bank not in BANK_RULES:
            raise UsageError(f"buffer {self.name!r}: bank rule must be one of {BANK_RULES}, "
                             f"got {self.bank!r}")
        object.__setattr__(self, "access", self._checked_access())

    def _checked_access(self) -> tuple[tuple[int, int], ...]:
        out = []
        for r in self.access:
            ok = isinstance(r, (tuple, list)) and len(r) == 2 and all(map(_is_int, r))
            if not ok or not self.start <= r[0] <= r[1] <= self.end:
                raise UsageError(
                    f"buffer {self.name!r}: access {r!r} must be a step range (a, b) with "
                    f"{self.start} <= a <= b <= {self.end}")
            out.append((r[0], r[1]))
        return tuple(sorted(set(out)))

    def anchors(self) -> list[tuple[int, int]]:
        """The step ranges the buffer must spend in the arena, merged and
        sorted: its accesses plus its first and last step. Between two
        anchors lies at least one step it could spend spilled."""
        ranges = sorted([*self.access, (self.start, self.start), (self.end, self.end)])
        out: list[tuple[int, int]] = []
        for a, b in ranges:
            if out and a <= out[-1][1] + 1:
                out[-1] = (out[-1][0], max(out[-1][1], b))
            else:
                out.append((a, b))
        return out

    def overlaps(self, other: Buffer) -> bool:
        """True when the two lifetimes share at least one step."""
        return self.start <= other.end and other.start <= self.end


@dataclass(frozen=True)
class Problem:
    """Buffers to place in one arena whose offsets are multiples of ``alignment``."""

    buffers: tuple[Buffer, ...]
    alignment: int = 64
    bank_bytes: int | None = None

    def __init__(self, buffers: Iterable[Buffer], alignment: int = 64,
                 bank_bytes: int | None = None) -> None:
        bufs = tuple(buffers)
        if not _is_int(alignment) or alignment < 1:
            raise UsageError(f"alignment must be a positive integer, got {alignment!r}")
        if bank_bytes is not None and (not _is_int(bank_bytes) or bank_bytes < 1):
            raise UsageError(f"bank size must be a positive integer of bytes, got {bank_bytes!r}")
        seen: set[str] = set()
        for b in bufs:
            if not isinstance(b, Buffer):
                raise UsageError(f"expected Buffer objects, got {type(b).__name__}")
            if b.name in seen:
                raise UsageError(f"buffer name {b.name!r} appears twice; names must be unique")
            seen.add(b.name)
        object.__setattr__(self, "buffers", bufs)
        object.__setattr__(self, "alignment", alignment)
        object.__setattr__(self, "bank_bytes", bank_bytes)
        for b in bufs:
            self._check_rules(b)

    def _check_rules(self, b: Buffer) -> None:
        if b.bank is None:
            return
        if self.bank_bytes is None:
            raise UsageError(f"buffer {b.name!r} has bank rule {b.bank!r} but the problem "
                             "has no bank size (bank_bytes)")
        if self.bank_bytes % self.align_of(b):
            raise UsageError(f"buffer {b.name!r}: the bank size {self.bank_bytes} is not a "
                             f"multiple of its alignment {self.align_of(b)}")

    def align_of(self, b: Buffer) -> int:
        """The alignment of ``b``'s offset: the problem's and its own, both."""
        return math.lcm(self.alignment, b.alignment or 1)

    def slack_of(self, b: Buffer) -> int | None:
        """For a banked buffer, the largest offset within a bank it may start
        at (0 for ``bank="start"``); None when it has no bank rule."""
        if b.bank is None or self.bank_bytes is None:
            return None
        if b.bank == "start":
            return 0
        bank, size = self.bank_bytes, self.aligned(b.size)
        slack = -(-size // bank) * bank - size if size else bank - self.align_of(b)
        return slack - slack % self.align_of(b)

    @property
    def has_rules(self) -> bool:
        """True when some buffer has its own alignment or a bank rule."""
        return any(b.bank is not None or self.align_of(b) != self.alignment
                   for b in self.buffers)

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
class Segment:
    """A stretch of steps ``[start, end]`` a spilled buffer spends in the arena
    at ``offset``; between two segments it is in DRAM."""

    start: int
    end: int
    offset: int


@dataclass(frozen=True)
class Spills:
    """What a plan moves between the arena and DRAM.

    ``segments``: for every spilled buffer, its stays in the arena, in step
    order (a buffer not named here stays at its offset all its life). Each
    spilled buffer is written to DRAM once, after its first segment, and read
    back at the start of each later one. ``bound_bytes`` is the proved lower
    bound on the bytes moved (equal to ``moved_bytes`` when proved minimal).
    """

    capacity_bytes: int
    segments: dict[str, tuple[Segment, ...]]
    to_dram_bytes: int
    from_dram_bytes: int
    bound_bytes: int = 0

    @property
    def moved_bytes(self) -> int:
        """DMA traffic the spills add: bytes written to DRAM plus bytes read back."""
        return self.to_dram_bytes + self.from_dram_bytes


@dataclass(frozen=True)
class Plan:
    """Offsets (bytes) for every buffer of a problem and how they were found.

    ``status`` is ``"optimal"`` (proved: the solver closed, or the plan meets
    the lower bound), ``"feasible"`` (a solver stopped at its time limit with
    its best plan) or ``"heuristic"`` (a greedy plan). ``bound_bytes`` is the
    best proved lower bound on the arena (at least ``lower_bound_bytes``; a
    solver may prove more). ``spills`` is set for a plan that fits a capacity
    below the lower bound by spilling; its objective is then the bytes moved,
    and ``offsets`` give each buffer's first segment. ``info`` carries
    method-specific statistics (block classes, solver phases, ...).
    """

    offsets: dict[str, int]
    arena_bytes: int
    method: str
    solve_s: float
    status: str = "heuristic"
    lower_bound_bytes: int = 0
    info: dict[str, object] = field(default_factory=dict)
    bound_bytes: int = 0
    spills: Spills | None = None

    @property
    def ratio(self) -> float:
        """Arena over lower bound (1.0 is optimal); 1.0 for an empty problem."""
        if self.lower_bound_bytes == 0:
            return 1.0
        return self.arena_bytes / self.lower_bound_bytes

    @property
    def optimal(self) -> bool:
        """Proved optimal: the least arena, or, with spills, the fewest bytes moved."""
        return self.status == "optimal"

    @property
    def proved_bound(self) -> int:
        """The proved lower bound on the objective (arena bytes, or bytes moved)."""
        if self.spills is not None:
            return self.spills.bound_bytes
        return max(self.bound_bytes, self.lower_bound_bytes)

    @property
    def gap(self) -> float | None:
        """(objective - proved bound) / proved bound: how far from optimal the
        plan can at most be; 0.0 when proved optimal, None when nothing above
        zero is proved."""
        if self.optimal:
            return 0.0
        value = self.spills.moved_bytes if self.spills is not None else self.arena_bytes
        bound = self.proved_bound
        if not bound:
            return 0.0 if value == 0 else None
        return (value - bound) / bound


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
