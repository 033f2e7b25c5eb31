"""The neuromorphic backend's section of `llmc demo`: a trained event LM
compiled for SpiNNaker 2 and run event by event, and the paper-size EGRU
beside the measurement the cost model was calibrated on."""

from __future__ import annotations

import json
from pathlib import Path


def demo(root: Path) -> None:
    from llmc import api
    from llmc.backends.neuromorphic.calibrate import (
        PAPER_A100_ENERGY_J,
        PAPER_A100_TIME_S,
        PAPER_ENERGY_J,
        PAPER_TIME_S,
        predict,
    )

    out = api.compile("egru-tiny", "spinnaker2", Path(root) / "egru-tiny-spinnaker2",
                      seq_len=16).out_dir
    rep = json.loads((out / "neuromorphic.json").read_text())
    mapping = json.loads((out / "mapping.json").read_text())
    inf = rep["inference"]
    print(f"  egru-tiny (trained, byte level) on SpiNNaker 2: {mapping['pes_used']} PEs, "
          f"{mapping['synapses']:,} synapses, max {mapping['sram_bytes_max_pe'] / 1024:.0f} KB "
          f"SRAM/PE -> {out}/")
    rates = ", ".join(f"{r:.2f}" for r in rep["events"]["event_rate_per_layer"])
    print(f"  event rates per layer {rates}; {inf['per_step_s'] * 1e3:.2f} ms and "
          f"{inf['per_step_j'] * 1e6:.0f} uJ per token (simulated)")
    gen = api.run(out, "The ", max_new_tokens=24)
    print(f"  llmc run: {'The ' + gen.text!r} ({gen.result.energy_j * 1e3:.2f} mJ on chip)")
    cost, counts, m = predict(0.05, "spinnaker2")
    print(f"  egru-lm (3 x 1350/1350/750, 95% pruned) on one chip, {m.pes_used} PEs, "
          f"{counts.steps} tokens: {cost.time_s * 1e3:.1f} ms, {cost.energy_j * 1e3:.1f} mJ "
          f"(calibrated on the paper's {PAPER_TIME_S * 1e3:.0f} ms, "
          f"{PAPER_ENERGY_J * 1e3:.1f} mJ; A100 {PAPER_A100_TIME_S * 1e3:.1f} ms, "
          f"{PAPER_A100_ENERGY_J:.2f} J)")
