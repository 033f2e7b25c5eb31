"""A stand-in backend for the gpu family, to test the seam: it emits what
the reference backend emits plus a kernel list, and runs like it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from llmc.backends.base import CompileOptions, Files, MemoryPlanLike
from llmc.backends.reference import ReferenceBackend
from llmc.ir import Graph


class FakeGpu(ReferenceBackend):
    name: ClassVar[str] = "gpu"
    runs_on: ClassVar[str] = "the IR interpreter, standing in for a GPU"

    def emit(self, graphs: Mapping[str, Graph], plans: Mapping[str, MemoryPlanLike],
             device: Any, options: CompileOptions) -> Files:
        files = super().emit(graphs, plans, device, options)
        files["kernels.txt"] = "".join(
            f"{ph} {len(g.nodes)} nodes, arena {plans[ph].json['arena_bytes']} B, "
            f"{device.name}, seq {options.seq_len}\n" for ph, g in graphs.items())
        return files


class OnlyLinear(FakeGpu):
    ops: ClassVar[frozenset[str] | None] = frozenset({"linear", "embedding"})


class Clashing(FakeGpu):
    def emit(self, graphs, plans, device, options):  # noqa: ANN001, ANN201
        return {"report.json": "{}"}


BACKEND = FakeGpu()
