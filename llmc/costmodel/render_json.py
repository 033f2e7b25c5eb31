"""report.json: stable keys, rounded numbers, no timestamps.

Top level: model, target, device, device_description, batch, prompt, output,
context, seq_len (= prompt, the compile artifact's key), tp, precision,
params_total, params_active, weight_bytes, weight_bytes_per_device,
kv_bytes_per_token, kv_bytes_per_request, max_concurrent_requests,
context_switch_s, memory, memory_plan (a compile's plans per phase, else
null), prefill, decode, end_to_end, long_context, notes, sources,
schema_version. Sizes in bytes, times in seconds, energy in joules.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from llmc.costmodel.roofline import OpTiming, PhaseResult

if TYPE_CHECKING:
    from llmc.costmodel.report import Report

TOP_OPS = 30


def num(x: float | int | None) -> float | int | None:
    """Whole numbers exactly (byte and FLOP counts), others to 6 significant
    digits (stable across platforms); inf/nan as None."""
    if x is None or isinstance(x, bool) or isinstance(x, int):
        return x
    if not math.isfinite(x):
        return None
    if x == int(x) and abs(x) < 2 ** 53:
        return int(x)
    return float(f"{x:.6g}")


def group(o: OpTiming) -> str:
    """The breakdown bucket of an op."""
    r = o.rec
    if r.kind == "comm":
        return "tp all-reduce"
    if r.kind == "attention":  # attention, its tiled and integer forms
        return "attention"
    if r.op == "index_copy":
        return "kv write"
    if r.kind == "moe":  # moe_ffn, int_moe_ffn
        return "ffn (experts)"
    if r.kind == "linalg":  # linear, matmul and the forms the passes leave
        for key, name in ((".attn", "attn proj"), (".ffn", "ffn"), (".mlp", "ffn"),
                          ("lm_head", "lm head")):
            if key in r.loc:
                return name
        return "matmul"
    if r.kind == "norm":
        return "norm"
    if r.op == "embedding":
        return "embedding"
    return "elementwise"


def by_group(ph: PhaseResult) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for o in ph.ops:
        g = out.setdefault(group(o), {"time_s": 0.0, "roofline_s": 0.0, "energy_j": 0.0,
                                       "flops": 0.0, "bytes": 0.0})
        n = o.rec.count
        g["time_s"] += o.time_s * n
        g["roofline_s"] += o.roofline_s * n
        g["energy_j"] += ph.op_energy_j(o) * n * ph.tp
        g["flops"] += o.rec.flops * n * ph.tp
        g["bytes"] += o.rec.bytes * n * ph.tp
    return {k: {kk: num(vv) for kk, vv in v.items()} for k, v in sorted(out.items())}


def op_rows(ph: PhaseResult, top: int = TOP_OPS) -> list[dict[str, Any]]:
    """The ops by total expected time, largest first (per device, count included)."""
    total = ph.time_s or 1.0
    rows = sorted(ph.ops, key=lambda o: (-o.time_s * o.rec.count, o.rec.loc, o.rec.op))
    return [{"op": o.rec.op, "loc": o.rec.loc, "count": o.rec.count,
             "flops": num(o.rec.flops * o.rec.count), "bytes": num(o.rec.bytes * o.rec.count),
             "intensity": num(o.intensity), "bound": o.bound, "unit": o.unit,
             "time_s": num(o.time_s * o.rec.count), "roofline_s": num(o.roofline_s * o.rec.count),
             "energy_j": num(ph.op_energy_j(o) * o.rec.count),
             "share": num(o.time_s * o.rec.count / total)}
            for o in rows[:top]]


def _phase(ph: PhaseResult, w: Any) -> dict[str, Any]:
    t = ph.time_by_bound()
    return {"time_s": num(ph.time_s), "roofline_s": num(ph.roofline_s), "flops": num(ph.flops),
            "bytes": num(ph.bytes), "bound": ph.bound, "energy_j": num(ph.energy_j),
            "power_w": num(ph.power_w), "compute_bound_s": num(t["compute"]),
            "memory_bound_s": num(t["memory"]), "interconnect_s": num(t["interconnect"]),
            "bytes_by_level": {k: num(v) for k, v in sorted(ph.bytes_by_level().items())},
            "weights_level": ph.placement.weights.name, "kv_level": ph.placement.kv.name,
            "nodes": w.nodes, "ops": w.op_counts, "by_group": by_group(ph),
            "kernels": sum(r.count for r in w.records),
            "op_table": op_rows(ph)}


def report_json(r: Report) -> dict[str, Any]:
    pre = _phase(r.prefill, r.prefill_w)
    pre["tokens"] = r.prompt
    out: dict[str, Any] = {
        "schema_version": 1, "model": r.model, "target": r.target, "device": r.device.name,
        "device_description": r.device.description, "batch": r.batch, "prompt": r.prompt,
        "seq_len": r.prompt, "output": r.output, "context": r.context, "tp": r.tp,
        "precision": r.precision.to_json(), "params_total": r.prefill_w.params_total,
        "params_active": r.prefill_w.params_active, "weight_bytes": num(r.prefill_w.weight_bytes),
        "weight_bytes_per_device": num(r.memory.weight_bytes),
        "kv_bytes_per_token": num(r.kv_bytes_per_token),
        "kv_bytes_per_request": num(None if r.kv_bytes_per_token is None
                                    else r.kv_bytes_per_token * r.context),
        "max_concurrent_requests": r.max_concurrent_requests,
        "context_switch_s": num(r.context_switch_s),
        "memory": {"capacity_bytes": num(r.memory.capacity_bytes),
                   "reserved_bytes": num(r.memory.reserved_bytes),
                   "kv_capacity_bytes": num(r.memory.kv_capacity_bytes),
                   "fits": r.memory.fits, "missing_bytes": num(r.memory.missing_bytes)},
        "memory_plan": memory_plan_json(r),
        "prefill": pre, "decode": None, "notes": list(r.notes), "sources": sources(r),
    }
    ttft, e2e_e = r.prefill.time_s, r.prefill.energy_j
    if r.decode is not None:
        d = _phase(r.decode, r.decode_w)
        step = r.decode.time_s
        d.update(context=r.context, time_per_token_s=num(step),
                 tokens_per_s=num(r.batch / step if step else None),
                 energy_j_per_token=num(r.decode.energy_j / r.batch))
        d.pop("time_s")
        out["decode"] = d
        ttft, e2e_e = ttft + r.output * step, e2e_e + r.output * r.decode.energy_j
    out["end_to_end"] = {"time_s": num(ttft), "energy_j": num(e2e_e), "output_tokens": r.output}
    out["long_context"] = None if r.longctx is None else long_context_json(r.longctx)
    return out


def memory_plan_json(r: Report) -> dict[str, Any] | None:
    """Per phase: the arena, its lower bound, the method, whether it is proved
    optimal and its gap, each static region's bytes and the precision planned
    at (plan.json holds every buffer)."""
    if r.memory_plan is None:
        return None
    return {ph: {k: p[k] for k in ("arena_bytes", "lower_bound_bytes", "ratio", "method",
                                   "optimal", "gap", "precision") if k in p}
            | {"static": {k: v["bytes"] for k, v in p["static"]["regions"].items()}}
            for ph, p in r.memory_plan.plans.items()}


def long_context_json(lc: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "precision": lc.precision.to_json(), "kv_bytes_per_token": num(lc.kv_bytes_per_token),
        "weight_bytes": num(lc.weight_bytes), "kv_capacity_bytes": num(lc.kv_capacity_bytes),
        "fits": lc.fits, "batch": lc.batch, "tp": lc.tp,
        "points": [{k: num(v) for k, v in p.to_json().items()} for p in lc.points],
        "crossovers": {k: num(v) for k, v in lc.crossovers.items()},
        "formulas": dict(lc.formulas)}
    if lc.compressed is not None:
        d["compressed"] = long_context_json(lc.compressed)
    return d


def sources(r: Report) -> dict[str, str]:
    """Where each device figure the report used comes from."""
    dev = r.device
    out = {f"compute.{k}": u.source for k, u in dev.compute.items()}
    out.update({f"compute.{k}.energy": u.energy_source for k, u in dev.compute.items()})
    for m in dev.memory:
        out[f"memory.{m.name}"] = m.source
        if m.energy_source:
            out[f"memory.{m.name}.energy"] = m.energy_source
    out.update({f"efficiency.{k}": f.source for k, f in dev.efficiency.items()})
    out.update({"power.tdp_w": dev.tdp_w.source, "power.idle_w": dev.idle_w.source,
                "reserved_bytes": dev.reserved_bytes.source})
    for role, link in (("scale_up", dev.scale_up), ("host", dev.host_link)):
        if link is not None:
            out[f"links.{role}"] = f"{link.name}: {link.source}"
    return dict(sorted(out.items()))
