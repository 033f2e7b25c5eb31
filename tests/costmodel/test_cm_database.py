"""The hardware database: shipped devices, sources on every figure, user files."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from llmc.errors import UsageError
from llmc.hw.database import DEVICES_DIR, get_device, list_devices, load_device_file
from llmc.hw.targets import TARGETS

A100 = DEVICES_DIR / "a100-sxm4-80gb.toml"


def test_every_target_has_its_device() -> None:
    devices = list_devices()
    for name, target in TARGETS.items():
        assert target.device in devices, name
        assert get_device(name).name == target.device
    assert {"a100-pcie-80gb", "a100-sxm4-40gb"} <= set(devices)


@pytest.mark.parametrize("key", sorted(p.stem for p in DEVICES_DIR.glob("*.toml")))
def test_every_figure_has_a_source(key: str) -> None:
    d = get_device(key)
    assert d.name == key
    for u in d.compute.values():
        assert u.source and u.energy_source and u.flops_per_s > 0
    for m in d.memory:
        assert m.source and (m.hardwired or (m.energy_source and m.bytes_per_s > 0))
    for f in (d.tdp_w, d.idle_w, d.reserved_bytes, d.max_tp, *d.efficiency.values()):
        assert f.source
    for link in (d.scale_up, d.host_link):
        assert link is None or (link.source and link.bytes_per_s > 0)
    assert d.idle_w.value < d.tdp_w.value


def test_datasheet_figures_of_the_gpus() -> None:
    a100, h100 = get_device("a100"), get_device("h100")
    assert a100.compute["bf16"].flops_per_s == 312e12
    assert a100.compute["bf16"].sparse_flops_per_s == 624e12
    assert a100.main.bytes_per_s == 2.039e12 and a100.main.capacity_bytes == 80 * 2 ** 30
    assert h100.compute["bf16"].flops_per_s == 989.4e12
    assert h100.compute["fp8"].sparse_flops_per_s == 3957.8e12
    assert h100.main.bytes_per_s == 3.35e12
    assert a100.host_link.bytes_per_s == 32e9 and h100.host_link.bytes_per_s == 64e9
    assert a100.scale_up.bytes_per_s == 300e9 and h100.scale_up.bytes_per_s == 450e9
    assert get_device("h200").main.bytes_per_s == 4.8e12
    assert get_device("a100-40gb").main.bytes_per_s == 1.555e12


def test_fallback_units() -> None:
    a100, h100 = get_device("a100"), get_device("h100")
    assert a100.unit("fp8").dtype == "bf16"          # no fp8 tensor cores on Ampere
    assert h100.unit("int4").dtype == "int8"         # no int4 tensor cores on Hopper
    hn = get_device("hnlpu")
    assert hn.unit("int8", weight_operand=True).dtype == "int8"
    assert hn.unit("int8", weight_operand=False).dtype == "bf16"  # attention: VEX, not HN


def test_unknown_device_suggests() -> None:
    with pytest.raises(UsageError, match="did you mean.*a100"):
        get_device("a10")
    with pytest.raises(UsageError, match="empty"):
        get_device(" ")


def _edited(tmp_path: Path, name: str, edit) -> Path:  # noqa: ANN001
    raw = tomllib.loads(A100.read_text())
    raw["name"] = name
    edit(raw)
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps(raw))
    return p


def test_user_device_as_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "my-gpu.toml"
    toml.write_text(A100.read_text().replace('name = "a100-sxm4-80gb"', 'name = "my-gpu"')
                    .replace("bytes_per_s = 2.039e12", "bytes_per_s = 4e12"))
    assert get_device(str(toml)).main.bytes_per_s == 4e12
    monkeypatch.setenv("LLMC_DEVICE_PATH", str(tmp_path))
    assert get_device("my-gpu").main.bytes_per_s == 4e12
    js = _edited(tmp_path, "my-json-gpu", lambda r: r["power"]["tdp_w"].update(value=500))
    assert load_device_file(js).tdp_w.value == 500
    assert "my-json-gpu" in list_devices()


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["compute"]["bf16"].pop("source"), "source"),
    (lambda r: r["memory"][1].update(bytes_per_s=-1), "bytes_per_s must be positive"),
    (lambda r: r["links"].update(host="pcie9"), "unknown link"),
    (lambda r: r["efficiency"]["matmul"].update(value=1.5), "fraction of peak"),
    (lambda r: r["efficiency"].pop("memory"), "lacks memory"),
    (lambda r: r["compute"].update(fp3={"flops_per_s": 1}), "unknown compute dtype"),
    (lambda r: r["memory"][1].update(holds=["act"]), "outermost"),
])
def test_bad_device_files(tmp_path: Path, edit, message: str) -> None:  # noqa: ANN001
    with pytest.raises(UsageError, match=message):
        load_device_file(_edited(tmp_path, "bad", edit))


def test_unreadable_device_files(tmp_path: Path) -> None:
    bad = tmp_path / "x.toml"
    bad.write_text("name = [")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_device_file(bad)
    with pytest.raises(UsageError, match="does not exist"):
        load_device_file(tmp_path / "none.toml")
