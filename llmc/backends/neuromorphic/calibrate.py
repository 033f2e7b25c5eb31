"""The one calibration of the event cost model, and the paper's comparison.

    python -m llmc.backends.neuromorphic.calibrate            # print
    python -m llmc.backends.neuromorphic.calibrate --write    # store in the device file

Reference: egru-lm at the paper's size (3 EGRU layers 1350/1350/750,
embedding 750), 95% of the weights pruned (CSR), on one SpiNNaker 2, one
inference = tokens_per_inference steps; Nazeer et al. 2024 measured 170.25 ms
and 65.3 mJ (docs/references.md). With every other figure fixed by the device
file, two are solved for:

  step_overhead_cycles  = (170.25 ms x clock - the simulated critical-path cycles) / steps
  pj_per_active_cycle   = (65.3 mJ - idle power x 170.25 ms - SRAM - NoC energy) / active cycles

and written back into llmc/hw/devices/spinnaker2.toml; from then on they are
read like any other figure and never fitted again. A second configuration
(`predict` at another density or chip count) is then a prediction.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import replace
from pathlib import Path

from llmc.backends.neuromorphic.backend import sample_tokens
from llmc.backends.neuromorphic.costs import Cost, cost_of
from llmc.backends.neuromorphic.mapping import map_network
from llmc.backends.neuromorphic.network import extract
from llmc.backends.neuromorphic.sim import Counts, Simulator
from llmc.backends.neuromorphic.spec import NeuroSpec, load_spec
from llmc.frontend.zoo.event_lm import build_event_model, get_event_config

PAPER_TIME_S = 170.25e-3     # Nazeer et al. 2024, per inference on SpiNNaker 2
PAPER_ENERGY_J = 65.3e-3
PAPER_A100_TIME_S = 19.9e-3  # the same paper, A100, batch 1
PAPER_A100_ENERGY_J = 1.19


def paper_counts(density: float = 0.05, target: str = "spinnaker2",
                 spec: NeuroSpec | None = None) -> tuple[Counts, object]:
    """(counts, mapping) of one inference of egru-lm at `density` on `target`."""
    spec = spec or load_spec()
    cfg = replace(get_event_config("egru-lm"), density=density)
    graph = build_event_model(cfg, "meta").to_graph("prefill", 1, spec.tokens_per_inference)
    net = extract(graph)
    mapping = map_network(net, spec, spec.chips_for(target), target)
    res = Simulator(mapping).run(sample_tokens(spec.tokens_per_inference, net.vocab))
    return res.counts, mapping


def predict(density: float = 0.05, target: str = "spinnaker2") -> tuple[Cost, Counts, object]:
    counts, mapping = paper_counts(density, target)
    return cost_of(counts, mapping), counts, mapping


def calibrate() -> tuple[float, float]:
    """(step_overhead_cycles, pj_per_active_cycle) that make the reference
    configuration take the paper's time and energy."""
    spec = load_spec().with_(step_overhead_cycles=0.0, pj_per_active_cycle=0.0)
    counts, mapping = paper_counts(spec=spec)
    mapping.spec = spec
    overhead = (PAPER_TIME_S * spec.clock_hz - counts.critical_cycles) / counts.steps
    spec = spec.with_(step_overhead_cycles=overhead)
    base = cost_of(counts, mapping, spec)
    pj = (PAPER_ENERGY_J - base.energy_j) / base.active_cycles * 1e12
    return overhead, pj


def write(overhead: float, pj: float, path: Path | None = None) -> None:
    from llmc.hw.database import get_device

    path = path or Path(get_device("spinnaker2").path)
    text = path.read_text()
    for key, val in (("step_overhead_cycles", f"{overhead:.1f}"),
                     ("pj_per_active_cycle", f"{pj:.4f}")):
        text, n = re.subn(rf"^({key} = {{ value = )[0-9.eE+-]+", rf"\g<1>{val}", text,
                          flags=re.M)
        assert n == 1, key
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--write", action="store_true", help="store the figures in the device file")
    args = p.parse_args(argv)
    overhead, pj = calibrate()
    print(f"step_overhead_cycles = {overhead:.1f}\npj_per_active_cycle = {pj:.4f}")
    if args.write:
        write(overhead, pj)


if __name__ == "__main__":
    main(sys.argv[1:])
