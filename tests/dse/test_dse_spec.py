"""Sweep specs: axes checked before anything runs, grid order, point hashes."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from llmc.cli import main
from llmc.dse.spec import AXES, check_size, grid, load_spec, parse_spec, point_hash
from llmc.errors import LlmcError, UsageError
from tests.dse.conftest import TINY, write_spec


def _with(**axes: object) -> dict:
    raw = copy.deepcopy(TINY)
    raw["axes"].update(axes)
    return raw


def test_grid_is_the_product_in_axis_order(tiny) -> None:  # noqa: ANN001
    pts = grid(tiny)
    assert len(pts) == tiny.size == 16
    assert [(p["array"], p["sram_mib"], p["quant"], p["batch"]) for p in pts[:3]] == [
        ("32x32", 1, "int8", 1), ("32x32", 1, "int8", 8), ("32x32", 1, "int4", 1)]
    assert len({p["hash"] for p in pts}) == 16
    assert all(p["hash"] == point_hash(p) for p in pts)
    assert list(pts[0])[:len(AXES)] == list(AXES)


def test_the_hash_covers_the_device_file(tmp_path: Path) -> None:
    npu = (Path(__file__).parents[2] / "llmc/hw/devices/edge-npu.toml").read_text()
    (tmp_path / "mine.toml").write_text(npu)
    a = parse_spec(_with(target=["mine.toml"]), base=tmp_path)
    h = grid(a)[0]["hash"]
    (tmp_path / "mine.toml").write_text(npu.replace("tdp_w = { value = 5.0", "tdp_w = { value = 6.0"))
    b = parse_spec(_with(target=["mine.toml"]), base=tmp_path)
    assert grid(b)[0]["hash"] != h                       # edited hardware: a new point
    assert grid(parse_spec(TINY))[0]["hash"] == grid(parse_spec(TINY))[0]["hash"]


@pytest.mark.parametrize("raw, match", [
    (_with(colour=["red"]), "unknown axis colour"),
    (_with(model=["no-such-model"]), "no-such-model"),
    (_with(target=["tpu"]), "tpu"),
    (_with(array=["32by32"]), "RxC"),
    (_with(sram_mib=[-1]), "sram_mib must be a positive"),
    (_with(batch=[0]), "batch must be a positive integer"),
    (_with(sparsity=["1:8"]), "sparsity"),
    (_with(quant=["int3"]), "int3"),
    (_with(target=["a100"]), "a100-sxm4-80gb lacks"),     # GPUs have no [array] to override
    (_with(batch=[1, 1]), "repeats"),
    ({**TINY, "sweep": {"evaluate": "guess"}}, "evaluate"),
    ({**TINY, "sweep": {"promt": 3}}, "unknown \\[sweep\\] key promt"),
    ({"axes": {"model": "gpt2"}}, "needs target"),
])
def test_bad_specs_are_refused(raw: dict, match: str) -> None:
    with pytest.raises(LlmcError, match=match):
        parse_spec(raw)


def test_point_limit_needs_yes(tiny) -> None:  # noqa: ANN001
    with pytest.raises(UsageError, match="16 points, over the limit of 10; pass --yes"):
        check_size(tiny, yes=False, limit=10)
    check_size(tiny, yes=True, limit=10)


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    bad = write_spec(tmp_path / "bad.toml", '[axes]\nmodel = "gpt2"\ntarget = "npu"\n'
                                            'colour = ["red"]\n')
    big = write_spec(tmp_path / "big.toml", '[axes]\nmodel = "gpt2"\ntarget = "npu"\n'
                     'batch = [' + ", ".join(str(b) for b in range(1, 5002)) + "]\n")
    for args in ([str(bad), "-o", str(tmp_path / "o")],
                 [str(big), "-o", str(tmp_path / "o")],
                 [str(tmp_path / "missing.toml"), "-o", str(tmp_path / "o")]):
        assert main(["sweep", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("llmc: error:"), err
    assert not (tmp_path / "o").exists()                 # refused before any work
    assert "pass --yes" in main_err(tmp_path, big, capsys)


def main_err(tmp_path: Path, spec: Path, capsys) -> str:  # noqa: ANN001
    main(["sweep", str(spec), "-o", str(tmp_path / "o")])
    return capsys.readouterr().err


def test_a_spec_file_reads_device_files_beside_it(tmp_path: Path) -> None:
    npu = (Path(__file__).parents[2] / "llmc/hw/devices/edge-npu.toml").read_text()
    (tmp_path / "devs").mkdir()
    (tmp_path / "devs" / "mine.toml").write_text(npu)
    spec = write_spec(tmp_path / "s.toml", '[axes]\nmodel = "gpt2"\n'
                                           'target = ["npu", "devs/mine.toml"]\n')
    s = load_spec(spec)
    assert s.size == 2 and set(s.device_of) == {"npu", "devs/mine.toml"}
