"""The event-driven simulator: a mapped network run step by step (one token a
step), counting what each PE does, then turned into time and energy.

Per step, layer by layer: the layer's input events (the host's embedding
values for layer 0, the previous layer's events of this step otherwise) and
its own events of the previous step walk their synapse rows into the target
accumulators (the numba loop `_propagate`, which also counts the synaptic
operations per PE); each event is one packet to each PE holding synapses of
its source (`_packets`); then every unit updates (the egru_layer /
lif_layer equations of llmc/ir/ops/events.py, in float64) and the new
events are those that crossed the threshold. The readout accumulates the
last layer's events into the logits, on chip or on the host (mapping).

Counts per PE and step -> time and energy (costs.py): a step takes, layer
after layer, the slowest PE of the layer (synops x cycles_per_synop +
packets x cycles_per_packet + units x cycles_per_neuron) plus the per-step
overhead; energy is the chips' idle power over that time plus active
cycles, SRAM bytes, mesh-link and chip-link packets at their per-op energies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numba
import numpy as np

from llmc.backends.neuromorphic import fixed
from llmc.backends.neuromorphic.mapping import Mapping, Placement


@numba.njit(cache=True)
def _propagate(src: np.ndarray, val: np.ndarray, ptr: np.ndarray, tgt: np.ndarray,
               wts: np.ndarray, acc: np.ndarray, pe_of_row: np.ndarray,
               synops: np.ndarray) -> None:  # pragma: no cover - compiled
    for e in range(src.shape[0]):
        s, v = src[e], val[e]
        for k in range(ptr[s], ptr[s + 1]):
            row = tgt[k]
            acc[row] += wts[k] * v
            synops[pe_of_row[row]] += 1


@numba.njit(cache=True)
def _packets(src: np.ndarray, dptr: np.ndarray, dpes: np.ndarray,
             packets: np.ndarray) -> None:  # pragma: no cover - compiled
    for e in range(src.shape[0]):
        s = src[e]
        for k in range(dptr[s], dptr[s + 1]):
            packets[dpes[k]] += 1


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class Counts:
    """What the simulated chips did, summed over steps (per PE where shaped)."""

    steps: int
    synops: np.ndarray             # (PEs,)
    packets: np.ndarray            # (PEs,) event packets received
    unit_updates: np.ndarray       # (PEs,)
    events: list[int]              # per sender group: host input, layer 0, 1, ...
    unit_steps: list[int]          # per recurrent layer: units x steps
    mesh_links: int = 0            # link traversals on the NoC meshes
    chip_packets: int = 0          # chip-to-chip packets
    critical_cycles: float = 0.0   # sum over steps of the per-layer slowest PE (no overhead)
    wall_s: float = 0.0

    @property
    def total_synops(self) -> int:
        return int(self.synops.sum())

    def event_rates(self) -> list[float]:
        """Per recurrent layer: events / (units x steps)."""
        return [e / max(1, u) for e, u in zip(self.events[1:], self.unit_steps, strict=False)]


@dataclass
class SimResult:
    logits: np.ndarray                         # (T, V)
    events: list[np.ndarray]                   # per layer (T, H) event indicator
    counts: Counts
    state: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


def _layer_cycles(counts_pe: np.ndarray, place: Placement) -> float:
    return float(counts_pe[place.pes].max()) if len(place.pes) else 0.0


class Simulator:
    """Runs a Mapping; keeps the recurrent state between calls (generation)."""

    def __init__(self, mapping: Mapping, numeric: str = "float", trace: int = 0) -> None:
        """numeric: "float" (float64, the reference) or "fixed" (fixed.py's
        Q.F integers, what the RTL neuron cores compute); trace: record the
        operands of the first `trace` unit updates of layer 0 (fixed only)."""
        self.m = mapping
        net = mapping.network
        self.n_pe = max(int(p.pes[-1]) + 1 for p in mapping.all_placements())
        self.state = [(np.zeros(layer.h), np.zeros(layer.h)) for layer in net.layers]
        self.numeric = numeric
        self.trace_left = trace
        self.traced: list[dict[str, int]] = []
        if numeric == "fixed":  # integer-valued float64: the products and sums stay exact
            self.wq = [fixed.to_fixed(la.wts).astype(np.float64)
                       for la in [*net.layers, net.readout]]
        elif numeric != "float":
            raise ValueError(f"numeric must be float or fixed, got {numeric!r}")

    def reset(self) -> None:
        self.state = [(np.zeros_like(a), np.zeros_like(b)) for a, b in self.state]

    def run(self, tokens: np.ndarray | list[int]) -> SimResult:
        """Feed `tokens` one a step from the current state; logits (T, V)."""
        m, spec, net = self.m, self.m.spec, self.m.network
        t0 = time.perf_counter()
        n_layers = len(net.layers)
        c = Counts(0, np.zeros(self.n_pe, np.int64), np.zeros(self.n_pe, np.int64),
                   np.zeros(self.n_pe, np.int64), [0] * (n_layers + 1), [0] * n_layers)
        logits = np.zeros((len(tokens), net.vocab))
        ev_hist = [np.zeros((len(tokens), layer.h), bool) for layer in net.layers]
        unit_cycles = {p.layer.name: spec.neuron_cycles(p.layer.kind) for p in
                       m.all_placements()}
        for t, tok in enumerate(tokens):
            step_syn = np.zeros(self.n_pe, np.int64)
            step_pk = np.zeros(self.n_pe, np.int64)
            x = net.embed[int(tok) % net.embed.shape[0]]
            if self.numeric == "fixed":
                x = fixed.to_fixed(x).astype(np.float64)
            in_src = np.nonzero(x)[0].astype(np.int64)
            in_val = x[in_src]
            c.events[0] += in_src.size
            c.mesh_links += int(m.links[0][in_src].sum())
            c.chip_packets += int(m.chip_packets[0][in_src].sum())
            critical = 0.0
            for li, (layer, place, routes) in enumerate(zip(net.layers, m.placements, m.routes,
                                                            strict=True)):
                s_prev, y_prev = self.state[li]
                rec = np.nonzero(y_prev)[0].astype(np.int64)
                src = np.concatenate([in_src, layer.n_in + rec])
                val = np.concatenate([in_val, y_prev[rec]])
                acc = np.zeros(layer.rows)
                wts = self.wq[li] if self.numeric == "fixed" else layer.wts
                _propagate(src, val, layer.src_ptr, layer.tgt, wts, acc, place.pe_of_row,
                           step_syn)
                _packets(src, routes.dptr, routes.dpes, step_pk)
                if self.numeric == "fixed":
                    y, s = self._update_fixed(li, layer, acc, s_prev)
                else:
                    y, s = self._update(layer, acc, s_prev, y_prev)
                self.state[li] = (s, y)
                fired = np.nonzero(y)[0]
                ev_hist[li][t, fired] = True
                c.events[li + 1] += fired.size
                c.unit_steps[li] += layer.h
                c.mesh_links += int(m.links[li + 1][fired].sum())
                c.chip_packets += int(m.chip_packets[li + 1][fired].sum())
                critical += self._slowest(place, step_syn, step_pk, unit_cycles)
                in_src, in_val = fired.astype(np.int64), y[fired]
            logits[t] = self._readout(in_src, in_val, step_syn, step_pk)
            if m.readout is not None:
                critical += self._slowest(m.readout, step_syn, step_pk, unit_cycles)
            c.synops += step_syn
            c.packets += step_pk
            c.critical_cycles += critical
        for p in m.all_placements():
            c.unit_updates[p.pes] += p.units_per_pe * len(tokens)
        c.steps = len(tokens)
        c.wall_s = time.perf_counter() - t0
        return SimResult(logits, ev_hist, c, list(self.state))

    def _slowest(self, place: Placement, syn: np.ndarray, pk: np.ndarray,
                 unit_cycles: dict[str, float]) -> float:
        spec = self.m.spec
        cyc = (syn[place.pes] * spec.cycles_per_synop + pk[place.pes] * spec.cycles_per_packet
               + place.units_per_pe * unit_cycles[place.layer.name])
        return float(cyc.max())

    def _readout(self, src: np.ndarray, val: np.ndarray, syn: np.ndarray,
                 pk: np.ndarray) -> np.ndarray:
        r = self.m.network.readout
        acc = np.zeros(r.rows)
        place = self.m.readout
        fixed_point = self.numeric == "fixed"
        wts = self.wq[-1] if fixed_point else r.wts
        if place is not None:
            _propagate(src, val, r.src_ptr, r.tgt, wts, acc, place.pe_of_row, syn)
            _packets(src, self.m.readout_routes.dptr, self.m.readout_routes.dpes, pk)
        else:  # the host's product: counted nowhere on the chip
            dummy_pe = np.zeros(r.rows, np.int32)
            _propagate(src, val, r.src_ptr, r.tgt, wts, acc, dummy_pe,
                       np.zeros(1, np.int64))
        if fixed_point:
            return fixed.from_fixed(_shift(acc) + fixed.to_fixed(r.bias))
        return acc + r.bias

    def _update_fixed(self, li: int, layer, acc: np.ndarray, s_prev: np.ndarray  # noqa: ANN001
                      ) -> tuple[np.ndarray, np.ndarray]:
        """fixed.py's unit update; events carry Q.F values (a LIF spike is ONE)."""
        h, b = layer.h, fixed.to_fixed(layer.bias)
        a = _shift(acc)
        c = s_prev.astype(np.int64)
        th = int(fixed.to_fixed(layer.threshold))
        if layer.kind == "egru":
            ops = dict(c_in=c, a_u=fixed.wrap32(a[:h] + b[:h]),
                       a_r=fixed.wrap32(a[h:2 * h] + b[h:2 * h]),
                       a_zin=fixed.wrap32(a[2 * h:3 * h] + b[2 * h:3 * h]),
                       a_zrec=fixed.wrap32(a[3 * h:] + b[3 * h:]))
            e, y, c = fixed.egru_update(*ops.values(), th)
            ops["theta"] = np.full(h, th)
        else:
            ops = dict(v_in=c, i_syn=fixed.wrap32(a + b),
                       beta=np.full(h, int(fixed.to_fixed(layer.beta))), threshold=np.full(h, th))
            e, c = fixed.lif_update(c, ops["i_syn"], int(ops["beta"][0]), th)
            y = e * fixed.ONE
        if li == 0 and self.trace_left > 0:
            k = min(self.trace_left, h)
            self.traced += [{n: int(v[i]) for n, v in ops.items()} for i in range(k)]
            self.trace_left -= k
        return y.astype(np.float64), c.astype(np.float64)

    @staticmethod
    def _update(layer, acc: np.ndarray, s_prev: np.ndarray, y_prev: np.ndarray  # noqa: ANN001
                ) -> tuple[np.ndarray, np.ndarray]:
        """(events y, state) of one layer step; state is c (EGRU) or v (LIF)."""
        h, b, th = layer.h, layer.bias, layer.threshold
        if layer.kind == "egru":
            u = _sigmoid(acc[:h] + b[:h])
            r = _sigmoid(acc[h:2 * h] + b[h:2 * h])
            z = np.tanh(acc[2 * h:3 * h] + r * (acc[3 * h:] + b[3 * h:]) + b[2 * h:3 * h])
            cell = u * s_prev + (1 - u) * z
            e = (cell > th).astype(np.float64)
            return cell * e, cell - th * e
        v = layer.beta * s_prev + acc + b
        e = (v > th).astype(np.float64)
        return e, v * (1 - e)


def _shift(acc: np.ndarray) -> np.ndarray:
    """A Q2F accumulator (integer-valued float64) >>> F, wrapped to 32 bits."""
    return fixed.wrap32(np.floor(acc / fixed.ONE).astype(np.int64))
