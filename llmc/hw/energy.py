"""Energy per action from a data table: Horowitz's 45 nm figures scaled by node.

`load_energy_table(node_nm)` reads `data/energy_45nm.json` (Horowitz, ISSCC
2014, 45 nm) and scales its on-chip figures to `node_nm` with the factor in
`data/node_scaling.json` (Stillmaker & Baas 2017: 45→7 nm ×0.094, →5 nm
×0.080). Off-chip figures (DRAM, links) are not scaled. A user can point it
at their own table. The simulator (llmc.sim.energy) multiplies its action
counts by these figures; device files cite them in their energy sources.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from llmc.errors import UsageError

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_TABLE = DATA_DIR / "energy_45nm.json"
NODE_SCALING = DATA_DIR / "node_scaling.json"

_DTYPE = re.compile(r"^(int|uint|fp|bf)(\d+)$")


@dataclass(frozen=True)
class EnergyTable:
    """Energy figures at one technology node (already scaled), with their sources."""

    node_nm: int
    scale: float                      # factor applied to figures that scale with node
    figures: Mapping[str, float]      # name (unit in the name) -> value at node_nm
    sources: Mapping[str, str]        # name -> where the figure comes from
    rules: Mapping[str, float]        # scaling exponents (dimensionless)

    def get(self, name: str) -> float:
        """A figure by name; UsageError naming the table's figures if absent."""
        try:
            return self.figures[name]
        except KeyError:
            known = ", ".join(sorted(self.figures))
            raise UsageError(f"energy table has no figure {name!r}; it has: {known}") from None

    def _op_pj(self, dtype: str, op: str) -> float:
        """Energy of one `op` ("add" or "mult") in `dtype`."""
        kind, bits = _parse_dtype(dtype)
        name = f"{kind}{bits}_{op}_energy_pj"
        if name in self.figures:
            return self.figures[name]
        if kind != "int":
            raise UsageError(f"no energy figure for {dtype} {op}; the table has "
                             f"{', '.join(sorted(k for k in self.figures if k.startswith(kind)))}")
        # integer widths not in the table: scale from the nearest tabulated width
        # (nearest in log2; a tie goes to the wider one)
        widths = sorted(int(m.group(1)) for k in self.figures
                        if (m := re.match(rf"^int(\d+)_{op}_energy_pj$", k)))
        if not widths:
            raise UsageError(f"energy table has no integer {op} figures to scale from")
        ref = min(widths, key=lambda w: (abs(math.log2(w / bits)), -w))
        exponent = self.rules[f"int_{op}_width_exponent"]
        return self.figures[f"int{ref}_{op}_energy_pj"] * (bits / ref) ** exponent

    def mac_pj(self, mult_dtype: str, acc_dtype: str) -> float:
        """One multiply-accumulate: a multiply in `mult_dtype` plus an add in `acc_dtype`."""
        return self._op_pj(mult_dtype, "mult") + self._op_pj(acc_dtype, "add")

    def sram_pj_per_byte(self, bank_kb: float) -> float:
        """SRAM access energy per byte for banks of `bank_kb` KB (√size rule, 8 KB anchor)."""
        per_64bit = self.get("sram_8kb_64bit_access_energy_pj")
        exponent = self.rules["sram_size_exponent"]
        return per_64bit / 8.0 * (max(bank_kb, 1e-3) / 8.0) ** exponent

    @property
    def dram_pj_per_byte(self) -> float:
        return self.get("dram_32bit_access_energy_pj") / 4.0

    @property
    def link_pj_per_byte(self) -> float:
        return self.get("link_energy_pj_per_bit") * 8.0

    def to_dict(self) -> dict:
        return {"node_nm": self.node_nm, "scale": self.scale,
                "figures": dict(self.figures), "sources": dict(self.sources),
                "rules": dict(self.rules)}


def _parse_dtype(dtype: str) -> tuple[str, int]:
    """("int", 8) from "int8"; bf16 is costed as fp16 (no Horowitz figure for bf16)."""
    m = _DTYPE.match(str(dtype).lower())
    if not m:
        raise UsageError(f"unknown dtype {dtype!r} for energy; expected e.g. int8, fp16, fp32")
    kind, bits = m.group(1), int(m.group(2))
    if kind == "bf" and bits == 16:
        return "fp", 16
    if kind == "uint":
        kind = "int"
    return kind, bits


def node_factors(path: str | Path = NODE_SCALING) -> dict[int, float]:
    """Technology node (nm) -> energy factor relative to the reference node."""
    data = json.loads(Path(path).read_text())
    return {int(node): float(entry["value"]) for node, entry in data["factors"].items()}


@lru_cache(maxsize=32)
def _load(node_nm: int, path: str) -> EnergyTable:
    factors = node_factors()
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read energy table {path}: {exc}") from None
    base = int(data.get("node_nm", 45))
    if node_nm not in factors or base not in factors:
        known = ", ".join(str(n) for n in sorted(factors))
        raise UsageError(f"no energy scaling for {node_nm} nm; known nodes: {known} "
                         f"(add one to {NODE_SCALING})")
    scale = factors[node_nm] / factors[base]
    figures, sources = {}, {}
    for name, entry in data["figures"].items():
        factor = scale if entry.get("scales_with_node", True) else 1.0
        figures[name] = float(entry["value"]) * factor
        sources[name] = str(entry.get("source", ""))
    rules = {name: float(entry["value"]) for name, entry in data.get("rules", {}).items()}
    return EnergyTable(node_nm, scale, MappingProxyType(figures), MappingProxyType(sources),
                       MappingProxyType(rules))


def load_energy_table(node_nm: int, path: str | Path | None = None) -> EnergyTable:
    """The energy table at `node_nm` (45, 7 or 5 by default), from `path` or the bundled one."""
    if isinstance(node_nm, bool) or not isinstance(node_nm, int):
        raise UsageError(f"technology node must be an integer nm, got {node_nm!r}")
    return _load(node_nm, str(path or DEFAULT_TABLE))
