"""Placing an event network on SpiNNaker 2 PEs and routing its events.

Partition: each layer's units are cut into contiguous slices, one per PE; a
PE holds its units' state and every synapse *into* them (a local CSR keyed
by presynaptic source: a row pointer per source of the layer, then 6-byte
synapses), and all of it must fit the PE's data SRAM. Each layer first gets
the fewest slices that fit (cuts balanced by synapse count); the PEs left
on the chips then go, one at a time, to the layer whose busiest PE holds the
most synapses (the time of a step is the sum over layers of their slowest
PE). Layers take PEs in order, so consecutive layers sit side by side on the
mesh. The readout goes on chip when its slices fit in the PEs the recurrent
layers leave, else the host computes it from the last layer's events.

Routing: PEs sit in quad-PEs on a mesh (the device's qpe_grid, networkx's
grid graph) with dimension-order (XY) routes; an event is multicast to the
PEs that hold synapses of its source, and costs the links of the union of
its XY routes (the multicast tree). Events between chips cross one
chip-to-chip link and enter the other chip at its quad-PE 0. The host's
input events (the token's embedding values) enter chip 0 at quad-PE 0.

A network that needs more PEs than the chips have raises DoesNotFitError
with the shortfall and what would make it fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from llmc.backends.neuromorphic.network import Layer, Network
from llmc.backends.neuromorphic.spec import NeuroSpec
from llmc.errors import LlmcError


class DoesNotFitError(LlmcError):
    """An event network larger than the chips it was compiled for."""


@dataclass
class Placement:
    """One layer on its PEs: slice k holds units cuts[k]:cuts[k+1] on PE pes[k]."""

    layer: Layer
    pes: np.ndarray            # (k,) global PE ids
    cuts: np.ndarray           # (k+1,) unit boundaries
    pe_of_row: np.ndarray      # (rows,) global PE of each target row
    bytes_per_pe: np.ndarray   # (k,) SRAM bytes used
    syn_per_pe: np.ndarray     # (k,) synapses held
    units_per_pe: np.ndarray   # (k,)


@dataclass
class Routes:
    """Where a sender's events go: per sender s of a group, dest PEs
    dpes[dptr[s]:dptr[s+1]] of one consumer layer; links and chip packets
    per event of the sender (over all its consumers)."""

    dptr: np.ndarray
    dpes: np.ndarray


@dataclass
class Mapping:
    """An event network placed on `chips` chips."""

    network: Network
    spec: NeuroSpec
    chips: int
    placements: list[Placement]          # recurrent layers, in order
    readout: Placement | None            # None: computed on the host
    # consumer routes: routes[l] for layer l's sources (inputs then recurrent)
    routes: list[Routes] = field(default_factory=list)
    readout_routes: Routes | None = None
    # per sender group g (0: host input, l+1: layer l's units): per sender
    links: list[np.ndarray] = field(default_factory=list)
    chip_packets: list[np.ndarray] = field(default_factory=list)

    @property
    def pes_used(self) -> int:
        return sum(len(p.pes) for p in self.all_placements())

    def all_placements(self) -> list[Placement]:
        return self.placements + ([self.readout] if self.readout is not None else [])

    def summary(self) -> dict[str, object]:
        b = np.concatenate([p.bytes_per_pe for p in self.all_placements()])
        return {"chips": self.chips, "pes_used": self.pes_used,
                "pes_available": self.chips * self.spec.usable_pes,
                "synapses": int(sum(p.layer.nnz for p in self.all_placements())),
                "readout": "chip" if self.readout is not None else "host",
                "sram_bytes_max_pe": int(b.max()), "sram_bytes_mean_pe": float(b.mean()),
                "sram_bytes_per_pe_capacity": self.spec.pe_data_bytes,
                "layers": [{"name": p.layer.name, "kind": p.layer.kind, "units": p.layer.h,
                            "synapses": p.layer.nnz, "pes": len(p.pes),
                            "first_pe": int(p.pes[0]),
                            "max_synapses_per_pe": int(p.syn_per_pe.max())}
                           for p in self.all_placements()]}


# ---- partition ---------------------------------------------------------------


def _bytes(layer: Layer, spec: NeuroSpec, syn: np.ndarray, units: np.ndarray) -> np.ndarray:
    fixed = (layer.n_src + 1) * spec.source_ptr_bytes
    return syn * spec.synapse_bytes + fixed + units * spec.neuron_bytes(layer.kind)


def _cuts(weights: np.ndarray, k: int) -> np.ndarray:
    """k contiguous slices of units with near-equal sums of `weights`."""
    cum = np.concatenate([[0], np.cumsum(weights)])
    want = cum[-1] * np.arange(1, k) / k
    inner = np.searchsorted(cum, want)
    cuts = np.concatenate([[0], inner, [len(weights)]])
    # every slice non-empty
    for i in range(1, k):
        cuts[i] = max(cuts[i], cuts[i - 1] + 1)
    for i in range(k - 1, 0, -1):
        cuts[i] = min(cuts[i], cuts[i + 1] - 1)
    return cuts


def _split(layer: Layer, spec: NeuroSpec, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    syn_unit = layer.unit_synapses()
    cuts = _cuts(syn_unit + 1, k)
    cum = np.concatenate([[0], np.cumsum(syn_unit)])
    syn = cum[cuts[1:]] - cum[cuts[:-1]]
    units = np.diff(cuts)
    return cuts, syn, _bytes(layer, spec, syn, units)


def fewest_slices(layer: Layer, spec: NeuroSpec) -> int | None:
    """The fewest PEs the layer fits on (None: a single unit does not fit one PE)."""
    one = _bytes(layer, spec, layer.unit_synapses(), np.ones(layer.h, np.int64))
    if one.max() > spec.pe_data_bytes:
        return None
    total = _bytes(layer, spec, np.array([layer.nnz]), np.array([layer.h]))[0]
    fixed = (layer.n_src + 1) * spec.source_ptr_bytes
    k = max(1, math.ceil((total - fixed) / max(1, spec.pe_data_bytes - fixed)))
    while k <= layer.h and _split(layer, spec, k)[2].max() > spec.pe_data_bytes:
        k += 1
    return k if k <= layer.h else None


def _place(layer: Layer, spec: NeuroSpec, k: int, first: int) -> Placement:
    cuts, syn, used = _split(layer, spec, k)
    pes = np.arange(first, first + k)
    unit_pe = np.repeat(pes, np.diff(cuts))
    return Placement(layer, pes, cuts, unit_pe[layer.row_unit()].astype(np.int32), used, syn,
                     np.diff(cuts))


def chips_needed(net: Network, spec: NeuroSpec, chips: int = 1, target: str = "spinnaker2"
                 ) -> tuple[int, list[int]]:
    """(the fewest of `chips` chips the recurrent layers fit on, the fewest PEs
    of each layer); DoesNotFitError when even `chips` are too few."""
    need = []
    for layer in net.layers:
        k = fewest_slices(layer, spec)
        if k is None:
            raise DoesNotFitError(_unit_too_big(net, layer, spec))
        need.append(k)
    if sum(need) > chips * spec.usable_pes:
        raise DoesNotFitError(_shortfall(net, spec, need, chips, target))
    return max(1, math.ceil(sum(need) / spec.usable_pes)), need


def partition(net: Network, spec: NeuroSpec, chips: int = 1, target: str = "spinnaker2"
              ) -> tuple[list[Placement], Placement | None]:
    """Place the layers (and the readout if it fits) on as few of `chips`
    chips as hold them, spreading the layers over all PEs of those chips."""
    used, need = chips_needed(net, spec, chips, target)
    budget = used * spec.usable_pes
    k_read = fewest_slices(net.readout, spec)
    on_chip = k_read is not None and sum(need) + k_read <= budget
    ks = need + ([k_read] if on_chip else [])
    layers = net.layers + ([net.readout] if on_chip else [])
    loads = [_split(layer, spec, k)[1].max() for layer, k in zip(layers, ks, strict=True)]
    while sum(ks) < budget:  # spare PEs go to the busiest layer
        i = int(np.argmax(loads))
        if loads[i] < 0:
            break                                   # every layer is one unit per PE
        ks[i] += 1
        loads[i] = _split(layers[i], spec, ks[i])[1].max() if ks[i] < layers[i].h else -1
    out, first = [], 0
    for layer, k in zip(layers, ks, strict=True):
        out.append(_place(layer, spec, k, first))
        first += k
    return (out[:-1], out[-1]) if on_chip else (out, None)


def _unit_too_big(net: Network, layer: Layer, spec: NeuroSpec) -> str:
    worst = int(layer.unit_synapses().max())
    b = worst * spec.synapse_bytes + (layer.n_src + 1) * spec.source_ptr_bytes
    return (f"{net.name}: one unit of {layer.name} has {worst:,} synapses ({b / 1024:.0f} KB), "
            f"more than a PE's {spec.pe_data_bytes / 1024:.0f} KB of SRAM; prune the model "
            f"(e.g. --sparsity) so no unit keeps more than "
            f"{spec.pe_data_bytes // spec.synapse_bytes // 2:,}")


def _shortfall(net: Network, spec: NeuroSpec, need: list[int], chips: int, target: str) -> str:
    have = chips * spec.usable_pes
    syn_bytes = net.synapses() * spec.synapse_bytes
    cap = have * spec.pe_data_bytes
    dense = sum((3 if la.kind == "egru" else 1) * la.h * (la.n_in + la.h) for la in net.layers)
    now = net.synapses() / dense
    # 0.85: row pointers and unit state take part of each PE beside the synapses
    density = now * min(1.0, cap / max(1, syn_bytes)) * 0.85
    more = math.ceil(sum(need) / spec.usable_pes)
    hint = (f"compile for --target spinnaker2-board (up to {spec.chips_for('spinnaker2-board')}"
            f" chips; this needs {more})" if target != "spinnaker2-board"
            else "the board is full")
    return (f"{net.name} does not fit {chips} SpiNNaker 2 chip{'s' * (chips > 1)}: it needs "
            f"{sum(need)} PEs for {net.synapses():,} synapses ({syn_bytes / 2**20:.1f} MB), "
            f"{have} are usable ({cap / 2**20:.1f} MB of PE SRAM), short by "
            f"{sum(need) - have} PEs; {hint}, or prune harder: keep about {density:.1%} of the "
            f"weights (now {now:.1%})")


# ---- routing -----------------------------------------------------------------


def _xy_links(grid: tuple[int, int]) -> np.ndarray:
    """(Q, Q, L) bool: the links of the XY route from quad-PE a to b, on the
    mesh networkx.grid_2d_graph builds (L = its edges)."""
    gx, gy = grid
    mesh = nx.grid_2d_graph(gx, gy)
    index = {frozenset(e): i for i, e in enumerate(mesh.edges())}
    q = gx * gy
    out = np.zeros((q, q, len(index)), bool)
    for a in range(q):
        for b in range(q):
            (x, y), (x1, y1) = (a % gx, a // gx), (b % gx, b // gx)
            path = [(x, y)]
            while x != x1:
                x += 1 if x1 > x else -1
                path.append((x, y))
            while y != y1:
                y += 1 if y1 > y else -1
                path.append((x, y))
            for u, v in zip(path, path[1:], strict=False):
                out[a, b, index[frozenset((u, v))]] = True
    return out


def _consumer_routes(place: Placement) -> Routes:
    """For each source of the placed layer, the PEs holding its synapses."""
    layer = place.layer
    src = np.repeat(np.arange(layer.n_src), np.diff(layer.src_ptr))
    first = int(place.pes[0])
    mark = np.zeros((layer.n_src, len(place.pes)), bool)
    mark[src, place.pe_of_row[layer.tgt] - first] = True
    s, p = np.nonzero(mark)
    dptr = np.concatenate([[0], np.cumsum(mark.sum(1))])
    return Routes(dptr.astype(np.int64), (p + first).astype(np.int32))


def _tree_costs(src_pes: np.ndarray, dests: list[np.ndarray], spec: NeuroSpec,
                links: np.ndarray, chips: int) -> tuple[np.ndarray, np.ndarray]:
    """Per sender: (mesh links, chip-to-chip packets) of one event multicast
    to its dest PEs (src_pes -1: the host, entering chip 0 at quad-PE 0)."""
    usable, q = spec.usable_pes, links.shape[0]
    n = len(dests)
    hit = np.zeros((n, chips, q), bool)                   # dest quad-PEs per chip
    for i, d in enumerate(dests):
        hit[i, d // usable, (d % usable) // 4] = True
    src_chip = np.where(src_pes >= 0, src_pes // usable, 0)
    src_q = np.where(src_pes >= 0, (src_pes % usable) // 4, 0)
    n_links = np.zeros(n, np.int64)
    n_chip = np.zeros(n, np.int64)
    flat = links.reshape(q, q, -1)
    for c in range(chips):
        any_dest = hit[:, c].any(1)
        n_chip += any_dest & (src_chip != c)
        start = np.where(src_chip == c, src_q, 0)         # other chips: enter at quad-PE 0
        for s0 in np.unique(start[any_dest]):
            rows = any_dest & (start == s0)
            used = hit[rows, c].astype(np.int32) @ flat[s0].astype(np.int32) > 0
            n_links[rows] += used.sum(1)
    return n_links, n_chip


def route(net: Network, spec: NeuroSpec, placements: list[Placement],
          readout: Placement | None, chips: int) -> Mapping:
    links = _xy_links(spec.qpe_grid)
    routes = [_consumer_routes(p) for p in placements]
    rroutes = _consumer_routes(readout) if readout is not None else None
    m = Mapping(net, spec, chips, placements, readout, routes, rroutes)
    # sender groups: 0 = the host's input values, l + 1 = layer l's units
    n_in = placements[0].layer.n_in
    groups = [(np.full(n_in, -1), [_dests(routes[0], j) for j in range(n_in)])]
    for li, p in enumerate(placements):
        unit_pe = np.repeat(p.pes, p.units_per_pe)
        nxt = routes[li + 1] if li + 1 < len(placements) else rroutes
        dl = [np.concatenate([_dests(routes[li], p.layer.n_in + n)]
                             + ([_dests(nxt, n)] if nxt is not None else []))
              for n in range(p.layer.h)]
        groups.append((unit_pe, dl))
    for src_pes, dests in groups:
        n_links, n_chip = _tree_costs(src_pes, dests, spec, links, chips)
        m.links.append(n_links)
        m.chip_packets.append(n_chip)
    return m


def _dests(r: Routes, s: int) -> np.ndarray:
    return r.dpes[r.dptr[s]:r.dptr[s + 1]]


def map_network(net: Network, spec: NeuroSpec, chips: int = 1, target: str = "spinnaker2"
                ) -> Mapping:
    """Partition and route `net` on `chips` chips (see the module docstring)."""
    placements, readout = partition(net, spec, chips, target)
    used = chips_needed(net, spec, chips, target)[0]
    return route(net, spec, placements, readout, used)
