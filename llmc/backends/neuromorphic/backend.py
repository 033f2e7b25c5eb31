"""The neuromorphic backend (family "neuromorphic", targets spinnaker2 and
spinnaker2-board): event LMs mapped onto SpiNNaker 2 and run event by event.

emit: the optimised IR (`<phase>.llmir`) and weights (as the reference
backend writes them), the mapping (`mapping.json`: PEs per layer, SRAM per
PE, routes), one simulated inference (`neuromorphic.json`: events, synaptic
operations, NoC traffic, time and energy per inference and per token) and
`model.nir`. A network that does not fit the target's chips, or a graph
that is not an event network (attention above all), is refused with what
to do instead.

run: the event simulator generates greedily from the prompt (one token a
step, the recurrent state carried), and reports the simulated chip time and
energy of the whole run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from llmc.backends.artifact import Artifact
from llmc.backends.base import Backend, CompileOptions, Files, MemoryPlanLike, RunResult
from llmc.backends.neuromorphic.costs import cost_of
from llmc.backends.neuromorphic.mapping import map_network
from llmc.backends.neuromorphic.network import LAYER_OPS, extract
from llmc.backends.neuromorphic.nir_io import nir_bytes
from llmc.backends.neuromorphic.sim import Simulator
from llmc.backends.neuromorphic.spec import load_spec
from llmc.backends.reference.backend import WEIGHTS, ir_file, pack_weights, unpack_weights
from llmc.errors import UsageError
from llmc.ir import Graph, parse_graph, print_graph

MAPPING = "mapping.json"
REPORT = "neuromorphic.json"
NIR = "model.nir"

EVENT_OPS = frozenset({"embedding", "linear", *LAYER_OPS})


def attention_advice(op: str, where: str) -> str:
    return (f"{op} (e.g. {where}): SpiNNaker 2 runs event networks, and a transformer's "
            "attention has no event form here; options: compile an event LM (egru-tiny, "
            "spikegpt-tiny, egru-lm), or turn the projections into delta form "
            "(llmc.passes.delta.to_delta, events only where an input changed by more than a "
            "threshold; bench/neuromorphic_bench.py measures its event rate and perplexity) "
            "and run that graph on a dense target")


def sample_tokens(n: int, vocab: int) -> np.ndarray:
    """The fixed token sequence a compile simulates: `n` bytes of English
    (byte-level models) or ids spread over the vocabulary."""
    text = (b"The event-based language model runs on a neuromorphic chip, one token a step."
            * (1 + n // 70))[:n]
    ids = np.frombuffer(text, np.uint8).astype(np.int64)
    return ids % vocab if vocab < 256 else ids * max(1, vocab // 256) % vocab


class NeuromorphicBackend(Backend):
    name: ClassVar[str] = "neuromorphic"
    runs_on: ClassVar[str] = "the event-driven SpiNNaker 2 simulator (numba, CPU)"
    ops: ClassVar[frozenset[str] | None] = EVENT_OPS

    def unsupported(self, graphs: Mapping[str, Graph]) -> list[str]:
        lines = super().unsupported(graphs)
        for g in graphs.values():
            att = [n for n in g.nodes if "attention" in n.op]
            if att:
                return [attention_advice(att[0].op, f"%{att[0].name} in @{g.name}")]
            if not lines and not any(n.op in LAYER_OPS for n in g.nodes):
                return [f"@{g.name} has no event layer (egru_layer, lif_layer): not an event "
                        "network; compile an event LM (egru-tiny, spikegpt-tiny, egru-lm)"]
        return lines

    def emit(self, graphs: Mapping[str, Graph], plans: Mapping[str, MemoryPlanLike],
             device: Any, options: CompileOptions) -> Files:
        spec = load_spec(device)
        prefill = graphs["prefill"]
        net = extract(prefill)
        mapping = map_network(net, spec, spec.chips_for(options.target), options.target)
        sim = Simulator(mapping)
        steps = spec.tokens_per_inference
        result = sim.run(sample_tokens(steps, net.vocab))
        cost = cost_of(result.counts, mapping)
        counts = result.counts
        report = {
            "model": net.name, "target": options.target, "chips": mapping.chips,
            "weights": "random (shape-only graph)" if net.synthetic else "the model's",
            "inference": {"tokens": steps, **{k: round(v, 9) if isinstance(v, float) else v
                                              for k, v in cost.to_json().items()}},
            "events": {"input_per_step": counts.events[0] / steps,
                       "event_rate_per_layer": [round(r, 6) for r in counts.event_rates()],
                       "synops": counts.total_synops,
                       "packets": int(counts.packets.sum()),
                       "mesh_link_traversals": counts.mesh_links,
                       "chip_packets": counts.chip_packets},
            "per_pe": {"synops_max": int(counts.synops.max()),
                       "synops_mean": float(counts.synops[counts.synops > 0].mean())},
        }
        files: Files = {ir_file(ph): print_graph(g) for ph, g in graphs.items()}
        if not prefill.shape_only:
            files[WEIGHTS] = pack_weights(graphs)
        files[MAPPING] = json.dumps(mapping.summary(), indent=2, sort_keys=True) + "\n"
        files[REPORT] = json.dumps(report, indent=2, sort_keys=True) + "\n"
        if not net.synthetic:  # a shape-only model has no weights to export
            files[NIR] = nir_bytes(net)
        return files

    def load(self, artifact: Artifact) -> Graph:
        graph = parse_graph(artifact.read_text(ir_file("prefill")))
        if graph.shape_only and WEIGHTS in artifact.manifest["files"]:
            graph.params.update(unpack_weights(artifact.read_bytes(WEIGHTS), graph, "prefill"))
        return graph

    def simulator(self, artifact: Artifact) -> Simulator:
        spec = load_spec(artifact.manifest.get("device", "spinnaker2"))
        target = artifact.manifest.get("target", "spinnaker2")
        net = extract(self.load(artifact))
        return Simulator(map_network(net, spec, spec.chips_for(target), target))

    def run(self, artifact: Artifact, prompt: Sequence[int], max_new_tokens: int,
            on_token: Callable[[int], None] | None = None) -> RunResult:
        import time

        if not prompt:
            raise UsageError("the prompt is empty; give at least one token")
        sim = self.simulator(artifact)
        t0 = time.perf_counter()
        res = sim.run(list(prompt))
        total = [res.counts]
        nxt = int(np.argmax(res.logits[-1]))
        chosen = [nxt]
        if on_token is not None:
            on_token(nxt)
        t1 = time.perf_counter()
        for _ in range(1, max_new_tokens):
            res = sim.run([nxt])
            total.append(res.counts)
            nxt = int(np.argmax(res.logits[-1]))
            chosen.append(nxt)
            if on_token is not None:
                on_token(nxt)
        t2 = time.perf_counter()
        cycles, energy = 0.0, 0.0
        for c in total:
            cost = cost_of(c, sim.m)
            cycles += cost.time_s * sim.m.spec.clock_hz
            energy += cost.energy_j
        return RunResult(chosen, {"prefill_s": t1 - t0, "decode_s": t2 - t1},
                         int(round(cycles)), energy)
