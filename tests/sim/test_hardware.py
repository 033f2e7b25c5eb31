"""The simulator's view of a device: from_device reads the device file, takes
overrides, refuses a device without the figures it needs; no figure has a
default in llmc.sim.hardware."""

from __future__ import annotations

import dataclasses
import math

import pytest

from llmc.errors import UsageError
from llmc.hw import get_device
from llmc.sim import DramSpec, LinkSpec, SimHardware, SramSpec, VectorSpec, from_device


def test_npu_view_is_the_device_file():
    """The simulator, the cost model and tiling read one edge NPU (it used to
    default to 2 MiB SRAM, 100 GB/s DRAM, 1 GHz and 7 nm of its own)."""
    dev = get_device("npu")
    hw = from_device("npu")
    assert hw.device == "edge-npu" and hw.overrides == ()
    assert hw.array == dev.array.spec and (hw.array.rows, hw.array.cols) == (128, 128)
    assert hw.sram.bytes == dev.level("sram").capacity_bytes == 8 * 2 ** 20
    assert hw.dram.gbps * 1e9 == dev.main.bytes_per_s == 68.3e9
    assert hw.dram.latency_ns == pytest.approx(dev.main.latency_s * 1e9)
    assert hw.clock_ghz * 1e9 == dev.clock_hz.value and hw.node_nm == dev.node_nm == 5
    # the peak the simulator runs at is the peak the cost model uses
    assert 2 * hw.array.pes * hw.clock_ghz * 1e9 == pytest.approx(
        dev.compute["int8"].flops_per_s, rel=0.01)
    assert hw.sram_bytes_per_cycle * hw.clock_ghz * 1e9 == pytest.approx(
        dev.level("sram").bytes_per_s, rel=0.01)
    assert hw.vector.lanes * 2 * hw.clock_ghz * 1e9 == pytest.approx(
        dev.compute["vector"].flops_per_s, rel=0.01)
    assert hw.link is None  # a single SoC: no scale-up link


def test_overrides_are_recorded():
    hw = from_device("npu", array="32x32", dataflow="ws", dram_gbps=math.inf, sram_banks=None)
    assert (hw.array.rows, hw.array.dataflow.value, hw.array.in_bits) == (32, "ws", 8)
    assert hw.sram_bytes_per_cycle == math.inf
    assert hw.overrides == ("array 32x32 ws 8/32-bit", "dram_gbps inf", "sram_banks auto")
    assert "overrides: array 32x32 ws" in hw.describe()
    same = from_device("npu", dram_gbps=68.3)  # equal to the device's: not an override
    assert same.overrides == ()


def test_spinnaker2_simulates_one_pe():
    hw = from_device("spinnaker2")
    assert (hw.array.rows, hw.array.cols, hw.array_count) == (16, 4, 152)
    assert hw.sram.bytes == 96 * 1024 and hw.clock_ghz == 0.3 and hw.node_nm == 22
    assert "(one of 152)" in hw.describe()


@pytest.mark.parametrize("target", ["a100", "h100", "hnlpu"])
def test_devices_without_an_array_are_refused(target):
    with pytest.raises(UsageError, match=r"lacks what the simulator needs: \[array\] "
                                         r"\(pass --array RxC, e.g. --array 128x128\)"):
        from_device(target)


def test_missing_figures_can_be_given():
    hw = from_device("hnlpu", array="64x64", sram_banks=None, sram_bank_bits=64, sram_ports=2,
                     double_buffered=True, dram_latency_ns=100.0)
    assert hw.numeric == "int" and hw.clock_ghz == 1.0 and hw.device == "hnlpu"
    with pytest.raises(UsageError, match="unknown hardware override sram"):
        from_device("npu", sram=64)
    with pytest.raises(UsageError, match="no scale-up link"):
        from_device("npu", link_gbps=10.0)
    assert from_device("npu", link_gbps=10.0, link_latency_ns=5.0).link == LinkSpec(10.0, 5.0)


def test_no_hardware_figure_has_a_default():
    """Every figure comes from a device file (or an explicit override)."""
    for cls in (SimHardware, SramSpec, DramSpec, LinkSpec, VectorSpec):
        for f in dataclasses.fields(cls):
            if f.name in ("vector", "link", "device", "overrides", "array_count"):
                continue
            assert f.default is dataclasses.MISSING, (cls.__name__, f.name)
            assert f.default_factory is dataclasses.MISSING, (cls.__name__, f.name)


def test_vector_and_link_steps_need_the_unit():
    from llmc.sim import LinkStep, VectorStep, simulate_schedule

    hw = dataclasses.replace(from_device("npu"), vector=None)
    with pytest.raises(UsageError, match="edge-npu has no vector unit"):
        simulate_schedule([VectorStep(16)], hw)
    with pytest.raises(UsageError, match="edge-npu has no chip-to-chip link"):
        simulate_schedule([LinkStep(16)], from_device("npu"))
