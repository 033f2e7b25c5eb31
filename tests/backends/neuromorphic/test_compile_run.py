"""`llmc compile --target spinnaker2` and `llmc run` on the event LMs, the
paper-size figure after the one calibration, and bad input as one line."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from llmc import api
from llmc.cli import main

FACTORY = '''
from llmc.frontend.zoo.event_lm import EventConfig, build_event_model

def big():
    cfg = EventConfig("big-egru", "egru", 256, 750, (1350, 1350, 750), threshold=0.1,
                      density=0.10, readout_on_chip=False)
    return build_event_model(cfg, "meta"), ()
'''


@pytest.mark.parametrize("model", ["egru-tiny", "spikegpt-tiny"])
def test_compile_and_run_trained_model(model: str, tmp_path: Path) -> None:
    out = tmp_path / model
    api.compile(model, "spinnaker2", out, seq_len=8)
    files = json.loads((out / "manifest.json").read_text())["files"]
    assert {"mapping.json", "neuromorphic.json", "model.nir", "weights.safetensors"} <= set(files)
    rep = json.loads((out / "neuromorphic.json").read_text())
    assert rep["inference"]["time_s"] > 0 and rep["inference"]["energy_j"] > 0
    assert all(0 < r < 1 for r in rep["events"]["event_rate_per_layer"])
    gen = api.run(out, "The ", max_new_tokens=12)
    assert len(gen.tokens) == 12 and gen.result.energy_j > 0 and gen.result.cycles > 0
    # the simulator's greedy text is the dense PyTorch model's greedy text
    from llmc.frontend.loader import load_model

    module = load_model(model).module.double()
    ids = list(b"The ")
    with torch.no_grad():
        logits, states, _ = module(torch.tensor([ids]))
        want = []
        for _ in range(12):
            nxt = int(logits[0, -1].argmax())
            want.append(nxt)
            logits, states, _ = module(torch.tensor([[nxt]]), states)
    assert gen.tokens == want


def test_paper_size_egru_lm_after_calibration() -> None:
    from llmc.backends.neuromorphic.calibrate import PAPER_ENERGY_J, PAPER_TIME_S, predict

    cost, counts, mapping = predict(0.05, "spinnaker2")
    assert mapping.chips == 1 and mapping.pes_used <= 148
    assert cost.time_s == pytest.approx(PAPER_TIME_S, rel=1e-3)   # the calibration point
    assert cost.energy_j == pytest.approx(PAPER_ENERGY_J, rel=1e-3)
    assert all(r > 0 for r in counts.event_rates())


def test_network_too_big_for_one_chip_is_one_line(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    factory = tmp_path / "big.py"
    factory.write_text(FACTORY)
    rc = main(["compile", f"{factory}:big", "--target", "spinnaker2", "-o",
               str(tmp_path / "out"), "--seq-len", "4"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert "short by" in err and "spinnaker2-board" in err and "keep about" in err


def test_attention_model_is_refused_with_options(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    rc = main(["compile", "llama-tiny", "--target", "spinnaker2", "-o", str(tmp_path / "o"),
               "--weights", "random", "--seq-len", "8"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert "attention" in err and "egru-tiny" in err and "delta" in err


def test_invalid_nir_file_exits_2(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    bad = tmp_path / "x.nir"
    bad.write_bytes(b"\x00garbage")
    rc = main(["compile", str(bad), "--target", "spinnaker2", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "NIR" in err


def test_nir_artifact_compiles_back(tmp_path: Path) -> None:
    api.compile("spikegpt-tiny", "spinnaker2", tmp_path / "a", seq_len=4)
    again = api.compile(str(tmp_path / "a" / "model.nir"), "spinnaker2", tmp_path / "b",
                        seq_len=4)
    a = json.loads((tmp_path / "a" / "neuromorphic.json").read_text())["events"]
    b = json.loads((again.out_dir / "neuromorphic.json").read_text())["events"]
    assert a == b and np.isfinite(b["synops"])
