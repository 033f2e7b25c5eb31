"""Reading a NIR graph back into an event LM (`llmc compile model.nir`).

The graph is the form llmc's neuromorphic backend writes (see
llmc/backends/neuromorphic/nir_io.py): input (one-hot token) -> "embed"
Linear -> per layer "l{i}.w" Affine, "l{i}.r" Linear and "l{i}.lif" LIF
or "l{i}.cell" Threshold (an EGRU layer, named so in its metadata) ->
"readout" Affine -> output. Anything else is refused with one ModelError
line saying what is missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from llmc.errors import ModelError
from llmc.frontend.zoo.event_lm import EventConfig, EventLM

DT = 1e-4  # seconds per step (NIR's continuous LIF at the step snnTorch assumes)


def read_graph(path: str | Path):  # noqa: ANN201 - nir is imported lazily
    import nir

    if not Path(path).is_file():
        raise ModelError(f"{path}: no such NIR file")
    try:
        # an EGRU cell takes its 3H gate inputs for H units, which no NIR type rule
        # says; model_from_graph checks the shapes it reads
        return nir.read(str(path), type_check=False)
    except Exception as exc:  # h5py and nir raise many kinds on a bad file
        detail = str(exc).splitlines()[0] if str(exc) else "no detail"
        raise ModelError(f"{path}: not a readable NIR file ({type(exc).__name__}: {detail})") \
            from None


def _arr(node, field: str) -> np.ndarray:  # noqa: ANN001
    return np.asarray(getattr(node, field), np.float32)


def model_from_graph(graph, name: str) -> EventLM:  # noqa: ANN001
    """The EventLM of a NIR graph in llmc's event-network form."""
    nodes = graph.nodes
    try:
        embed = _arr(nodes["embed"], "weight")                      # (E, V)
        n = 0
        while f"l{n}.w" in nodes:
            n += 1
        if n == 0:
            raise KeyError("l0.w")
        first = nodes["l0.lif"] if "l0.lif" in nodes else nodes["l0.cell"]
        kind = "lif" if "l0.lif" in nodes else "egru"
        if kind == "egru" and dict(first.metadata or {}).get("llmc_op") != "egru_layer":
            raise ModelError(f"{name}: l0.cell is a Threshold without llmc's egru_layer "
                             "metadata; only LIF and llmc's EGRU layers are read")
        th = float(np.ravel(first.v_threshold if kind == "lif" else first.threshold)[0])
        beta = float(1 - DT / np.ravel(first.tau)[0]) if kind == "lif" else 0.0
        hidden = tuple(int(_arr(nodes[f"l{i}.r"], "weight").shape[1]) for i in range(n))
        head_w = _arr(nodes["readout"], "weight")
        cfg = EventConfig(name, kind, int(head_w.shape[0]), int(embed.shape[0]), hidden, th,
                          round(beta, 9), source=f"NIR file {name}")
        model = EventLM(cfg)
        state = {"embed.weight": embed.T, "head.weight": head_w,
                 "head.bias": _arr(nodes["readout"], "bias")}
        for i in range(n):
            b = _arr(nodes[f"l{i}.w"], "bias")
            if kind == "egru":
                b = np.concatenate([b, np.asarray(nodes[f"l{i}.cell"].metadata["b_hz"],
                                                  np.float32)])
            state |= {f"layers.{i}.w": _arr(nodes[f"l{i}.w"], "weight"),
                      f"layers.{i}.r": _arr(nodes[f"l{i}.r"], "weight"), f"layers.{i}.b": b}
        model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v))
                               for k, v in state.items()})
    except ModelError:
        raise
    except (KeyError, AttributeError, ValueError, IndexError, RuntimeError, TypeError) as exc:
        raise ModelError(f"{name}: not an event network in llmc's NIR form "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                         ) from None
    return model.eval()


def load_nir_model(path: str | Path) -> EventLM:
    """`path` (a .nir file) as an EventLM; one ModelError line on failure."""
    return model_from_graph(read_graph(path), Path(path).stem)
