"""The event network of an IR graph: what the mapping places and the simulator runs.

An event LM's graph (llmc/frontend/zoo/event_lm.py) is embedding ->
egru_layer / lif_layer ... -> linear readout. Each layer becomes a
`Layer` whose synapses are keyed by their *presynaptic source*, as an
event-driven core reads them (an event from source j walks j's row):

    sources 0..I-1     the layer's inputs (the previous layer's events, or
                       the embedding's values sent by the host)
    sources I..I+H-1   the layer's own events of the previous step (recurrent)
    targets            accumulator rows: EGRU 4H (u, r, z from inputs, z from
                       recurrent events: z needs r * (R_z y), so the two parts
                       of z are kept apart), LIF H, readout V

    src_ptr (I+H+1,) int64, tgt (nnz,) int32, wts (nnz,) float64: row j of
    source j is tgt/wts[src_ptr[j]:src_ptr[j+1]]  (CSR of the transposed
    weight, zeros dropped: a pruned weight stores only its kept synapses)

A shape-only graph (no weights) gets seeded random weights at each layer's
`density` attribute, scaled by 1/sqrt(density) so the pre-activations keep
their dense variance; the counts then describe that random network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmc.errors import UnsupportedOpError
from llmc.ir import Graph

LAYER_OPS = ("egru_layer", "lif_layer")
# shape-only graphs: random weights of this many times the dense init scale, which
# keeps every layer of a random egru-lm active (at 1.0 the third layer is silent)
GAIN = 3.0


@dataclass
class Layer:
    """One event layer (or the readout, kind "readout")."""

    name: str
    kind: str          # "egru", "lif" or "readout"
    n_in: int          # I
    h: int             # units (readout: V)
    src_ptr: np.ndarray
    tgt: np.ndarray
    wts: np.ndarray
    bias: np.ndarray   # EGRU (4H,), LIF (H,), readout (V,)
    threshold: float = 0.0
    beta: float = 0.0

    @property
    def recurrent(self) -> bool:
        return self.kind != "readout"

    @property
    def n_src(self) -> int:
        return self.src_ptr.shape[0] - 1

    @property
    def rows(self) -> int:
        return {"egru": 4, "lif": 1, "readout": 1}[self.kind] * self.h

    @property
    def nnz(self) -> int:
        return int(self.tgt.shape[0])

    def row_unit(self) -> np.ndarray:
        """The unit (neuron, or readout row) each target row belongs to, (rows,)."""
        return np.arange(self.rows) % self.h

    def unit_synapses(self) -> np.ndarray:
        """Synapses held for each unit (all its rows), (h,)."""
        if getattr(self, "_unit_syn", None) is None:
            self._unit_syn = np.bincount(self.row_unit()[self.tgt], minlength=self.h)
        return self._unit_syn

    def dense(self) -> np.ndarray:
        """The (rows, sources) weight matrix (tests and small models only)."""
        m = np.zeros((self.rows, self.n_src))
        src = np.repeat(np.arange(self.n_src), np.diff(self.src_ptr))
        m[self.tgt, src] = self.wts
        return m


@dataclass
class Network:
    """The event network: embedding table (host side), layers, readout."""

    name: str
    embed: np.ndarray          # (V, E): looked up on the host, sent as input events
    layers: list[Layer]
    readout: Layer
    synthetic: bool = False    # weights drawn at random (a shape-only graph)

    @property
    def vocab(self) -> int:
        return self.readout.h

    def synapses(self) -> int:
        return sum(layer.nnz for layer in self.layers)


def csr_by_source(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src_ptr, tgt, wts) of the nonzeros of m (rows = targets, cols = sources)."""
    cols, rows = np.nonzero(m.T)
    ptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=m.shape[1]))])
    return ptr.astype(np.int64), rows.astype(np.int32), m[rows, cols].astype(np.float64)


def _random_csr(rows: int, n_src: int, density: float, scale: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ptr = [0]
    tgts, wts = [], []
    for _ in range(n_src):
        k = rng.binomial(rows, density)
        tgts.append(np.sort(rng.choice(rows, size=k, replace=False)).astype(np.int32))
        wts.append(rng.uniform(-scale, scale, size=k))
        ptr.append(ptr[-1] + k)
    return np.asarray(ptr, np.int64), np.concatenate(tgts), np.concatenate(wts)


def _egru_matrix(w: np.ndarray, r: np.ndarray) -> np.ndarray:
    """(4H, I+H): rows u, r, z_in (input part of z), z_rec (recurrent part of z)."""
    h = r.shape[1]
    m = np.zeros((4 * h, w.shape[1] + h))
    m[:3 * h, :w.shape[1]] = w
    m[:2 * h, w.shape[1]:] = r[:2 * h]
    m[3 * h:, w.shape[1]:] = r[2 * h:]
    return m


def _layer(node, params: dict, idx: int, rng: np.random.Generator | None) -> Layer:  # noqa: ANN001
    kind = node.op.split("_")[0]
    n_in, h = node.inputs[0].type.shape[-1], node.inputs[1].type.shape[-1]
    w, r, b = (params.get(v.node.attrs["name"]) for v in node.inputs[3:6])
    gates = 3 if kind == "egru" else 1
    if rng is not None:  # shape-only: a seeded random network at the op's density
        density = node.attrs.get("density", 1.0)
        scale = GAIN / np.sqrt(h * density)
        rows = 4 * h if kind == "egru" else h
        ptr, tgt, wts = _random_csr(rows, n_in + h, density, scale, rng)
        if kind == "egru":  # z_in and z_rec rows hold only input / recurrent synapses
            src = np.repeat(np.arange(n_in + h), np.diff(ptr))
            keep = ~(((tgt >= 2 * h) & (tgt < 3 * h) & (src >= n_in))
                     | ((tgt >= 3 * h) & (src < n_in)))
            ptr = np.concatenate([[0], np.cumsum(np.bincount(src[keep], minlength=n_in + h))])
            tgt, wts = tgt[keep], wts[keep]
        bias = np.zeros((gates + 1) * h if kind == "egru" else h)
    else:
        m = _egru_matrix(w, r) if kind == "egru" else np.concatenate([w, r], axis=1)
        ptr, tgt, wts = csr_by_source(m.astype(np.float64))
        bias = b.astype(np.float64)
    return Layer(f"layer{idx}", kind, n_in, h, ptr.astype(np.int64), tgt.astype(np.int32),
                 wts.astype(np.float64), bias, float(node.attrs["threshold"]),
                 float(node.attrs.get("beta", 0.0)))


def extract(graph: Graph, seed: int = 0) -> Network:
    """The event network of an event LM's graph; UnsupportedOpError naming
    what is not one (see llmc/backends/neuromorphic/checks.py for the advice)."""
    layers_nodes = [n for n in graph.nodes if n.op in LAYER_OPS]
    embed = next((n for n in graph.nodes if n.op == "embedding"), None)
    heads = [n for n in graph.nodes if n.op == "linear" and layers_nodes
             and n.inputs[0].node is layers_nodes[-1]]
    if not layers_nodes or embed is None or len(heads) != 1:
        raise UnsupportedOpError(f"@{graph.name} is not an event network (embedding -> "
                                 "egru_layer/lif_layer ... -> linear readout)")
    rng = np.random.default_rng(seed) if graph.shape_only else None
    params = graph.params
    layers = [_layer(n, params, i, rng) for i, n in enumerate(layers_nodes)]
    head = heads[0]
    hw, hb = (params.get(v.node.attrs["name"]) for v in head.inputs[1:3])
    vocab, last = head.type.shape[-1], layers[-1].h
    table = params.get(embed.inputs[0].node.attrs["name"])
    if rng is not None:  # pruned like the layers, drawn directly in CSR form
        density = layers_nodes[-1].attrs.get("density", 1.0)
        ptr, tgt, wts = _random_csr(vocab, last, density, 1 / np.sqrt(last * density), rng)
        hb = np.zeros(vocab)
        table = None
    else:
        ptr, tgt, wts = csr_by_source(np.asarray(hw, np.float64))
    readout = Layer("readout", "readout", last, vocab, ptr, tgt, wts,
                    np.asarray(hb, np.float64))
    if table is None:
        v, e = embed.inputs[0].type.shape
        table = np.random.default_rng(seed + 1).normal(0, 1, (min(v, 4096), e))
    return Network(graph.name.rsplit("_", 1)[0], np.asarray(table, np.float64), layers, readout,
                   synthetic=rng is not None)
