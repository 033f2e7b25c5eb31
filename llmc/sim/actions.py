"""Action counts: what each component did during a simulated run.

Energy is action counts × energy per action (`energy.py`), the Accelergy
approach. Counts are additive, so a schedule's counts are the sum of its steps'.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


def mac_key(mult_dtype: str, acc_dtype: str) -> str:
    """Key of a MAC count: multiply in `mult_dtype`, accumulate in `acc_dtype` ("int8:int32")."""
    return f"{mult_dtype}:{acc_dtype}"


@dataclass
class Actions:
    """Counts of component actions. Byte counts may be fractional (prefetch shares)."""

    macs: Counter = field(default_factory=Counter)        # mac_key -> array MACs
    vector_ops: Counter = field(default_factory=Counter)  # dtype -> vector-unit MAC-equivalent ops
    sram_read_bytes: float = 0.0
    sram_write_bytes: float = 0.0
    dram_read_bytes: float = 0.0
    dram_write_bytes: float = 0.0
    link_bytes: float = 0.0

    def __add__(self, other: Actions) -> Actions:
        return Actions(
            macs=self.macs + other.macs,
            vector_ops=self.vector_ops + other.vector_ops,
            sram_read_bytes=self.sram_read_bytes + other.sram_read_bytes,
            sram_write_bytes=self.sram_write_bytes + other.sram_write_bytes,
            dram_read_bytes=self.dram_read_bytes + other.dram_read_bytes,
            dram_write_bytes=self.dram_write_bytes + other.dram_write_bytes,
            link_bytes=self.link_bytes + other.link_bytes,
        )

    def scaled(self, times: int) -> Actions:
        """The counts of `times` repetitions."""
        return Actions(
            macs=Counter({k: v * times for k, v in self.macs.items()}),
            vector_ops=Counter({k: v * times for k, v in self.vector_ops.items()}),
            sram_read_bytes=self.sram_read_bytes * times,
            sram_write_bytes=self.sram_write_bytes * times,
            dram_read_bytes=self.dram_read_bytes * times,
            dram_write_bytes=self.dram_write_bytes * times,
            link_bytes=self.link_bytes * times,
        )

    @property
    def total_macs(self) -> int:
        return int(sum(self.macs.values()))

    @property
    def dram_bytes(self) -> float:
        return self.dram_read_bytes + self.dram_write_bytes

    def to_dict(self) -> dict:
        """JSON-ready counts, keys with units."""
        return {
            "macs": dict(sorted(self.macs.items())),
            "vector_ops": dict(sorted(self.vector_ops.items())),
            "sram_read_bytes": self.sram_read_bytes,
            "sram_write_bytes": self.sram_write_bytes,
            "dram_read_bytes": self.dram_read_bytes,
            "dram_write_bytes": self.dram_write_bytes,
            "link_bytes": self.link_bytes,
        }
