"""One sweep point evaluated: the cost model's report and/or the cycle
simulator's decode step, and the silicon area, as one flat row.

`evaluate_chunk` is what every engine runs, in a worker process or a Ray
task: plain dicts in (the points and the text of their device files), plain
dicts out, so a worker needs nothing but llmc installed. A point llmc
refuses (a TP degree that does not divide the heads, a device the simulator
cannot read) is a row with its error, not a failure of the sweep.

The simulator reads the decode step of the model's synthesized IR
(llmc.costmodel.synth, at the point's precision) as a schedule
(llmc.sim.from_ir) on the device's array: it simulates 2 and 3 layers and
counts their difference n_layers - 2 more times, as the cost model does.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from llmc.errors import LlmcError

POINT_COLUMNS = ("hash", "model", "target", "array", "sram_mib", "dram_gbps", "clock_ghz",
                 "quant", "sparsity", "batch", "context", "tp", "prompt", "output", "evaluate")
RESULT_COLUMNS = ("fits", "missing_bytes", "ttft_s", "time_per_token_s", "tokens_per_s",
                  "energy_j_per_token", "tokens_per_j", "decode_bound",
                  "sim_time_per_token_s", "sim_tokens_per_s", "sim_energy_j_per_token",
                  "sim_tokens_per_j", "sim_dram_stall", "area_mm2", "error")
COLUMNS = (*POINT_COLUMNS, *RESULT_COLUMNS, "pareto")


def evaluate_chunk(chunk: dict) -> list[dict]:
    """Rows of `chunk["points"]`; `chunk["devices"]` maps a point's "device"
    (sha256 of its device file) to that file's text."""
    devices = chunk["devices"]
    return [evaluate_point(p, devices[p["device"]]) for p in chunk["points"]]


def evaluate_point(point: dict, device: dict) -> dict:
    """The row of one point (JSON types only, so that a row read back from
    disk equals the row computed)."""
    row: dict[str, Any] = {k: point.get(k) for k in POINT_COLUMNS}
    row.update(dict.fromkeys(RESULT_COLUMNS))
    errors = []
    try:
        from llmc.dse.hardware import load
        from llmc.hw.area import area_mm2

        path, dev = load(point, device)
        row["area_mm2"] = area_mm2(dev)
    except LlmcError as e:
        row["error"] = str(e)
        return _plain(row)
    if point["evaluate"] in ("cost", "both"):
        try:
            row.update(_cost(point, str(path)))
        except LlmcError as e:
            errors.append(str(e))
    if point["evaluate"] in ("sim", "both"):
        try:
            row.update(_sim(point, dev))
        except LlmcError as e:
            errors.append(f"simulator: {e}")
    row["error"] = "; ".join(errors) or None
    return _plain(row)


def _plain(row: dict) -> dict:
    """The row as JSON would give it back (floats, ints, str, None)."""
    return json.loads(json.dumps(row))


def _quant(point: dict, default: str) -> str | None:
    from llmc.dse.spec import quant_text

    return quant_text(point["quant"], point["sparsity"], default)


def _cost(point: dict, device_path: str) -> dict:
    from llmc.costmodel.report import build_report
    from llmc.frontend.zoo.config import get_config
    from llmc.hw.database import load_device_file

    dev = load_device_file(device_path)
    r = build_report(None, None, get_config(point["model"]), device_path, batch=point["batch"],
                     prompt=point["prompt"], output=point["output"], context=point["context"],
                     tp=point["tp"], quant=_quant(point, dev.default_quant), model=point["model"])
    d = r.to_json()["decode"]
    return {"fits": r.memory.fits, "missing_bytes": round(r.memory.missing_bytes),
            "ttft_s": r.to_json()["prefill"]["time_s"], "time_per_token_s": d["time_per_token_s"],
            "tokens_per_s": d["tokens_per_s"], "energy_j_per_token": d["energy_j_per_token"],
            "tokens_per_j": 1 / d["energy_j_per_token"] if d["energy_j_per_token"] else None,
            "decode_bound": d["bound"]}


def _sim(point: dict, dev) -> dict:  # noqa: ANN001 - llmc.hw.device.Device
    from llmc.costmodel.report import costed_precision
    from llmc.costmodel.synth import synth_graph
    from llmc.costmodel.workload import retype
    from llmc.frontend.zoo.config import get_config
    from llmc.sim import from_device, simulate_schedule
    from llmc.sim.from_ir import schedule_from_graph

    cfg = get_config(point["model"])
    p, _ = costed_precision(_quant(point, dev.default_quant), dev, [])
    prompt = point["prompt"] or min(2048, cfg.max_seq_len)
    context = point["context"] or prompt + point["output"]
    hw = from_device(dev)

    def run(n_layers: int):  # noqa: ANN202
        c = dataclasses.replace(cfg, n_layers=n_layers)
        g = synth_graph(c, "decode", point["batch"], 1, context)
        if p.scheme is not None:
            from llmc.passes.quant import apply_scheme

            g = apply_scheme(g, p.scheme)
        g = retype(g, p)
        return simulate_schedule(schedule_from_graph(g), hw)

    if cfg.n_layers <= 3:
        r = run(cfg.n_layers)
        seconds, pj, stall = r.time_s, r.energy_pj, r.stall_cycles / max(r.cycles, 1)
    else:
        two, three = run(2), run(3)
        extra = cfg.n_layers - 2
        seconds = two.time_s + (three.time_s - two.time_s) * extra
        pj = two.energy_pj + (three.energy_pj - two.energy_pj) * extra
        stalls = two.stall_cycles + (three.stall_cycles - two.stall_cycles) * extra
        cycles = two.cycles + (three.cycles - two.cycles) * extra
        stall = stalls / max(cycles, 1)
    joules = pj * 1e-12 / point["batch"]
    return {"sim_time_per_token_s": seconds, "sim_tokens_per_s": point["batch"] / seconds,
            "sim_energy_j_per_token": joules, "sim_tokens_per_j": 1 / joules,
            "sim_dram_stall": stall}
