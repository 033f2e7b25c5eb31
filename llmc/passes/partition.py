"""Pipeline partitioning: contiguous runs of transformer layers per stage.

A stage is a device (pipeline parallelism over GPUs) or a group of cores
(an NPU cluster, SpiNNaker 2 processing elements) holding its layers'
weights. The graph's computing nodes are grouped by layer (``loc``
"layers.N"); the nodes before the first layer (embedding) join layer 0's
unit and those after the last (final norm, LM head) the last layer's, and
every unit carries the weights its nodes read. A partition splits the units
into contiguous stages; :func:`partition_layers` minimises the slowest
stage's cost (dynamic programming over split points, the linear-partition
problem) with every stage's weights within a capacity; :func:`fewest_stages`
finds the least number of stages that fit.

The cost of a node is a function the caller gives (FLOPs by default; the
``llmc partition`` command uses the roofline time on a device).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llmc.errors import UsageError
from llmc.ir.alias import alias_root, layer_of
from llmc.ir.cost import node_cost
from llmc.ir.graph import Graph, Node
from llmc.ir.ops import get_op
from llmc.passes.rewrite import annotate

Cost = Callable[[Node], float]


def flops(node: Node) -> float:
    return float(node_cost(node).flops)


@dataclass(frozen=True)
class Unit:
    """One layer with the nodes run before or after it (module docstring)."""

    layer: int
    nodes: tuple[Node, ...]
    cost: float
    weight_bytes: int


@dataclass(frozen=True)
class Stage:
    index: int
    units: range  # indices into Partition.units
    first_layer: int
    last_layer: int
    cost: float
    weight_bytes: int

    def to_json(self) -> dict:
        return {"stage": self.index, "layers": [self.first_layer, self.last_layer],
                "cost": self.cost, "weight_bytes": self.weight_bytes}


@dataclass(frozen=True)
class Partition:
    stages: tuple[Stage, ...]
    units: tuple[Unit, ...]

    @property
    def bottleneck(self) -> float:
        """The slowest stage's cost: a pipeline's time per item in steady state."""
        return max(s.cost for s in self.stages)

    @property
    def balance(self) -> float:
        """Total cost / (stages x bottleneck): 1.0 when every stage is equal."""
        total = sum(s.cost for s in self.stages)
        return total / (len(self.stages) * self.bottleneck) if self.bottleneck else 1.0

    def stage_of(self) -> dict[Node, int]:
        out = {}
        for s in self.stages:
            for u in (self.units[i] for i in s.units):
                out.update(dict.fromkeys(u.nodes, s.index))
        return out

    def to_json(self) -> dict:
        return {"stages": [s.to_json() for s in self.stages], "bottleneck": self.bottleneck,
                "balance": round(self.balance, 6)}


def layer_units(graph: Graph, cost: Cost = flops) -> tuple[Unit, ...]:
    """The graph's layers as units, in order (module docstring)."""
    layered = [layer_of(n) for n in graph.nodes]
    present = sorted({k for k in layered if k is not None})
    if not present:
        raise UsageError(f"{graph.name}: no transformer layers (loc 'layers.N') to partition")
    first_at = layered.index(present[0])
    members: dict[int, list[Node]] = {k: [] for k in present}
    for i, n in enumerate(graph.nodes):
        if get_op(n.op).kind == "source":
            continue
        k = layered[i]
        if k is None:
            k = present[0] if i < first_at else present[-1]
        members[k].append(n)
    units = []
    for k in present:
        params = {v.node for n in members[k] for v in n.inputs
                  if v.node.op == "param" and not v.node.attrs.get("buffer")}
        units.append(Unit(k, tuple(members[k]), sum(cost(n) for n in members[k]),
                          sum(p.type.nbytes for p in params)))
    return tuple(units)


def partition_layers(graph: Graph, stages: int, capacity_bytes: int | None = None,
                     cost: Cost = flops) -> Partition:
    """The contiguous split into `stages` with the least slowest-stage cost
    whose stages each hold at most `capacity_bytes` of weights."""
    units = layer_units(graph, cost)
    if not 1 <= stages <= len(units):
        raise UsageError(f"{graph.name}: cannot split {len(units)} layers into {stages} stages "
                         f"(give 1 to {len(units)})")
    _check_each_fits(graph, units, capacity_bytes)
    bounds = _split([u.cost for u in units], [u.weight_bytes for u in units], stages,
                    capacity_bytes)
    if bounds is None:
        need = sum(u.weight_bytes for u in units)
        raise UsageError(f"{graph.name}: {need:,} B of weights do not fit in {stages} stages of "
                         f"{capacity_bytes:,} B (at least "
                         f"{len(fewest_stages(graph, capacity_bytes, cost).stages)} needed)")
    return _partition(units, bounds)


def fewest_stages(graph: Graph, capacity_bytes: int, cost: Cost = flops) -> Partition:
    """The fewest stages whose weights each fit in `capacity_bytes` (layers
    packed greedily in order, which is optimal for a contiguous split), then
    balanced by :func:`partition_layers` at that count."""
    units = layer_units(graph, cost)
    _check_each_fits(graph, units, capacity_bytes)
    count, held = 1, 0
    for u in units:
        if held + u.weight_bytes > capacity_bytes:
            count, held = count + 1, 0
        held += u.weight_bytes
    return _partition(units, _split([u.cost for u in units], [u.weight_bytes for u in units],
                                    count, capacity_bytes))


def boundary_bytes(partition: Partition) -> list[int]:
    """Bytes each stage boundary carries: the values made at or before the
    boundary that a later stage reads (the residual stream, and anything
    every layer reads, such as a mask made before layer 0)."""
    stage = partition.stage_of()
    out = []
    for b in range(len(partition.stages) - 1):
        crossing = {alias_root(x) for n, s in stage.items() if s > b for x in n.inputs
                    if stage.get(alias_root(x).node, b + 1) <= b}
        out.append(sum(v.type.nbytes for v in crossing))
    return out


def annotate_stages(graph: Graph, partition: Partition) -> Graph:
    """`graph` with every computing node's stage as its ``stage`` attribute."""
    return annotate(graph, {n: {"stage": s} for n, s in partition.stage_of().items()})


def _check_each_fits(graph: Graph, units: Sequence[Unit], capacity: int | None) -> None:
    if capacity is None:
        return
    if capacity <= 0:
        raise UsageError(f"the capacity per stage must be positive, got {capacity}")
    big = max(units, key=lambda u: u.weight_bytes)
    if big.weight_bytes > capacity:
        raise UsageError(f"{graph.name}: layer {big.layer} alone has {big.weight_bytes:,} B of "
                         f"weights, {big.weight_bytes - capacity:,} B more than a stage's "
                         f"{capacity:,} B; split its matrices (tensor parallelism) or give "
                         "more memory per stage")


def _split(costs: Sequence[float], sizes: Sequence[int], stages: int,
           capacity: int | None) -> list[int] | None:
    """End index (exclusive) of each stage minimising the largest stage cost,
    every stage within `capacity`; None when no split fits. Ties go to the
    split whose stages end earliest (deterministic)."""
    n = len(costs)
    pc = [0.0]
    ps = [0]
    for c, s in zip(costs, sizes, strict=True):
        pc.append(pc[-1] + c)
        ps.append(ps[-1] + s)
    inf = float("inf")
    # best[k][i]: least bottleneck of the first i units in k stages; cut[k][i]: its last start
    best = [[inf] * (n + 1) for _ in range(stages + 1)]
    cut = [[0] * (n + 1) for _ in range(stages + 1)]
    best[0][0] = 0.0
    for k in range(1, stages + 1):
        for i in range(k, n - (stages - k) + 1):
            for j in range(k - 1, i):
                if capacity is not None and ps[i] - ps[j] > capacity:
                    continue
                v = max(best[k - 1][j], pc[i] - pc[j])
                if v < best[k][i]:
                    best[k][i], cut[k][i] = v, j
    if best[stages][n] == inf:
        return None
    ends, i = [], n
    for k in range(stages, 0, -1):
        ends.append(i)
        i = cut[k][i]
    return ends[::-1]


def _partition(units: tuple[Unit, ...], ends: list[int] | None) -> Partition:
    assert ends is not None
    stages, start = [], 0
    for idx, end in enumerate(ends):
        part = units[start:end]
        stages.append(Stage(idx, range(start, end), part[0].layer, part[-1].layer,
                            sum(u.cost for u in part), sum(u.weight_bytes for u in part)))
        start = end
    return Partition(tuple(stages), units)
