"""Hardware overrides: a derived device file that passes the database's checks
and moves the figures that derive from the overridden ones."""

from __future__ import annotations

import tomllib

import pytest

from llmc.dse.hardware import derive
from llmc.hw.area import area_mm2
from llmc.hw.database import get_device, links
from llmc.hw.parse import parse_device


def _npu() -> dict:
    return tomllib.loads(open(get_device("npu").path).read())  # noqa: SIM115


def test_overrides_scale_what_derives_from_them() -> None:
    base = parse_device(_npu(), "npu", links())
    d = parse_device(derive(_npu(), {"array": "64x64", "clock_ghz": 2.0, "sram_mib": 16,
                                     "dram_gbps": 100.0}), "derived", links())
    assert (d.array.spec.rows, d.array.spec.cols) == (64, 64)
    assert d.clock_hz.value == 2e9
    # the array's peak follows MACs x clock: a quarter of the MACs, x 2/1.3733 the clock
    assert d.compute["int8"].flops_per_s == pytest.approx(2 * 64 * 64 * 2e9, rel=1e-4)
    assert d.compute["vector"].flops_per_s == pytest.approx(
        base.compute["vector"].flops_per_s * 2e9 / base.clock_hz.value)
    assert d.level("sram").capacity_bytes == 16 * 2**20
    assert d.main.bytes_per_s == 100e9
    assert "sweep override" in d.compute["int8"].source


def test_area_grows_with_the_array_and_the_sram() -> None:
    def area(**over: object) -> float:
        return area_mm2(parse_device(derive(_npu(), over), "x", links()))

    assert area(array="64x64") < area() < area(array="256x256")
    assert area(sram_mib=4) < area() < area(sram_mib=32)
    assert area_mm2(get_device("a100")) is None          # no MAC array: no area figure
