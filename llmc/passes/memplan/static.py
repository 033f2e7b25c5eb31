"""The tensors that live for the whole run, laid out apart from the
activation arena: weights (and constant tables), the KV cache, and the
graph's other inputs. Each region is packed in graph order at the plan's
alignment; backends take these addresses (the GPU runtime's weight and cache
buffers, the NPU program's DRAM map) next to the arena plan."""

from __future__ import annotations

from dataclasses import dataclass

from llmc.ir.alias import alias_root
from llmc.ir.graph import Graph, Node
from llmc.passes.memplan.liveness import buffer_name, is_external, kv_outputs

REGIONS = ("weights", "constants", "kv_cache", "inputs")


@dataclass(frozen=True)
class Placed:
    name: str
    size: int
    offset: int  # from the start of its region


@dataclass(frozen=True)
class StaticLayout:
    alignment: int
    regions: dict[str, tuple[Placed, ...]]

    def bytes(self, region: str) -> int:
        return max((p.offset + p.size for p in self.regions[region]), default=0)

    def to_json(self) -> dict:
        return {"alignment": self.alignment,
                "regions": {r: {"bytes": self.bytes(r),
                                "tensors": [{"name": p.name, "offset": p.offset, "size": p.size}
                                            for p in ps]}
                            for r, ps in self.regions.items()}}


def _region(node: Node, kv_in: set[Node]) -> str | None:
    if node.op == "param":
        return "constants" if node.attrs.get("buffer") else "weights"
    if node.op == "input":
        return "kv_cache" if node in kv_in else "inputs"
    return None


def static_layout(graph: Graph, alignment: int = 64) -> StaticLayout:
    """Weights, constants, KV cache and inputs of `graph`, each region packed."""
    read = {v.node for n in graph.nodes for v in n.inputs}
    kv_in = {alias_root(n.inputs[0]).node for n in graph.nodes if n.op == "index_copy"}
    kv_in = {n for n in kv_in if n.op == "input"}
    entries: dict[str, list[tuple[str, int]]] = {r: [] for r in REGIONS}
    for n in graph.nodes:
        region = _region(n, kv_in)
        if region is not None and (n in read or n.op == "input"):
            name = n.attrs.get("name", n.name) if n.op == "param" else n.name
            entries[region].append((name, n.type.nbytes))
    for v in sorted(kv_outputs(graph), key=lambda v: graph.nodes.index(v.node)):
        if not is_external(v.node):  # a prefill's K/V outputs (a decode writes in place)
            entries["kv_cache"].append((buffer_name(v), v.type.nbytes))
    regions = {}
    for r, items in entries.items():
        placed, top = [], 0
        for name, size in items:
            placed.append(Placed(name, size, top))
            top += -(-size // alignment) * alignment
        regions[r] = tuple(placed)
    return StaticLayout(alignment, regions)
