"""llmc.sim — cycle and energy simulator core.

Components (`hardware.py`): an R×C systolic array (`ArraySpec`, os/ws/is
dataflows, from llmc.hw.array) or a vector/MAC unit, a banked double-buffered
scratchpad, DRAM/HBM and chip-to-chip links, gathered in `SimHardware`, which
`from_device` builds from a device of the hardware database (llmc.hw) with
optional overrides. A GEMM is simulated fold by fold (`simulate_gemm`); a
program is a list of steps (`simulate_schedule`). Results (`SimResult`) carry
cycles, stalls, action counts, an energy breakdown (`load_energy_table`:
Horowitz 45 nm scaled by node, llmc.hw.energy) and an optional
Chrome/Perfetto trace. The simulator takes GEMM shapes, not IR; a GEMM
whose folds would need more than `MAX_SIM_BYTES` of memory is refused before
anything is allocated (`check_gemm_size`, llmc.sim.limits).

    >>> from llmc.sim import from_device, simulate_gemm
    >>> hw = from_device("npu", array="32x32")
    >>> simulate_gemm(64, 64, 64, hw).compute_cycles
    503
"""

from llmc.hw.array import ArraySpec, Dataflow, compute_cycles
from llmc.hw.energy import EnergyTable, load_energy_table
from llmc.sim.actions import Actions
from llmc.sim.energy import energy_breakdown_pj
from llmc.sim.gemm import (
    clear_cache,
    fold_overlap_cycles,
    simulate_gemm,
    simulate_vector_gemm,
)
from llmc.sim.hardware import (
    DramSpec,
    LinkSpec,
    SimHardware,
    SramSpec,
    VectorSpec,
    device_figures,
    from_device,
)
from llmc.sim.limits import MAX_SIM_BYTES, check_gemm_size, gemm_sim_bytes
from llmc.sim.result import SimResult
from llmc.sim.steps import (
    AllReduceStep,
    DmaStep,
    GemmStep,
    LinkStep,
    Step,
    VectorStep,
    simulate_schedule,
    simulate_step,
)

__all__ = [
    "MAX_SIM_BYTES", "Actions", "AllReduceStep", "ArraySpec", "Dataflow", "DmaStep", "DramSpec",
    "EnergyTable", "GemmStep", "LinkSpec", "LinkStep", "SimHardware", "SimResult", "SramSpec",
    "Step", "VectorSpec", "VectorStep", "check_gemm_size", "clear_cache", "compute_cycles",
    "device_figures", "energy_breakdown_pj", "fold_overlap_cycles", "from_device",
    "gemm_sim_bytes", "load_energy_table", "simulate_gemm", "simulate_schedule", "simulate_step",
    "simulate_vector_gemm",
]
