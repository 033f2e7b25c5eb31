"""`llmc plan`: the activation memory plan of a model, from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmc.cli import main
from llmc.cli.common import parse_size
from llmc.passes.memplan import Buffer, Plan, Problem, check_plan


def _problem(data: dict) -> tuple[Problem, Plan]:
    bufs = [Buffer(b["name"], b["size"], b["start"], b["end"]) for b in data["buffers"]]
    return (Problem(bufs, data["alignment"]),
            Plan({b["name"]: b["offset"] for b in data["buffers"]}, data["arena_bytes"],
                 data["method"], 0.0))


def test_plan_writes_a_checked_plan(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "p"
    assert main(["plan", "llama-tiny", "--seq-len", "32", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "lower bound" in text and "greedy-by-size" in text and "(auto)" in text
    assert "proved optimal" in text
    data = json.loads((out / "plan.json").read_text())
    problem, plan = _problem(data)
    check_plan(problem, plan)
    assert data["arena_bytes"] >= data["lower_bound_bytes"] > 0
    assert (out / "plan.png").read_bytes()[:4] == b"\x89PNG"
    first = (out / "plan.json").read_bytes()
    assert main(["plan", "llama-tiny", "--seq-len", "32", "-o", str(out)]) == 0
    assert (out / "plan.json").read_bytes() == first              # same inputs, same bytes


def test_plan_kv_cache_is_not_in_the_arena() -> None:
    """The K/V a prefill returns go to the KV cache: the arena holds only
    activations, so it does not grow with the number of layers' caches."""
    from llmc import api
    from llmc.passes.memplan.liveness import kv_outputs, liveness

    g = api.trace("llama-tiny", "prefill", seq_len=32, weights="meta").graph
    kv = kv_outputs(g)
    assert len(kv) == 2 * 2                                     # K and V of both layers
    names = {b.name for b in liveness(g).problem.buffers}
    assert not names & {v.node.name for v in kv}


def test_plan_reorder_and_arena(capsys) -> None:  # noqa: ANN001
    assert main(["plan", "gpt2-tiny", "--seq-len", "16", "--reorder", "--method", "mip",
                 "--arena", "64MiB"]) == 0
    text = capsys.readouterr().out
    assert "(traced, op by op)" in text and "memory-order + fuse saved" in text
    assert "fits the 64.00 MiB arena" in text


def test_plan_too_small_an_arena_says_what_is_missing(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "p"
    assert main(["plan", "llama-tiny", "--seq-len", "32", "--arena", "1KiB",
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no spill plan fits" in err and "'embedding'" in err
    assert not out.exists()                                        # nothing half-written
    assert main(["plan", "llama-tiny", "--seq-len", "32", "--arena", "1KiB",
                 "--method", "greedy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bytes short" in err and "spill candidates" in err


@pytest.mark.parametrize("text,want", [("1048576", 2**20), ("64MiB", 64 * 2**20),
                                       ("1.5 GB", 1_500_000_000), ("2kib", 2048)])
def test_parse_size(text: str, want: int) -> None:
    assert parse_size(text) == want


@pytest.mark.parametrize("text", ["", "12XB", "-5", "0", "0.5B", "MiB"])
def test_parse_size_refuses(text: str) -> None:
    from llmc.errors import UsageError

    with pytest.raises(UsageError, match="--arena"):
        parse_size(text)


def test_plan_at_a_targets_precision(capsys: pytest.CaptureFixture[str]) -> None:
    """--target plans a float32 trace at the device's default (bf16 on a100): the
    weights region is half the float32 one, and the precision is printed."""
    assert main(["plan", "llama-tiny", "--seq-len", "16", "--json"]) == 0
    f32 = json.loads(capsys.readouterr().out)["plan"]
    assert main(["plan", "llama-tiny", "--seq-len", "16", "--target", "a100", "--json"]) == 0
    bf16 = json.loads(capsys.readouterr().out)["plan"]
    w32 = f32["static"]["regions"]["weights"]["bytes"]
    w16 = bf16["static"]["regions"]["weights"]["bytes"]
    assert w16 * 2 == w32 and bf16["precision"]["act"] == "bf16"
    assert main(["plan", "llama-tiny", "--seq-len", "16", "--target", "a100"]) == 0
    assert "precision: weights bf16" in capsys.readouterr().out


TRAP = [{"name": "b0", "size": 384, "start": 5, "end": 8},
        {"name": "b1", "size": 320, "start": 3, "end": 5},
        {"name": "b2", "size": 256, "start": 1, "end": 2},
        {"name": "b3", "size": 64, "start": 4, "end": 6},
        {"name": "b4", "size": 192, "start": 1, "end": 2},
        {"name": "b5", "size": 192, "start": 2, "end": 4}]


def test_plan_buffers_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A user's buffer list, planned like a model's: plan.json, plan.png, and
    what was proved."""
    f = tmp_path / "bufs.json"
    f.write_text(json.dumps(TRAP))
    out = tmp_path / "p"
    assert main(["plan", "--buffers", str(f), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "plan: cpsat, proved optimal" in text and "wrote" in text
    data = json.loads((out / "plan.json").read_text())
    problem, plan = _problem(data)
    check_plan(problem, plan)
    assert data["arena_bytes"] == data["lower_bound_bytes"] == 768
    assert data["method"] == "cpsat" and data["optimal"] is True
    assert (out / "plan.png").read_bytes()[:4] == b"\x89PNG"
    first = (out / "plan.json").read_bytes()
    assert main(["plan", "--buffers", str(f), "-o", str(out)]) == 0
    assert (out / "plan.json").read_bytes() == first              # same inputs, same bytes
    capsys.readouterr()
    csv = tmp_path / "bufs.csv"
    csv.write_text("name,size,start,end\n" + "".join(
        f"{r['name']},{r['size']},{r['start']},{r['end']}\n" for r in TRAP))
    assert main(["plan", "--buffers", str(csv), "--json", "--method", "greedy"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert set(got) >= {"arena_bytes", "lower_bound_bytes", "method", "optimal", "seconds"}
    assert got["method"] == "greedy" and got["optimal"] is False and got["arena_bytes"] == 960


def test_plan_buffers_with_spills(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bufs.json"
    f.write_text(json.dumps(TRAP))
    assert main(["plan", "--buffers", str(f), "--arena", "704", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["method"] == "cpsat-spill" and got["arena_bytes"] <= 704
    assert got["spills"]["moved_bytes"] == 128 and got["optimal"] is True
    assert main(["plan", "--buffers", str(f), "--arena", "704"]) == 0
    assert "128 B of DMA traffic added" in capsys.readouterr().out


@pytest.mark.parametrize("name,text,msg", [
    ("neg.json", '[{"name": "a", "size": -1, "start": 0, "end": 1}]', "entry 0 ('a'): size"),
    ("order.csv", "name,size,start,end\na,64,3,1\n", "line 2 ('a'): end (step 1) is before"),
    ("dup.json", '[{"name": "a", "size": 64, "start": 0, "end": 1},'
                 ' {"name": "a", "size": 64, "start": 0, "end": 1}]', "repeats entry 0"),
    ("junk.bin", "\x00\x01 binary", "not JSON, and not CSV"),
    ("few.json", '[{"name": "a", "size": 64}]', "missing field(s) start, end"),
])
def test_plan_buffers_malformed(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str,
                                text: str, msg: str) -> None:
    f = tmp_path / name
    f.write_text(text)
    out = tmp_path / "p"
    assert main(["plan", "--buffers", str(f), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(f) in err and msg in err
    assert not out.exists()                                        # nothing written


def test_plan_needs_a_model_or_buffers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan"]) == 2
    assert "give a model or --buffers" in capsys.readouterr().err


def test_plan_with_the_npus_banks(capsys: pytest.CaptureFixture[str]) -> None:
    """--banks takes the bank size from the target's [scratchpad] (edge-npu:
    8 MiB in 32 banks) and every buffer keeps the rule."""
    assert main(["plan", "llmc-tiny", "--seq-len", "16", "--target", "npu", "--banks",
                 "within", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["plan"]
    assert data["bank_bytes"] == 256 * 1024
    assert all(b["bank"] == "within" for b in data["buffers"])
    assert main(["plan", "llmc-tiny", "--banks", "within"]) == 2
    assert "--banks needs --target" in capsys.readouterr().err
    assert main(["plan", "llmc-tiny", "--seq-len", "16", "--target", "a100", "--banks",
                 "start"]) == 2
    assert "no banked scratchpad" in capsys.readouterr().err


def test_plan_tile_rows_auto_fits_half_the_lower_bound(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    """llmc-tiny at 64 tokens, fused: half the untiled lower bound (213,248 B)
    (refused untiled: tests/passes/memplan) plans in 2 row tiles, with spills."""
    assert main(["plan", "llmc-tiny", "--seq-len", "64", "--arena", "213248",
                 "--tile-rows", "auto", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["tile_rows"]["tiles"] == 2 and got["tile_rows"]["anchored_bytes"] <= 213248
    assert got["plan"]["spills"]["moved_bytes"] > 0 and got["status"] == "optimal"
    assert got["arena_bytes"]["greedy-by-size"] > 213248 >= got["arena_bytes"]["cpsat-spill (auto)"]


def test_plan_tile_rows_refusals(capsys: pytest.CaptureFixture[str]) -> None:
    for args, msg in ((["--tile-rows", "auto"], "needs --arena"),
                      (["--tile-rows", "0"], "auto or a positive tile count"),
                      (["--arena", "1KiB", "--tile-rows", "auto"],
                       "no tiling fits the arena of 1,024 bytes: in 16 row tile")):
        assert main(["plan", "llama-tiny", "--seq-len", "16", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and msg in err, err
    assert main(["plan", "--buffers", "x.json", "--tile-rows", "2"]) == 2
    assert "--tile-rows applies to a model" in capsys.readouterr().err
