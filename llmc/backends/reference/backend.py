"""The reference backend's two halves.

emit: `<phase>.llmir` for each phase (the IR text form, which round-trips
exactly) and `weights.safetensors` holding every phase's params by param
name (a name whose values differ between phases is stored once per phase,
as `<phase>/<name>`); a shape-only model has no weights file.

run: parse the graphs back, reattach the weights, and generate greedily
(llmc.backends.generate) with `llmc.ir.interpret` running each step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from llmc.backends.artifact import Artifact
from llmc.backends.base import Backend, CompileOptions, Files, MemoryPlanLike, RunResult
from llmc.backends.generate import Shapes, generate
from llmc.backends.weights import dumps, loads
from llmc.errors import UsageError
from llmc.ir import Graph, interpret, parse_graph, print_graph

WEIGHTS = "weights.safetensors"
_METADATA = {"format": "np", "producer": "llmc reference backend"}


def ir_file(phase: str) -> str:
    return f"{phase}.llmir"


def pack_weights(graphs: Mapping[str, Graph]) -> bytes:
    """Every phase's params in one safetensors file (see the module docstring)."""
    tensors: dict[str, np.ndarray] = {}
    for phase, g in graphs.items():
        for name, value in g.params.items():
            value = np.asarray(value)
            if name not in tensors:
                tensors[name] = value
            elif not (tensors[name].dtype == value.dtype
                      and np.array_equal(tensors[name], value)):
                tensors[f"{phase}/{name}"] = value
    return dumps(tensors, _METADATA)


def unpack_weights(data: bytes, graph: Graph, phase: str) -> dict[str, np.ndarray]:
    """The params of `graph` (phase `phase`) from pack_weights' bytes."""
    tensors = loads(data)
    missing = [n for n in graph.params if f"{phase}/{n}" not in tensors and n not in tensors]
    if missing:
        raise UsageError(f"{WEIGHTS} lacks {len(missing)} weights of @{graph.name}, "
                         f"e.g. {missing[0]}; compile the artifact again")
    return {n: tensors.get(f"{phase}/{n}", tensors.get(n)) for n in graph.params}


class ReferenceBackend(Backend):
    name: ClassVar[str] = "reference"
    runs_on: ClassVar[str] = "the IR interpreter (numpy, CPU)"

    def emit(self, graphs: Mapping[str, Graph], plans: Mapping[str, MemoryPlanLike],
             device: Any, options: CompileOptions) -> Files:
        files: Files = {ir_file(ph): print_graph(g) for ph, g in graphs.items()}
        if not any(g.shape_only for g in graphs.values()):
            files[WEIGHTS] = pack_weights(graphs)
        return files

    def load(self, artifact: Artifact, phase: str) -> Graph:
        """One phase's graph with its weights attached."""
        graph = parse_graph(artifact.read_text(ir_file(phase)))
        graph.params.update(unpack_weights(artifact.read_bytes(WEIGHTS), graph, phase))
        return graph

    def run(self, artifact: Artifact, prompt: Sequence[int], max_new_tokens: int,
            on_token: Callable[[int], None] | None = None) -> RunResult:
        prefill, decode = self.load(artifact, "prefill"), self.load(artifact, "decode")
        caches = [np.zeros(n.type.shape, n.type.dtype.np) for n in decode.inputs[2:]]
        batch, prompt_tokens = prefill.inputs[0].type.shape      # tokens (B, T)
        shapes = Shapes(batch, prompt_tokens, caches[0].shape[2],  # caches (B, G, S, D)
                        prefill.outputs[0].type.shape[-1])         # logits (B, T, V)
        return generate(lambda xs: interpret(prefill, xs), lambda xs: interpret(decode, xs),
                        caches, shapes, prompt, max_new_tokens, on_token)
