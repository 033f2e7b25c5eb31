"""The hardware database: shipped devices, sources on every figure, user files."""

from __future__ import annotations

import json
import re
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


def _toml(tmp_path: Path, src: Path, name: str, *edits: tuple[str, str]) -> Path:
    text = src.read_text().replace(f'name = "{src.stem}"', f'name = "{name}"')
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    p = tmp_path / f"{name}.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("value", ["inf", "+inf", "nan", "-inf"])
def test_non_finite_figures_are_refused(tmp_path: Path, value: str) -> None:
    """TOML's inf and nan are numbers to tomllib; a device file must not use
    them (a level whose weights are the circuit says hardwired = true)."""
    bad = _toml(tmp_path, A100, "inf-gpu", ("bytes_per_s = 2.039e12", f"bytes_per_s = {value}"))
    with pytest.raises(UsageError) as e:
        load_device_file(bad)
    msg = str(e.value)
    assert str(bad) in msg and "memory[1] (hbm)" in msg and "bytes_per_s" in msg
    assert "finite" in msg or "positive" in msg
    assert "\n" not in msg


def test_inf_is_refused_everywhere(tmp_path: Path) -> None:
    for old, new, field in [
        ("value = 400, source", "value = inf, source", "tdp_w"),
        ("flops_per_s = 312e12", "flops_per_s = inf", "compute.bf16"),
        ("capacity_bytes = 85899345920", "capacity_bytes = inf", "capacity_bytes"),
        ("capacity_bytes = 274877906944", "capacity_bytes = inf", "host_memory"),
    ]:
        with pytest.raises(UsageError, match=f"{field}.*finite"):
            load_device_file(_toml(tmp_path, A100, "inf-gpu", (old, new)))
    with pytest.raises(UsageError, match="finite"):
        load_device_file(_toml(tmp_path, DEVICES_DIR / "edge-npu.toml", "inf-npu",
                               ("value = 1.3733e9", "value = inf")))


def test_hardwired_level_keeps_its_flag() -> None:
    hn = get_device("hnlpu")
    wired = hn.level("hn-array")
    assert wired.hardwired and hn.memory[0] is wired
    raw = tomllib.loads((DEVICES_DIR / "hnlpu.toml").read_text())
    assert raw["memory"][0] == {**raw["memory"][0], "hardwired": True}
    assert "capacity_bytes" not in raw["memory"][0]


@pytest.mark.parametrize("key", sorted(p.stem for p in DEVICES_DIR.glob("*.toml")
                                       if tomllib.loads(p.read_text())["kind"] == "gpu"))
def test_gpu_memory_is_counted_in_gib(key: str) -> None:
    """Every GPU file reads the datasheet's 'N GB' of HBM as N GiB (N x 2^30 B),
    as nvidia-smi's totals show (A100 80GB: 81920 MiB; H200: 143771 MiB =
    140.4 GiB, far from 141e9 B = 131.3 GiB); the source says so."""
    d = get_device(key)
    gb = int(re.search(r"(\d+) GB", d.description).group(1))
    assert d.main.capacity_bytes == gb * 2 ** 30, (key, d.main.capacity_bytes)
    assert "GiB" in d.main.source


def test_h200_capacity_source_cites_nvidia_smi() -> None:
    h200 = get_device("h200")
    assert h200.main.capacity_bytes == 141 * 2 ** 30 == 151_397_597_184
    assert "143771 MiB" in h200.main.source


@pytest.mark.parametrize("edits, message", [
    ([("rows = 128", "rows = 64")], r"compute.int8.flops_per_s vs 2 x 1 x 64 x 128"),
    ([("lanes = 256", "lanes = 512")], r"compute.vector.flops_per_s vs 2 x 1 x 512 lanes"),
    ([("bank_width_bits = 128", "bank_width_bits = 64")], r"memory sram.bytes_per_s vs"),
    ([("ports_per_bank = 2\n", "")], r"banking needs all of .*missing ports_per_bank"),
    ([("level = \"sram\"", "level = \"l3\"")], r"level 'l3' is not one of"),
    ([("dataflow = \"os\"", "dataflow = \"rs\"")], r"array: unknown dataflow 'rs'"),
    ([("numeric = \"int\"", "numeric = \"posit\"")], r"numeric must be one of int, fp"),
    ([("align = 128", "align = 12"), ("pow2 = false", "pow2 = true")], r"power of two"),
    ([("count = 1\nsource = \"assumption: one 128x128",
       "count = 1.5\nsource = \"assumption: one 128x128")], r"array: count must be an integer"),
    ([("in_bits = 8", "in_bits = 4")], r"needs \[compute.int4\]|compute.int4.flops_per_s"),
])
def test_derived_figures_must_agree(tmp_path: Path, edits, message: str) -> None:  # noqa: ANN001
    bad = _toml(tmp_path, DEVICES_DIR / "edge-npu.toml", "bad-npu", *edits)
    with pytest.raises(UsageError, match=message) as e:
        load_device_file(bad)
    assert str(bad) in str(e.value)


def test_one_edge_npu() -> None:
    """The cost model, the simulator and tiling read these figures; they are
    consistent with each other (peak = array x clock, SRAM bandwidth = banks
    x ports x width x clock)."""
    npu = get_device("npu")
    assert npu.level("sram").capacity_bytes == 8 * 2 ** 20
    assert npu.main.bytes_per_s == 68.3e9 and npu.node_nm == 5
    a = npu.array
    assert (a.spec.rows, a.spec.cols, a.spec.dataflow.value, a.count) == (128, 128, "os", 1)
    assert npu.scratchpad.level == "sram" and npu.scratchpad.capacity_bytes == 8 * 2 ** 20
    assert npu.compute["int8"].flops_per_s == 45e12
    for d in list_devices().values():
        for figure in (d.clock_hz, d.array, d.vector, d.scratchpad, d.tiling):
            assert figure is None or figure.source


def test_gpu_sm_count_is_a_cited_integer(tmp_path: Path) -> None:
    h100 = get_device("h100")
    assert h100.sm_count.value == 132 and "whitepaper" in h100.sm_count.source
    assert get_device("npu").sm_count is None
    bad = _toml(tmp_path, DEVICES_DIR / "h100-sxm5.toml", "bad-gpu",
                ("sm_count = { value = 132,", "sm_count = { value = 13.5,"))
    with pytest.raises(UsageError, match=r"gpu: sm_count must be an integer"):
        load_device_file(bad)
