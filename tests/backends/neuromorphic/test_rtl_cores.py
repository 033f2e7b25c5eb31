"""The LIF and EGRU neuron cores: lint clean, and under Icarus and Verilator
bit-exact with the fixed-point model on operands the fixed-point simulator
recorded plus seeded random ones and edge cases."""

from pathlib import Path

import numpy as np
import pytest

from llmc.backends.neuromorphic import fixed
from llmc.backends.neuromorphic.mapping import map_network
from llmc.backends.neuromorphic.network import extract
from llmc.backends.neuromorphic.rtl import CORES, lint_core, run_core
from llmc.backends.neuromorphic.rtl.tb_neuron import expected
from llmc.backends.neuromorphic.sim import Simulator
from llmc.backends.neuromorphic.spec import load_spec
from llmc.frontend.zoo.event_lm import EventConfig, build_event_model
from tests.rtl.rtl_helpers import SIMS


def _traced(kind: str, n: int = 60) -> tuple[list[dict[str, int]], object, object]:
    cfg = EventConfig(f"t-{kind}", kind, 30, 10, (20,), threshold=0.1 if kind == "egru"
                      else 1.0, beta=0.9 if kind == "lif" else 0.0)
    model = build_event_model(cfg, seed=4)
    m = map_network(extract(model.to_graph("prefill", 1, 4)), load_spec())
    toks = np.arange(12) % 30
    sim = Simulator(m, numeric="fixed", trace=n)
    res_fixed = sim.run(toks)
    return sim.traced, res_fixed, Simulator(m).run(toks)


def test_fixed_point_simulator_tracks_the_float_one() -> None:
    _, fx, fl = _traced("lif")
    agree = np.mean(fx.events[0] == fl.events[0])
    assert agree > 0.95 and fx.events[0].any()
    assert np.abs(fx.logits - fl.logits).max() < 0.05          # Q.12 rounding


def test_fixed_model_reset_and_threshold() -> None:
    one = fixed.ONE
    s, v = fixed.lif_update(np.array([one, one]), np.array([1, 0]), one, one)
    assert s.tolist() == [1, 0] and v.tolist() == [0, one]      # strict >, reset to zero
    e, y, c = fixed.egru_update(np.array([0]), np.array([8 * one]), np.array([0]),
                                np.array([0]), np.array([0]), 0)
    assert e.tolist() == [0] and c.tolist() == [0]              # u = 1 keeps c


@pytest.mark.parametrize("core", CORES)
def test_lint_clean(core: str) -> None:
    assert lint_core(core) == []


@pytest.mark.rtl
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
@pytest.mark.parametrize("core", CORES)
def test_core_bit_exact(core: str, sim: str, tmp_path: Path) -> None:
    if sim not in SIMS:
        pytest.skip(f"{sim} is not in LLMC_RTL_SIMULATORS")
    vectors, _, _ = _traced(core)
    assert len(vectors) == 60 and all(len(expected(core, v)) in (2, 3) for v in vectors)
    run = run_core(core, sim, tmp_path / "b", cases=60, seed=1, vectors=vectors)
    assert run.passed and run.tests == 1, run.log.read_text()[-2000:]


@pytest.mark.rtl
def test_testbench_catches_a_wrong_core(tmp_path: Path) -> None:
    """The scoreboard fails a core that differs: lif_core with the reset left out."""
    bad = tmp_path / "lif_core.v"
    from llmc.backends.neuromorphic.rtl import source

    bad.write_text(source("lif").read_text().replace("fire ? 32'sd0 : v_new", "v_new"))
    from llmc.rtl.runner import run_cocotb

    run = run_cocotb([bad], "lif_core", "llmc.backends.neuromorphic.rtl.tb_neuron", SIMS[0],
                     tmp_path / "b", extra_env={"NEURON_CORE": "lif", "NEURON_CASES": "40"})
    assert not run.passed
