"""A memory plan's spills as DMA: activations out to DRAM and back.

A plan made within a bound (plan.json's buffers with `segments`,
llmc.passes.memplan.spill) keeps a spilled value in the scratchpad for each
of its segments, at that segment's offset. After the last step of a segment
the value is stored to its DRAM slot (once: values never change) and its
scratchpad bytes are left to others; before the first step of the next
segment it is loaded back at that segment's offset. The loads and stores of
one step share one WAIT, before the step's compute (or the next step's
writes) may touch those bytes. While a value is out its location is the
DRAM slot, so any reader the plan did not foresee copies it back through
scratch (`Lowering.spad`) rather than reading stale bytes. Views of a moved
value are re-derived from its new home (as `llmc.ir.arena` re-runs them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmc.backends.npu.isa import DRAM, SPAD
from llmc.backends.npu.layout import Loc, view
from llmc.ir.alias import alias_root
from llmc.ir.graph import Graph, Node, Value
from llmc.ir.ops import get_op

if TYPE_CHECKING:
    from llmc.backends.npu.lower import Lowering


@dataclass
class Spills:
    """The plan's moves by step: values going out after a step, values
    coming back (to an offset) before one, and what was moved (bytes)."""

    out_after: dict[int, list[Value]] = field(default_factory=dict)
    back_before: dict[int, list[tuple[Value, int]]] = field(default_factory=dict)
    views: dict[Value, list[Node]] = field(default_factory=dict)
    slots: dict[Value, Loc] = field(default_factory=dict)
    stored_bytes: int = 0
    loaded_bytes: int = 0

    @classmethod
    def of(cls, graph: Graph, plan: dict[str, Any]) -> Spills:
        by_name: dict[str, Value] = {}
        for node in graph.nodes:
            for i in range(len(node.types)):
                by_name[node.name if len(node.types) == 1 else f"{node.name}#{i}"] = \
                    Value(node, i)
        sp = cls()
        for b in plan.get("buffers", []):
            segs = b.get("segments") or []
            for s, nxt in zip(segs, segs[1:], strict=False):
                v = by_name[b["name"]]
                sp.out_after.setdefault(int(s["end"]), []).append(v)
                sp.back_before.setdefault(int(nxt["start"]), []).append((v, int(nxt["offset"])))
        if sp.out_after:
            for node in graph.nodes:
                if get_op(node.op).kind == "view":
                    sp.views.setdefault(alias_root(node.out()), []).append(node)
        return sp

    @property
    def count(self) -> int:
        """Spilled values."""
        return len({v for vs in self.out_after.values() for v in vs})

    def store(self, L: Lowering, step: int) -> None:
        """After `step`: values whose segment ends there go to their DRAM slots."""
        moved = self.out_after.get(step, [])
        for v in moved:
            src = L.locs[v]
            if v not in self.slots:
                addr = L.dram.alloc(f"{L.p.name}:spill:{v.node.name}#{v.index}", src.nbytes)
                self.slots[v] = Loc.dense(DRAM, src.dtype, addr, src.shape)
                L.dma(self.slots[v], src, f"spill %{v.node.name} to DRAM")
                self.stored_bytes += src.nbytes
            self._rebind(L, v, self.slots[v])
        if moved:
            L.p.emit("wait", 0)

    def load(self, L: Lowering, step: int) -> None:
        """Before `step`: values whose next segment starts there come back."""
        back = self.back_before.get(step, [])
        for v, offset in back:
            slot = self.slots[v]
            dst = Loc.dense(SPAD, slot.dtype, offset, slot.shape)
            L.dma(dst, slot, f"reload %{v.node.name} from DRAM")
            self.loaded_bytes += slot.nbytes
            self._rebind(L, v, dst)
        if back:
            L.p.emit("wait", 0)

    def _rebind(self, L: Lowering, v: Value, loc: Loc) -> None:
        L.locs[v] = loc
        for node in self.views.get(v, []):
            if node.out() in L.locs:
                src = L.locs[node.inputs[0]]
                L.locs[node.out()] = None if src is None else view(node, src)


__all__ = ["Spills"]
