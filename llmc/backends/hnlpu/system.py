"""The HNLPU system model: area, power, energy per token, throughput and NRE
from counted structures, calibrated once on the paper's gpt-oss-120b system.

    work = count_workload(decode_graph)          # what the decode step hardwires and runs
    rep = system_report(work)                   # {"decode.tokens_per_s": ..., "area_mm2": ...}

What is counted (from the decode graph, through the op registry's `gemms`):
hardwired weights and neurons (every linear layer's matrix, every expert of
a MoE, the LM head; the embedding is a lookup, not hardwired), the weights a
token activates (top-k experts only), attention MACs per token at the
compiled context, K/V bytes per token, layers. The constants
(llmc/hw/data/hnlpu_system.toml) are the paper's per-chip table; four are
calibrated once on its gpt-oss-120b operating point (Liu et al. 2025):

* HN area per weight (with the Yosys-fitted neuron/weight ratio): the chips
  a model needs are its HN-array area over one chip's HN array (573.16 mm2);
* the VEX's attention MACs per cycle per chip: throughput is the attention
  bound (the bit-serial HN arrays take act_bits + 1 cycles per token and
  stage, far faster);
* HN energy per activated weight and VEX energy per attention MAC; the
  attention buffer, interconnect, HBM PHY and the rest of the 6.9 kW system
  are static per chip.

NRE: one shared set of 60 masks plus 10 metal-embedding masks per chip
(their cost derived from the paper's $6B straightforward / 112x figures)
plus engineering (calibrated on the paper's low NRE).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llmc.ir import Graph
from llmc.ir.ops import get_op

DATA = Path(__file__).resolve().parents[2] / "hw" / "data" / "hnlpu_system.toml"


@dataclass(frozen=True)
class Workload:
    """What one decode token of a model needs from an HNLPU."""

    model: str
    context: int
    hardwired_weights: int     # every matmul weight (all experts, LM head)
    neurons: int               # output rows of those matrices
    active_weights: int        # weights one token multiplies (MACs)
    attention_macs: int        # q k^T and p v MACs per token at `context`
    kv_bytes_per_token: int    # K and V of one token, all layers
    layers: int
    max_fan_in: int            # the widest neuron (inputs of one output)


def _logical_shape(node_input: Any) -> tuple[int, ...]:
    t = node_input.type
    shape = tuple(t.shape)
    if t.layout and str(t.layout).startswith("int4x2"):
        shape = (*shape[:-1], shape[-1] * 2)
    return shape


def count_workload(graph: Graph, model: str = "", kv_bytes: int = 1) -> Workload:
    """Count a decode graph's hardwired matrices and per-token work."""
    weights = neurons = active = attn = layers = fan_in = 0
    for node in graph.nodes:
        op = get_op(node.op) if node.op not in ("input", "param") else None
        if op is None or op.gemms is None:
            continue
        products = [g for g in op.gemms(node) if hasattr(g, "k")]
        if op.kind == "attention":
            layers += 1
            attn += sum(g.m * g.n * g.k * g.count for g in products)
            continue
        active += sum(g.m * g.n * g.k * g.count for g in products)
        fan_in = max(fan_in, node.inputs[0].type.shape[-1])
        for v in node.inputs[1:]:
            if v.node.op != "param" or v.type.rank < 2 or v.node.name.endswith(".gscale"):
                continue  # activations, biases, group scales
            shape = _logical_shape(v)
            weights += math.prod(shape)
            neurons += math.prod(shape[:-1])
    kv = sum(n.type.shape[1] * n.type.shape[3] for n in graph.inputs
             if n.name.startswith(("k_cache", "v_cache")) and n.type.rank == 4) * kv_bytes
    context = max((n.type.shape[2] for n in graph.inputs
                   if n.name.startswith("k_cache") and n.type.rank == 4), default=0)
    name = model or graph.name.removesuffix("_decode")
    return Workload(name, context, weights, neurons, active, attn, kv, layers, fan_in)


def constants() -> dict[str, Any]:
    """system.toml with every {value, source} pair read as its value."""
    raw = tomllib.loads(DATA.read_text())

    def val(x: Any) -> Any:
        return x["value"] if isinstance(x, dict) and "value" in x else x

    return {sec: {k: val(v) for k, v in body.items()} for sec, body in raw.items()}


@dataclass(frozen=True)
class Calibration:
    """The four calibrated figures (see the module docstring)."""

    mm2_per_weight: float
    vex_macs_per_cycle: float
    hn_j_per_weight: float
    vex_j_per_mac: float
    other_w_per_chip: float


def calibration_workload(c: dict[str, Any] | None = None) -> Workload:
    """The calibration model's counts as system.toml records them."""
    cal = (c or constants())["calibration"]
    return Workload(cal["model"], cal["context"], *(cal[f] for f in (
        "hardwired_weights", "neurons", "active_weights", "attention_macs",
        "kv_bytes_per_token", "layers", "max_fan_in")))


def calibrate(cal_work: Workload | None = None, c: dict[str, Any] | None = None
              ) -> Calibration:
    """Fit the calibrated figures on the paper's system running `cal_work`
    (default: the recorded gpt-oss-120b counts at 2K context)."""
    c = c or constants()
    cal_work = cal_work or calibration_workload(c)
    cal, chip = c["calibration"], c["chip"]
    chips, tps = cal["chips"], cal["tokens_per_s"]
    eq = cal_work.hardwired_weights + c["area"]["neuron_per_weight"] * cal_work.neurons
    chip_w = sum(chip[k] for k in ("hn_array_w", "attention_buffer_w", "vex_w",
                                   "interconnect_w", "hbm_phy_w"))
    return Calibration(
        mm2_per_weight=chips * chip["hn_array_mm2"] / eq,
        vex_macs_per_cycle=cal_work.attention_macs * tps / (chips * chip["clock_hz"]),
        hn_j_per_weight=chips * chip["hn_array_w"] / (tps * cal_work.active_weights),
        vex_j_per_mac=chips * chip["vex_w"] / (tps * cal_work.attention_macs),
        other_w_per_chip=(chip["system_w"] - chips * chip_w) / chips,
    )


def system_report(work: Workload, cal: Calibration, c: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    """The system a model needs and what it does: the report's keys
    (decode.tokens_per_s, decode.energy_j_per_token, area_mm2, nre_usd) and
    the breakdown behind them."""
    c = c or constants()
    chip, nre = c["chip"], c["nre"]
    f = chip["clock_hz"]
    eq = work.hardwired_weights + c["area"]["neuron_per_weight"] * work.neurons
    hn_mm2 = eq * cal.mm2_per_weight
    chips = max(1, math.ceil(hn_mm2 / chip["hn_array_mm2"] - 1e-9))
    chip_mm2 = sum(chip[k] for k in ("hn_array_mm2", "attention_buffer_mm2", "vex_mm2",
                                     "interconnect_mm2", "hbm_phy_mm2"))
    hn_cycles = chip["act_bits"] + 1            # llmc.rtl.hn: bit planes + the pipeline
    bounds = {
        "vex_attention": chips * cal.vex_macs_per_cycle * f / max(work.attention_macs, 1),
        "hn_arrays": f / hn_cycles,
    }
    tps = min(bounds.values())
    static_w = chips * (chip["attention_buffer_w"] + chip["interconnect_w"]
                        + chip["hbm_phy_w"] + cal.other_w_per_chip)
    hn_w = tps * work.active_weights * cal.hn_j_per_weight
    vex_w = tps * work.attention_macs * cal.vex_j_per_mac
    power = static_w + hn_w + vex_w
    concurrent = chip["pipeline_stages_per_layer"] * work.layers
    kv_total = concurrent * work.context * work.kv_bytes_per_token
    kv_on_chip = chips * chip["attention_buffer_bytes"]
    unique = nre["masks_per_chip"] - nre["shared_masks"]
    cal_chips = c["calibration"]["chips"]
    unique_usd = (nre["masks_usd"] - nre["full_set_usd"]) / (cal_chips * unique - unique)
    shared_usd = nre["full_set_usd"] - unique * unique_usd
    masks = shared_usd + chips * unique * unique_usd
    return {
        "model": work.model,
        "context": work.context,
        "chips": chips,
        "decode.tokens_per_s": tps,
        "decode.energy_j_per_token": power / tps,
        "decode.tokens_per_j": tps / power,
        "area_mm2": chips * chip_mm2,
        "nre_usd": masks + nre["engineering_usd"],
        "power_w": power,
        "power_breakdown_w": {"hn_arrays": hn_w, "vex": vex_w, "static": static_w},
        "bound": min(bounds, key=bounds.get),
        "bounds_tokens_per_s": bounds,
        "hn_array_mm2_needed": hn_mm2,
        "hn_cycles_per_token_per_stage": hn_cycles,
        "concurrent_sequences": concurrent,
        "kv_bytes": kv_total,
        "kv_on_chip_fraction": min(1.0, kv_on_chip / kv_total) if kv_total else 1.0,
        "masks_usd": masks,
        "workload": asdict(work),
    }


def paper_point() -> dict[str, float]:
    """The paper's figures for its calibration model, in the report's keys."""
    cal = constants()["calibration"]
    return {"decode.tokens_per_s": cal["tokens_per_s"],
            "decode.energy_j_per_token": 1.0 / cal["tokens_per_j"],
            "area_mm2": cal["area_mm2"], "nre_usd": cal["nre_usd_low"],
            "nre_usd_high": cal["nre_usd_high"], "chips": cal["chips"]}
