"""llmc.hw: the one hardware spec, the lowest layer of llmc.

Sourced device files (`devices/*.toml`, `links.toml`) and energy tables
(`data/*.json`) are the only place a hardware figure lives; the cost model,
the simulator, attention tiling, the RTL generator and the backends read
views of the `Device` they become. This package imports only the standard
library, numpy and `llmc.errors`.

- `get_device(name)`: a target (`npu`), a device key (`edge-npu`) or a device
  file path; `list_devices()`, `load_device_file(path)`; user files through
  `LLMC_DEVICE_PATH`.
- `Device` and its parts (`ComputeUnit`, `MemoryLevel`, `Link`, `MacArray`,
  `VectorUnit`, `Scratchpad`, `TilingRules`, `Figure`).
- `ArraySpec`, `Dataflow`, `compute_cycles`: the systolic array and its
  closed-form schedule (llmc.hw.array).
- `load_energy_table(node_nm)`: energy per action (Horowitz 45 nm, scaled).
- `TARGETS`, `get_target`: targets as data (device, passes, backend).
"""

from llmc.hw.array import ArraySpec, Dataflow, compute_cycles
from llmc.hw.database import (
    LLMC_DEVICE_PATH,
    get_device,
    list_devices,
    load_device_file,
    shipped_keys,
    target_label,
)
from llmc.hw.device import (
    ComputeUnit,
    Device,
    Figure,
    Link,
    MacArray,
    MemoryLevel,
    Scratchpad,
    TilingRules,
    VectorUnit,
)
from llmc.hw.energy import EnergyTable, load_energy_table
from llmc.hw.targets import TARGETS, Target, get_target

__all__ = [
    "LLMC_DEVICE_PATH", "TARGETS", "ArraySpec", "ComputeUnit", "Dataflow", "Device",
    "EnergyTable", "Figure", "Link", "MacArray", "MemoryLevel", "Scratchpad", "Target",
    "TilingRules", "VectorUnit", "compute_cycles", "get_device", "get_target", "list_devices",
    "load_device_file", "load_energy_table", "shipped_keys", "target_label",
]
