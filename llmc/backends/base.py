"""What every backend is: it *emits* an artifact's files and *runs* an artifact.

    emit(graphs, plans, device, options) -> {file name: text or bytes}
    run(artifact, prompt, max_new_tokens, on_token) -> RunResult

`graphs` and `plans` are keyed by phase ("prefill", "decode"): the graphs
after the target's whole pipeline, each graph's memory plan (its `json` is
plan.json's form: every buffer's arena offset, the static regions), the
target's device spec (the cost model's `Device`), and the compile options.
A backend renders what the passes decided and decides nothing again; the
files it returns are written into the artifact beside manifest.json and the
report, and `run` reads them back through the `Artifact` (already checked
against its manifest). Outputs are compared with the IR interpreter, the
golden model.

A backend declares its `name` (its family in llmc.backends.BACKENDS), what
runs its artifacts (`runs_on`), and what it can render: `ops` (None: every
op in the registry) and `dtypes` (None: every dtype). `unsupported` lists
everything in a set of graphs outside that, so compile reports it all at once.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from llmc.ir import Graph

if TYPE_CHECKING:
    from llmc.backends.artifact import Artifact

Files = dict[str, str | bytes]


class MemoryPlanLike(Protocol):
    """A phase's memory plan as a backend sees it (llmc.api.MemoryPlan)."""

    json: dict[str, Any]  # plan.json's form: "buffers" with offsets, "static" regions


@dataclass(frozen=True)
class CompileOptions:
    """The options of one compile, as recorded (and hashed) in manifest.json."""

    target: str
    phase: str
    batch: int
    seq_len: int
    weights: str
    quant: str | None = None
    sparsity: str | None = None
    attention: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()


@dataclass
class RunResult:
    """What running an artifact gave: the generated token ids (batch row 0,
    prompt excluded), wall-clock timings, and where the backend knows them,
    the device's cycles and energy."""

    tokens: list[int]
    timings: dict[str, float] = field(default_factory=dict)  # prefill_s, decode_s
    cycles: int | None = None
    energy_j: float | None = None


class Backend(ABC):
    """One target family's renderer and runner (see the module docstring)."""

    name: ClassVar[str]
    runs_on: ClassVar[str]
    ops: ClassVar[frozenset[str] | None] = None
    dtypes: ClassVar[frozenset[str] | None] = None

    @abstractmethod
    def emit(self, graphs: Mapping[str, Graph], plans: Mapping[str, MemoryPlanLike],
             device: Any, options: CompileOptions) -> Files:
        """The artifact's files for these optimised graphs (name -> text or
        bytes; the same inputs must give the same bytes)."""

    @abstractmethod
    def run(self, artifact: Artifact, prompt: Sequence[int], max_new_tokens: int,
            on_token: Callable[[int], None] | None = None) -> RunResult:
        """Greedy generation: prefill on `prompt` (token ids), then
        `max_new_tokens` tokens in all, calling `on_token(id)` after each."""

    def fit(self, graphs: Mapping[str, Graph], device: Any
            ) -> tuple[dict[str, Graph], dict[str, int | None]]:
        """The graphs as this backend renders them and, per phase, the bytes of
        on-chip memory their activations may use (None: no bound). Compile
        reports, plans and writes these graphs, each plan within its bound
        (spilling to DRAM where it needs more). Default: as they are, unbounded."""
        return dict(graphs), dict.fromkeys(graphs)

    def unsupported(self, graphs: Mapping[str, Graph]) -> list[str]:
        """What in `graphs` this backend cannot render, one line per op or
        dtype with a node that uses it (empty: everything is supported)."""
        seen: dict[str, str] = {}
        for graph in graphs.values():
            for n in graph.nodes:
                if self.ops is not None and n.op not in self.ops and n.op not in ("input",
                                                                                  "param"):
                    seen.setdefault(f"op {n.op}", f"%{n.name} in @{graph.name}")
                for t in n.types:
                    if self.dtypes is not None and t.dtype.name not in self.dtypes:
                        seen.setdefault(f"dtype {t.dtype.name}", f"%{n.name} in @{graph.name}")
        return [f"{what} (e.g. {where})" for what, where in sorted(seen.items())]
