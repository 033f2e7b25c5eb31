"""NIR export and import of event networks (the `nir` package; Pedersen et
al. 2024, docs/references.md).

Export (`to_nir`): input (the token, one-hot) -> "embed" Linear (the
embedding table as a (E, V) matrix) -> per layer -> readout -> output:

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

Import is the frontend's (llmc/frontend/zoo/event_nir.py): `llmc compile
model.nir` reads such a graph back into an event LM.
"""

from __future__ import annotations

import io

import numpy as np

from llmc.backends.neuromorphic.network import Layer, Network

DT = 1e-4  # seconds per step, as NIR importers (snnTorch) discretise


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

    vocab, width = net.embed.shape
    nodes: dict[str, object] = {
        "input": nir.Input(input_type={"input": np.array([vocab])}),   # one-hot token
        "embed": nir.Linear(weight=net.embed.T.astype(np.float32)),   # (E, V): the lookup
    }
    edges: list[tuple[str, str]] = [("input", "embed")]
    prev = "embed"
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
