"""Energy tables: Horowitz 45 nm figures, node scaling, MAC/SRAM/DRAM energies."""

from __future__ import annotations

import json

import pytest

from llmc.errors import UsageError
from llmc.hw.energy import DEFAULT_TABLE, node_factors
from llmc.sim import Actions, energy_breakdown_pj, from_device, load_energy_table


def test_45nm_figures_are_horowitz():
    t = load_energy_table(45)
    assert t.get("int8_mult_energy_pj") == 0.2
    assert t.get("int32_add_energy_pj") == 0.1
    assert t.get("fp16_mult_energy_pj") == 1.1
    assert t.get("fp32_add_energy_pj") == 0.9
    assert t.mac_pj("int8", "int32") == pytest.approx(0.3)
    assert t.mac_pj("fp16", "fp32") == pytest.approx(2.0)
    assert t.dram_pj_per_byte == 160.0  # 640 pJ per 32-bit access
    assert t.sram_pj_per_byte(8) == pytest.approx(10 / 8)
    assert "Horowitz" in t.sources["int8_add_energy_pj"]


def test_every_figure_has_a_source_and_unit():
    data = json.loads(DEFAULT_TABLE.read_text())
    for name, entry in data["figures"].items():
        assert entry["source"], name
        assert name.endswith(("_energy_pj", "_pj_per_bit", "_uw", "_uw_per_kb")), name


@pytest.mark.parametrize(("node", "factor"), [(7, 0.094), (5, 0.080)])
def test_node_scaling(node, factor):
    base, scaled = load_energy_table(45), load_energy_table(node)
    assert node_factors()[node] == factor
    assert scaled.mac_pj("int8", "int32") == pytest.approx(0.3 * factor)
    assert scaled.sram_pj_per_byte(32) == pytest.approx(base.sram_pj_per_byte(32) * factor)
    assert scaled.dram_pj_per_byte == base.dram_pj_per_byte  # off-chip: not scaled
    assert scaled.link_pj_per_byte == base.link_pj_per_byte


def test_width_rules():
    t = load_energy_table(45)
    assert t._op_pj("int16", "mult") == pytest.approx(3.1 / 4)     # bits², tie: from int32
    assert t._op_pj("int4", "mult") == pytest.approx(0.2 / 4)
    assert t._op_pj("int64", "add") == pytest.approx(0.1 * 2)      # linear, from int32
    assert t._op_pj("bf16", "mult") == t._op_pj("fp16", "mult")
    assert t.sram_pj_per_byte(32) == pytest.approx(2 * t.sram_pj_per_byte(8))
    with pytest.raises(UsageError, match="no energy figure for fp8"):
        t._op_pj("fp8", "mult")
    with pytest.raises(UsageError, match="unknown dtype"):
        t._op_pj("float", "add")


def test_unknown_node_and_bad_table(tmp_path):
    with pytest.raises(UsageError, match="known nodes: 4, 5, 7, 22, 45"):
        load_energy_table(12)
    with pytest.raises(UsageError, match="cannot read"):
        load_energy_table(7, tmp_path / "missing.json")
    with pytest.raises(UsageError):
        load_energy_table("7")


def test_user_table(tmp_path):
    data = json.loads(DEFAULT_TABLE.read_text())
    data["figures"]["dram_32bit_access_energy_pj"]["value"] = 64.0
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data))
    assert load_energy_table(7, path).dram_pj_per_byte == 16.0


def test_breakdown_by_component():
    hw = from_device("npu", node_nm=45)
    acts = Actions(sram_read_bytes=100, sram_write_bytes=100, dram_read_bytes=10,
                   link_bytes=2)
    acts.macs["int8:int32"] = 1000
    acts.vector_ops["fp16"] = 10
    e = energy_breakdown_pj(acts, hw, seconds=1e-6)
    assert e["array"] == pytest.approx(300.0)
    assert e["vector"] == pytest.approx(10 * 1.5)
    assert e["dram"] == pytest.approx(1600.0)
    assert e["link"] == pytest.approx(2 * 8 * 5.0)
    t = load_energy_table(45)
    leak_uw = hw.array.pes * 2.0 + hw.vector.lanes * 4.0 + hw.sram.kb * 20.0
    assert e["leakage"] == pytest.approx(leak_uw * 1e6 * 1e-6)
    assert e["sram"] == pytest.approx(200 * t.sram_pj_per_byte(hw.sram_bank_kb))
