"""NIR export and import of event networks (the `nir` package; Pedersen et
al. 2024, docs/references.md).

Export (`to_nir`): input -> per layer -> readout -> output, with the
token's embedding as the graph's input (the lookup stays on the host):

  LIF layer l   "l{l}.w" Affine(W, b) -> "l{l}.lif" LIF -> (next), and the
                recurrent loop "l{l}.lif" -> "l{l}.r" Linear(R) -> "l{l}.lif".
                The LIF is the discrete one of lif_layer (v = beta v + I;
                spike v > threshold; reset to zero) written as NIR's
                continuous LIF at dt = 1e-4 s (the step snnTorch and other
                importers assume): tau = dt / (1 - beta), r = tau / dt,
                v_leak = 0, v_reset = 0.
  EGRU layer l  NIR has no gated unit, so the layer is "l{l}.w" Affine(W,
                b[:3H]) and "l{l}.r" Linear(R) into "l{l}.cell", a Threshold
                node (theta) whose metadata names the egru_layer op and holds
                b_hz: llmc reads it back exactly; other NIR tools see the
                synapses and the event threshold but cannot run the gates.
  readout       "readout" Affine(W_out, b_out) -> "output".

Import (`from_nir`) rebuilds the Layer list (llmc.backends.neuromorphic.
network) from such a graph; a file that is not one raises NirError (one line).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from llmc.backends.neuromorphic.network import Layer, Network, _egru_matrix, csr_by_source
from llmc.errors import LlmcError

DT = 1e-4  # seconds per step, as NIR importers (snnTorch) discretise


class NirError(LlmcError):
    """A NIR file llmc cannot read as an event network."""


def _dense_w(layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    """(W (gates*H, I), R (gates*H, H)) of a layer as its op holds them."""
    m = layer.dense()
    h, n = layer.h, layer.n_in
    if layer.kind == "egru":
        w = m[:3 * h, :n]
        r = np.concatenate([m[:2 * h, n:], m[3 * h:, n:]])
        return w, r
    return m[:, :n], m[:, n:]


def to_nir(net: Network):  # noqa: ANN201 - nir is imported lazily
    import nir

    nodes: dict[str, object] = {"input": nir.Input(input_type={"input": np.array(
        [net.layers[0].n_in])})}
    edges: list[tuple[str, str]] = []
    prev = "input"
    for i, layer in enumerate(net.layers):
        w, r = _dense_w(layer)
        h = layer.h
        f32 = np.float32
        if layer.kind == "lif":
            tau = np.full(h, DT / (1 - layer.beta))
            nodes[f"l{i}.w"] = nir.Affine(weight=w.astype(f32), bias=layer.bias.astype(f32))
            nodes[f"l{i}.lif"] = nir.LIF(tau=tau, r=tau / DT, v_leak=np.zeros(h),
                                         v_threshold=np.full(h, layer.threshold),
                                         v_reset=np.zeros(h))
            nodes[f"l{i}.r"] = nir.Linear(weight=r.astype(f32))
            cell = f"l{i}.lif"
        else:
            nodes[f"l{i}.w"] = nir.Affine(weight=w.astype(f32), bias=layer.bias[:3 * h].astype(f32))
            nodes[f"l{i}.r"] = nir.Linear(weight=r.astype(f32))
            nodes[f"l{i}.cell"] = nir.Threshold(
                threshold=np.full(h, layer.threshold),
                metadata={"llmc_op": "egru_layer", "b_hz": layer.bias[3 * h:].tolist()})
            cell = f"l{i}.cell"
        edges += [(prev, f"l{i}.w"), (f"l{i}.w", cell), (cell, f"l{i}.r"), (f"l{i}.r", cell)]
        prev = cell
    ro = net.readout
    nodes["readout"] = nir.Affine(weight=ro.dense().astype(np.float32),
                                  bias=ro.bias.astype(np.float32))
    nodes["output"] = nir.Output(output_type={"output": np.array([ro.h])})
    edges += [(prev, "readout"), ("readout", "output")]
    # an EGRU cell takes 3H gate inputs for H units: no NIR type rule says so
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"llmc_model": net.name},
                        type_check=all(layer.kind == "lif" for layer in net.layers))


def nir_bytes(net: Network) -> bytes:
    """model.nir's bytes (HDF5, as nir.write writes it)."""
    import nir

    buf = io.BytesIO()
    nir.write(buf, to_nir(net))
    return buf.getvalue()


def read_nir(path: str | Path):  # noqa: ANN201
    """nir.read, with any failure as one NirError line."""
    import nir

    try:
        return nir.read(str(path))
    except Exception as exc:  # h5py and nir raise many kinds on a bad file
        raise NirError(f"{path}: not a NIR file llmc can read ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None


def _meta(node) -> dict:  # noqa: ANN001
    return dict(getattr(node, "metadata", {}) or {})


def from_nir(graph, name: str = "nir") -> Network:  # noqa: ANN001
    """The event network of a graph written by to_nir (NirError otherwise)."""
    nodes = graph.nodes
    layers: list[Layer] = []
    i = 0
    try:
        while f"l{i}.w" in nodes:
            w, r = np.asarray(nodes[f"l{i}.w"].weight, np.float64), \
                np.asarray(nodes[f"l{i}.r"].weight, np.float64)
            b = np.asarray(nodes[f"l{i}.w"].bias, np.float64)
            if f"l{i}.lif" in nodes:
                lif = nodes[f"l{i}.lif"]
                beta = float(1 - DT / np.asarray(lif.tau).ravel()[0])
                th = float(np.asarray(lif.v_threshold).ravel()[0])
                ptr, tgt, wts = csr_by_source(np.concatenate([w, r], axis=1))
                layers.append(Layer(f"layer{i}", "lif", w.shape[1], w.shape[0], ptr, tgt, wts,
                                    b, th, round(beta, 12)))
            else:
                cell = nodes[f"l{i}.cell"]
                meta = _meta(cell)
                if meta.get("llmc_op") != "egru_layer":
                    raise NirError(f"l{i}.cell is a Threshold without llmc's egru_layer metadata")
                h = r.shape[1]
                bias = np.concatenate([b, np.asarray(meta["b_hz"], np.float64)])
                ptr, tgt, wts = csr_by_source(_egru_matrix(w, r))
                layers.append(Layer(f"layer{i}", "egru", w.shape[1], h, ptr, tgt, wts, bias,
                                    float(np.asarray(cell.threshold).ravel()[0])))
            i += 1
        ro = nodes["readout"]
        wo = np.asarray(ro.weight, np.float64)
        ptr, tgt, wts = csr_by_source(wo)
        readout = Layer("readout", "readout", wo.shape[1], wo.shape[0], ptr, tgt, wts,
                        np.asarray(ro.bias, np.float64))
    except NirError:
        raise
    except (KeyError, AttributeError, ValueError, IndexError) as exc:
        raise NirError(f"{name}: not an event network llmc wrote ({type(exc).__name__}: "
                       f"{exc})") from None
    if not layers:
        raise NirError(f"{name}: no layers (nodes l0.w, l0.lif or l0.cell) in the NIR graph")
    meta = _meta(graph)
    return Network(str(meta.get("llmc_model", name)), np.eye(layers[0].n_in), layers, readout)


def load_nir(path: str | Path) -> Network:
    """`path` (a model.nir) as an event network; one NirError line on failure."""
    return from_nir(read_nir(path), Path(path).name)
