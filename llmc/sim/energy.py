"""The energy of a simulated run: action counts x energy per action + leakage.

Energy of a run = Σ actions × energy per action + leakage power × time
(the Accelergy approach), broken down by component; the figures per action
come from `llmc.hw.energy.load_energy_table` at the hardware's node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmc.hw.energy import EnergyTable, load_energy_table
from llmc.sim.actions import Actions

if TYPE_CHECKING:
    from llmc.sim.hardware import SimHardware


def energy_breakdown_pj(actions: Actions, hw: SimHardware, seconds: float,
                        table: EnergyTable | None = None) -> dict[str, float]:
    """Energy in pJ by component: array, vector, sram, dram, link, leakage."""
    table = table or load_energy_table(hw.node_nm)
    array = sum(count * table.mac_pj(*key.split(":")) for key, count in actions.macs.items())
    vector = sum(count * table.mac_pj(dt, dt) for dt, count in actions.vector_ops.items())
    sram_bytes = actions.sram_read_bytes + actions.sram_write_bytes
    leak_uw = (hw.array.pes * table.get("pe_leakage_uw")
               + (hw.vector.lanes if hw.vector else 0) * table.get("vector_lane_leakage_uw")
               + hw.sram.kb * table.get("sram_leakage_uw_per_kb"))
    return {
        "array": float(array),
        "vector": float(vector),
        "sram": float(sram_bytes * table.sram_pj_per_byte(hw.sram_bank_kb)),
        "dram": float(actions.dram_bytes * table.dram_pj_per_byte),
        "link": float(actions.link_bytes * table.link_pj_per_byte),
        "leakage": float(leak_uw * 1e6 * seconds),  # µW·s = 1e-6 J = 1e6 pJ
    }
