"""The neuromorphic backend's figures: simulator speed, the paper comparison,
event rates and perplexity of the event LMs beside llmc-tiny, energy per
token on SpiNNaker 2 vs A100 vs the edge NPU, and delta conversion of
llmc-tiny (event rate vs perplexity over thresholds).

Run: ``.venv/bin/python -m bench.neuromorphic_bench [--quick]``
(writes bench/results/neuromorphic.md and bench/results/neuromorphic.json).
SpiNNaker 2 figures come from the event simulator with the calibrated cost
model (llmc/backends/neuromorphic); A100 and NPU figures from llmc's
analytic cost model on the same graphs; perplexities of the trained models
from their model cards (all held-out windows, llmc/frontend/zoo/weights).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llmc import api  # noqa: E402
from llmc.backends.neuromorphic.backend import sample_tokens  # noqa: E402
from llmc.backends.neuromorphic.calibrate import (  # noqa: E402
    PAPER_A100_ENERGY_J,
    PAPER_A100_TIME_S,
    PAPER_ENERGY_J,
    PAPER_TIME_S,
    predict,
)
from llmc.backends.neuromorphic.costs import cost_of  # noqa: E402
from llmc.backends.neuromorphic.mapping import map_network  # noqa: E402
from llmc.backends.neuromorphic.network import extract  # noqa: E402
from llmc.backends.neuromorphic.sim import Simulator  # noqa: E402
from llmc.backends.neuromorphic.spec import load_spec  # noqa: E402
from llmc.frontend.zoo import data  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
WEIGHTS = Path(__file__).resolve().parents[1] / "llmc" / "frontend" / "zoo" / "weights"


def sim_speed(tokens: int) -> dict[str, float]:
    """Synaptic events per wall second: egru-lm at paper size, numba warm."""
    spec = load_spec()
    graph = api.trace("egru-lm", "prefill", seq_len=8, weights="meta").graph
    mapping = map_network(extract(graph), spec)
    sim = Simulator(mapping)
    sim.run(sample_tokens(4, mapping.network.vocab))           # compile the numba loops
    sim.reset()
    res = sim.run(sample_tokens(tokens, mapping.network.vocab))
    c = res.counts
    return {"tokens": tokens, "synops": c.total_synops, "wall_s": round(c.wall_s, 3),
            "synops_per_s": c.total_synops / c.wall_s,
            "events_per_s": sum(c.events) / c.wall_s}


def cost_model(model: str, target: str, tokens: int) -> dict[str, float]:
    """The analytic cost model's prefill of `tokens` and one decode step."""
    from llmc.costmodel import build_report

    pre = api.trace(model, "prefill", seq_len=tokens, weights="meta").graph
    dec = api.trace(model, "decode", seq_len=tokens, weights="meta").graph
    r = build_report(pre, dec, None, target, batch=1, prompt=tokens, model=model)
    return {"prefill_s": r.prefill.time_s, "prefill_j": r.prefill.energy_j,
            "decode_s_per_token": r.decode.time_s, "decode_j_per_token": r.decode.energy_j}


def paper_rows() -> list[dict[str, object]]:
    rows = []
    for density, target, what in [
            (0.05, "spinnaker2", "calibration point (the paper's configuration)"),
            (0.08, "spinnaker2", "prediction: 92% pruned, one chip"),
            (0.10, "spinnaker2-board", "prediction: 90% pruned, does not fit one chip")]:
        cost, counts, m = predict(density, target)
        rows.append({"config": what, "density": density, "chips": m.chips, "pes": m.pes_used,
                     "synapses": m.summary()["synapses"], "synops": counts.total_synops,
                     "event_rates": [round(r, 3) for r in counts.event_rates()],
                     "time_s": cost.time_s, "energy_j": cost.energy_j,
                     "static_j": cost.static_j, "compute_j": cost.compute_j,
                     "sram_j": cost.sram_j, "noc_j": cost.noc_j})
    return rows


def event_model_row(model: str, spec_tokens: int) -> dict[str, object]:
    card = json.loads((WEIGHTS / f"{model}.json").read_text())
    ev = card["heldout_eval"]
    spec = load_spec()
    graph = api.trace(model, "prefill", seq_len=8).graph
    mapping = map_network(extract(graph), spec)
    _, heldout = data.corpus_splits()
    toks = np.frombuffer(heldout[:spec_tokens], np.uint8).astype(np.int64)
    res = Simulator(mapping).run(toks)
    cost = cost_of(res.counts, mapping)
    return {"model": model, "ppl_per_byte": ev["ppl_per_byte"],
            "bits_per_byte": ev["bits_per_byte"],
            "event_rates_heldout": ev["event_rate_per_layer"],
            "event_rates_sim": [round(r, 4) for r in res.counts.event_rates()],
            "parameters": card["parameters"], "pes": mapping.pes_used,
            "spinnaker2_j_per_token": cost.per_step_j, "spinnaker2_s_per_token": cost.per_step_s,
            "synops_per_token": res.counts.total_synops / len(toks)}


def delta_sweep(thresholds: list[float], windows: int, seq: int) -> list[dict[str, float]]:
    from llmc.passes.delta import measure_event_rates, to_delta
    from llmc.passes.quant.evaluate import perplexity

    graph = api.trace("llmc-tiny", "prefill", batch=4, seq_len=seq).graph
    _, heldout = data.corpus_splits()
    win = data.eval_windows(heldout, seq)[:windows]
    base = perplexity(graph, win)
    rows = []
    for th in thresholds:
        g, rates = measure_event_rates(to_delta(graph, th), win[:, :-1])
        ppl = perplexity(g, win)
        rows.append({"threshold": th, "event_rate_mean": float(np.mean(list(rates.values()))),
                     "event_rate_min": min(rates.values()), "ppl_per_byte": ppl,
                     "ppl_dense": base, "flops_ratio": api.summarize(g)["flops"]
                     / api.summarize(graph)["flops"]})
        print(f"  delta {th}: events {rows[-1]['event_rate_mean']:.3f}, ppl {ppl:.3f}",
              flush=True)
    return rows


def render(res: dict[str, object]) -> str:
    s = res["sim_speed"]
    lines = ["# Neuromorphic backend: SpiNNaker 2 event simulation", "",
             f"Generated {res['date']} on {res['machine']} by `python -m bench.neuromorphic_bench`.",
             "", "## Simulator speed", "",
             f"egru-lm at paper size (95% pruned, 1.21 M synapses, 148 PEs), {s['tokens']} tokens: "
             f"{s['synops']:,} synaptic events in {s['wall_s']} s = "
             f"**{s['synops_per_s']:.3g} synaptic events per wall second** (goal 1e7; "
             "numba, one thread).", "",
             "## egru-lm on SpiNNaker 2 vs the paper (one inference = 70 tokens)", "",
             "| configuration | chips | PEs | synapses | event rates | time | energy |",
             "|---|---|---|---|---|---|---|"]
    for r in res["paper"]:
        lines.append(f"| {r['config']} | {r['chips']} | {r['pes']} | {r['synapses']:,} | "
                     f"{', '.join(map(str, r['event_rates']))} | {r['time_s'] * 1e3:.1f} ms | "
                     f"{r['energy_j'] * 1e3:.1f} mJ |")
    a = res["a100_egru_lm"]
    lines += [f"| paper, SpiNNaker 2 (measured) | 1 | 150 | | | {PAPER_TIME_S * 1e3:.2f} ms | "
              f"{PAPER_ENERGY_J * 1e3:.1f} mJ |",
              f"| paper, A100 (measured) | | | | | {PAPER_A100_TIME_S * 1e3:.1f} ms | "
              f"{PAPER_A100_ENERGY_J:.2f} J |",
              f"| llmc cost model, A100, 70-token prefill | | | | | "
              f"{a['prefill_s'] * 1e3:.2f} ms | {a['prefill_j'] * 1e3:.2f} mJ |",
              f"| llmc cost model, A100, 70 decode steps (batch 1, one token a step) | | | | | "
              f"{a['decode_s_per_token'] * 70e3:.2f} ms | "
              f"{a['decode_j_per_token'] * 70e3:.2f} mJ |", "",
              "The first row is the calibration: the per-step overhead and the energy per "
              "active cycle were solved from it (llmc/backends/neuromorphic/calibrate.py) and "
              "are stored in llmc/hw/devices/spinnaker2.toml. The other rows are predictions "
              "with those figures unchanged: more synapses add synaptic operations (time and "
              "active energy) but the calibrated per-step overhead dominates the time, so time "
              "barely moves; a second chip doubles the idle power, which dominates the energy. "
              "The cost model's A100 figures are the roofline of the work, as one prefill or "
              "as 70 one-token steps; the measured 19.9 ms and 1.19 J are far above both: a "
              "batch-1 recurrence of small products is bound by kernel launches and a GPU's "
              "idle power, which the roofline does not see.", "",
              "## Event LMs vs llmc-tiny (byte level, held-out pydoc topics)", "",
              "| model | parameters | ppl/byte | event rates (held-out) | SpiNNaker 2 J/token "
              "| A100 J/token | NPU J/token |", "|---|---|---|---|---|---|---|"]
    for r in res["models"]:
        e = r.get("spinnaker2_j_per_token")
        lines.append(f"| {r['model']} | {r['parameters']:,} | {r['ppl_per_byte']:.3f} | "
                     f"{', '.join(f'{x:.3f}' for x in r.get('event_rates_heldout', [])) or '-'} | "
                     f"{f'{e:.2e}' if e else 'n/a (attention)'} | "
                     f"{r['a100_j_per_token']:.2e} | {r['npu_j_per_token']:.2e} |")
    lines += ["", "SpiNNaker 2 per token: simulated over the first 256 held-out bytes, calibrated "
              "cost model (the per-step overhead and idle power included). A100 and NPU: llmc's "
              "cost model, one decode step.", "",
              "## Delta conversion of llmc-tiny (event rate vs perplexity)", "",
              "| threshold | mean event rate | min layer rate | ppl/byte | dense ppl | FLOPs ratio |",
              "|---|---|---|---|---|---|"]
    for r in res["delta"]:
        lines.append(f"| {r['threshold']} | {r['event_rate_mean']:.3f} | "
                     f"{r['event_rate_min']:.3f} | {r['ppl_per_byte']:.3f} | "
                     f"{r['ppl_dense']:.3f} | {r['flops_ratio']:.3f} |")
    lines += ["", f"{res['delta_windows']} held-out windows of {res['delta_seq']} bytes; every "
              "linear over the sequence in delta form (events where an input moved by more than "
              "the threshold since it last sent); attention itself stays dense."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    t0 = time.time()
    res: dict[str, object] = {"date": _dt.date.today().isoformat(),
                              "machine": f"{platform.machine()} ({platform.processor() or 'cpu'})"}
    res["sim_speed"] = sim_speed(70 if args.quick else 280)
    print(f"sim: {res['sim_speed']['synops_per_s']:.3g} synops/s", flush=True)
    res["paper"] = paper_rows()
    res["a100_egru_lm"] = cost_model("egru-lm", "a100", 70)
    models = []
    for m in ("egru-tiny", "spikegpt-tiny"):
        row = event_model_row(m, 256)
        row["a100_j_per_token"] = cost_model(m, "a100", 64)["decode_j_per_token"]
        row["npu_j_per_token"] = cost_model(m, "npu", 64)["decode_j_per_token"]
        models.append(row)
    card = json.loads((WEIGHTS / "llmc-tiny.json").read_text())
    models.append({"model": "llmc-tiny", "parameters": card["parameters"],
                   "ppl_per_byte": card["heldout_eval"]["ppl_per_byte"],
                   "a100_j_per_token": cost_model("llmc-tiny", "a100", 64)["decode_j_per_token"],
                   "npu_j_per_token": cost_model("llmc-tiny", "npu", 64)["decode_j_per_token"]})
    res["models"] = models
    res["delta_windows"], res["delta_seq"] = (4, 64) if args.quick else (16, 128)
    res["delta"] = delta_sweep([0.0, 0.03, 0.1, 0.3, 1.0, 3.0], res["delta_windows"],
                               res["delta_seq"])
    res["wall_s"] = round(time.time() - t0, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "neuromorphic.json").write_text(json.dumps(res, indent=2, default=float) + "\n")
    (RESULTS / "neuromorphic.md").write_text(render(res))
    print(render(res))
    assert all(math.isfinite(float(r["ppl_per_byte"])) for r in res["delta"])


if __name__ == "__main__":
    main(sys.argv[1:])
