"""`build_report`: a model on a target, both phases, memory and long context.

Workloads come from the graphs when given (what `llmc compile` traced and
its passes left) and otherwise from the config (`synth_workload`: the zoo
decoder's ops without torch.export). `Report.to_json()` has stable keys
(listed in README.md beside this file); `to_markdown`, `to_html` and
`write(dir)` render it, deterministically. A compile attaches its memory
plans (`PlannedMemory`, planned at the report's precision) and the renderings
carry them too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from llmc.costmodel import formulas as F
from llmc.costmodel.longctx import SWEEP, LongContext, analyze, kv_capacity
from llmc.costmodel.precision import Precision, parse_quant
from llmc.costmodel.roofline import PhaseResult, allreduce_record, run_phase
from llmc.costmodel.synth import synth_workload
from llmc.costmodel.workload import Workload, dtypes_chosen, from_graph, kv_nodes, traced_in_f32
from llmc.errors import UsageError
from llmc.frontend.zoo.config import ModelConfig
from llmc.hw.database import get_device, target_label
from llmc.hw.device import Device
from llmc.ir.dtypes import DType, f32
from llmc.ir.graph import Graph
from llmc.outdir import write_dir

SCHEMA_VERSION = 1


@dataclass
class Memory:
    """Per-device memory budget (bytes)."""

    capacity_bytes: float        # levels that may hold weights, one device
    reserved_bytes: float
    weight_bytes: float          # this device's share
    kv_capacity_bytes: float     # all devices, after weights (< 0: weights do not fit)
    weights_level: str
    kv_level: str

    @property
    def fits(self) -> bool:
        return self.weight_bytes + self.reserved_bytes <= self.capacity_bytes

    @property
    def missing_bytes(self) -> float:
        return max(0.0, self.weight_bytes + self.reserved_bytes - self.capacity_bytes)


@dataclass(frozen=True)
class PlannedMemory:
    """A compile's memory plans as the report shows them: per phase, plan.json's
    form (arena_bytes, lower_bound_bytes, ratio, method, static regions, the
    precision planned at), and the plan pictures by file name."""

    plans: dict[str, dict[str, Any]]
    pictures: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Report:
    """Everything the cost model says about one model on one target."""

    model: str
    target: str
    device: Device
    precision: Precision
    batch: int
    prompt: int
    output: int
    context: int
    tp: int
    prefill_w: Workload
    prefill: PhaseResult
    decode_w: Workload | None
    decode: PhaseResult | None
    memory: Memory
    kv_bytes_per_token: float | None
    longctx: LongContext | None
    config: ModelConfig | None
    notes: list[str] = field(default_factory=list)
    memory_plan: PlannedMemory | None = None

    @property
    def max_concurrent_requests(self) -> int | None:
        if self.kv_bytes_per_token is None:
            return None
        if not self.memory.fits or self.memory.kv_capacity_bytes <= 0:
            return 0
        return math.floor(self.memory.kv_capacity_bytes / (self.kv_bytes_per_token * self.context))

    @property
    def context_switch_s(self) -> float | None:
        link = self.device.host_link
        if self.kv_bytes_per_token is None or link is None:
            return None
        return 2 * self.kv_bytes_per_token * self.context / (link.bytes_per_s * self.tp)

    def to_json(self) -> dict[str, Any]:
        from llmc.costmodel.render_json import report_json

        return report_json(self)

    def to_markdown(self) -> str:
        from llmc.costmodel.render_md import report_md

        return report_md(self)

    def to_html(self) -> str:
        from llmc.costmodel.render_html import report_html

        return report_html(self)

    def plots(self) -> dict[str, bytes]:
        """PNG files by name (roofline, breakdown, context sweep, and the
        memory-plan pictures when a plan is attached)."""
        from llmc.costmodel.plots import report_plots

        return report_plots(self) | (self.memory_plan.pictures if self.memory_plan else {})

    def files(self) -> dict[str, bytes]:
        """Every file of the report by name: report.md/.json/.html and the PNGs."""
        import json

        plots = self.plots()
        return {"report.json": (json.dumps(self.to_json(), indent=2, sort_keys=True)
                                + "\n").encode(),
                "report.md": self.to_markdown().encode(),
                "report.html": _html(self, plots).encode(), **plots}

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write files() as the directory out_dir, atomically; returns the paths."""
        files = self.files()
        out = write_dir(out_dir, files, marker="report.json")
        return [out / name for name in files]


def _html(r: Report, plots: dict[str, bytes]) -> str:
    from llmc.costmodel.render_html import report_html

    return report_html(r, plots)


# ---- building ------------------------------------------------------------------

def _positive(**sizes: int | None) -> None:
    for name, v in sizes.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
            raise UsageError(f"--{name} must be a positive integer, got {v!r}")


def _graph_shape(g: Graph, name: str) -> tuple[int, ...] | None:
    return next((n.type.shape for n in g.inputs if n.name == name), None)


def _check_tp(tp: int, cfg: ModelConfig | None, dev: Device) -> None:
    if tp == 1:
        return
    if cfg is None:
        raise UsageError("--tp needs a model config (heads to split); this model has none")
    if tp > dev.max_tp.value:
        raise UsageError(f"--tp {tp}: {dev.name} connects at most {int(dev.max_tp.value)} "
                         f"devices ({dev.max_tp.source})")
    if dev.scale_up is None:
        raise UsageError(f"--tp {tp}: {dev.name} has no scale-up link")
    if cfg.n_heads % tp:
        raise UsageError(f"--tp {tp} does not divide {cfg.name}'s {cfg.n_heads} attention "
                         f"heads; use a divisor of {cfg.n_heads}")
    if cfg.n_kv_heads % tp and tp % cfg.n_kv_heads:
        raise UsageError(f"--tp {tp} neither divides nor is a multiple of {cfg.name}'s "
                         f"{cfg.n_kv_heads} KV heads")


def costed_precision(quant: str | None, dev: Device, graphs: list[Graph]
                     ) -> tuple[Precision, str]:
    """The precision `graphs` are costed at on `dev` under `quant` (None: the
    device's default for a float32 trace; a graph whose dtypes a pass chose,
    as it stands), and a note saying why. `workload.retype(graph, p)` gives
    the element sizes it charges."""
    chosen = any(dtypes_chosen(g) for g in graphs)
    p = parse_quant(quant, dev.default_quant)
    if p.scheme is not None:
        how = ("the graphs were quantized by it (as `llmc compile --quant` leaves them)"
               if chosen else "its passes ran on the graphs costed here, as `llmc compile "
               "--quant` runs them")
        return p, (f"precision: scheme {p.scheme.name} ({p.scheme.doc}); {how}; what it "
                   f"leaves in float32 is costed at {dev.name}'s default "
                   f"({dev.default_quant})")
    if quant is None and chosen:
        floats = ("float32 tensors (the traced reference precision) at "
                  f"{dev.name}'s default ({dev.default_quant})"
                  if all(traced_in_f32(g) for g in graphs) else
                  "float32 tensors as float32 (the model's parameters are half precision: "
                  "its float32 is deliberate)")
        return replace(p, as_is=True, spec="as-is", kv=_graph_kv(graphs) or p.kv,
                       fallback=p), (
            f"costed at the graph's own dtypes, {floats}")
    if quant is None:
        return p, (f"precision: {dev.name}'s default ({dev.default_quant}); the traced graph is "
                   f"float32, the reference interpreter's precision, which no one serves in")
    return p, f"precision: --quant {quant} applied analytically to weight, KV and activation bytes"


def _graph_kv(graphs: list[Graph]) -> DType | None:
    """The KV cache's dtype as a graph holds it (a decode graph's cache
    inputs), when it is not the trace's float32."""
    for g in graphs:
        for n in kv_nodes(g):
            if n.op == "input" and n.type.dtype != f32:
                return n.type.dtype
    return None


def _quantize(p: Precision, pre: Graph | None, dec: Graph | None
              ) -> tuple[Graph | None, Graph | None]:
    """Traced float graphs under p's scheme, as `llmc compile --quant` does
    (graphs whose dtypes a pass already chose are taken as quantized)."""
    graphs = {ph: g for ph, g in (("prefill", pre), ("decode", dec)) if g is not None}
    if p.scheme is None or not graphs or any(dtypes_chosen(g) for g in graphs.values()):
        return pre, dec
    from llmc.passes.quant import quantize_graphs

    out = quantize_graphs(graphs, p.scheme)
    return out.get("prefill"), out.get("decode")


def build_report(prefill_graph: Graph | None, decode_graph: Graph | None,
                 config: ModelConfig | None, target_name: str, *, batch: int = 1,
                 prompt: int | None = None, output: int = 256, context: int | None = None,
                 tp: int = 1, quant: str | None = None, model: str | None = None,
                 fuse: bool = True) -> Report:
    """Cost `config` (or the given graphs) on target `target_name`.

    fuse: cost fused kernels (llmc.passes.fusion), as compiled; False costs
    every op on its own, each going to memory (to see what fusion buys).

    prompt: prefill length (default: the prefill graph's, else min(2048, the
    model's context)); context: the KV length a decode step reads (default:
    the decode graph's cache, else prompt + output); output: tokens generated."""
    dev = get_device(target_name)
    _positive(batch=batch, prompt=prompt, output=output, context=context, tp=tp)
    if prefill_graph is None and config is None:
        raise UsageError("build_report needs a prefill graph or a model config")
    _check_tp(tp, config, dev)
    if prefill_graph is not None:
        shape = _graph_shape(prefill_graph, "tokens")
        if shape is not None:
            if (prompt is not None and shape[1] != prompt) or shape[0] != batch:
                raise UsageError(f"prompt {prompt} / batch {batch} do not match the prefill "
                                 f"graph's tokens {list(shape)}")
            prompt = shape[1]
    if decode_graph is not None:
        shape = _graph_shape(decode_graph, "k_cache_0")
        if shape is not None:
            if context is not None and shape[2] != context:
                raise UsageError(f"context {context} does not match the decode graph's KV "
                                 f"cache of {shape[2]} slots")
            context = shape[2]
    if prompt is None:
        prompt = min(2048, config.max_seq_len) if config else 1
    context = context if context is not None else prompt + output
    p, why = costed_precision(quant, dev, [g for g in (prefill_graph, decode_graph) if g])
    notes = [why]
    prefill_graph, decode_graph = _quantize(p, prefill_graph, decode_graph)
    pw = (from_graph(prefill_graph, "prefill", p, batch=batch, tokens=prompt, context=prompt,
                     fuse=fuse)
          if prefill_graph is not None else
          synth_workload(config, "prefill", p, batch=batch, tokens=prompt, context=prompt,
                         fuse=fuse))
    dw = None
    if decode_graph is not None:
        dw = from_graph(decode_graph, "decode", p, batch=batch, tokens=1, context=context,
                        fuse=fuse)
    elif config is not None:
        dw = synth_workload(config, "decode", p, batch=batch, tokens=1, context=context,
                            fuse=fuse)
    return _assemble(config, dev, p, pw, dw, notes, model=model, target=target_name,
                     batch=batch, prompt=prompt, output=output, context=context, tp=tp)


def _assemble(cfg: ModelConfig | None, dev: Device, p: Precision, pw: Workload,
              dw: Workload | None, notes: list[str], *, model: str | None, target: str,
              batch: int, prompt: int, output: int, context: int, tp: int) -> Report:
    kvpt = F.kv_bytes_per_token(cfg, p.kv.bits) if cfg else None
    kv_factor = 1.0
    if cfg and tp > 1:
        kv_factor = max(1, cfg.n_kv_heads // tp) / cfg.n_kv_heads
    act_bits = p.floats.act.bits if p.as_is else p.act.bits  # the residual stream's
    comm = {ph: allreduce_record(cfg.n_layers, batch, toks, cfg.hidden, act_bits)
            for ph, toks in (("prefill", prompt), ("decode", 1))} if cfg and tp > 1 else {}
    per_dev_kv = (kvpt or 0.0) * batch * kv_factor
    pre = run_phase(dev, pw, tp=tp, kv_factor=kv_factor, comm=comm.get("prefill"),
                    kv_resident_bytes=per_dev_kv * prompt)
    dec = None if dw is None else run_phase(dev, dw, tp=tp, kv_factor=kv_factor,
                                            comm=comm.get("decode"),
                                            kv_resident_bytes=per_dev_kv * context)
    w_dev = pw.weight_bytes - pw.weight_bytes_sharded * (1 - 1 / tp)
    holds_w = [m for m in dev.memory if "weights" in m.holds]
    mem = Memory(sum(m.capacity_bytes for m in holds_w), dev.reserved_bytes.value, w_dev,
                 kv_capacity(dev, pw.weight_bytes, tp), pre.placement.weights.name,
                 (dec or pre).placement.kv.name)
    lc = None
    if cfg is not None:
        contexts = tuple(sorted({*SWEEP, context}))
        lc = analyze(cfg, dev, p, tp=tp, batch=batch, contexts=contexts)
    r = Report(model or (cfg.name if cfg else pw.phase), target_label(target), dev, p, batch,
               prompt, output, context, tp, pw, pre, dw, dec, mem, kvpt, lc, cfg, notes)
    r.notes += _notes(r)
    return r


def _notes(r: Report) -> list[str]:
    """What a reader should know about how these figures were made."""
    out = []
    gb = 1e9
    if not r.memory.fits:
        out.append(f"the model does not fit: {r.memory.weight_bytes / gb:,.1f} GB of weights per "
                   f"device + {r.memory.reserved_bytes / gb:,.1f} GB reserved exceed "
                   f"{r.memory.capacity_bytes / gb:,.1f} GB by "
                   f"{r.memory.missing_bytes / gb:,.1f} GB; try --tp or a smaller --quant")
    elif r.kv_bytes_per_token is not None:
        need = r.kv_bytes_per_token * r.context * r.batch
        if need > r.memory.kv_capacity_bytes:
            out.append(f"batch {r.batch} at context {r.context:,} needs {need / gb:,.1f} GB of KV "
                       f"cache but {max(0, r.memory.kv_capacity_bytes) / gb:,.1f} GB are free "
                       f"after weights ({r.max_concurrent_requests} requests fit); the KV "
                       f"would have to be swapped or recomputed")
    if r.config is not None and max(r.prompt, r.context) > r.config.max_seq_len:
        out.append(f"{r.config.name} was trained for {r.config.max_seq_len:,} tokens; longer "
                   f"lengths here are what-if figures from its shapes")
    seen = set()
    for ph in (r.prefill, r.decode):
        for o in ph.ops if ph else []:
            c = o.rec.compute
            if o.rec.kind != "comm" and c != "vector" and o.unit != c and c not in seen:
                seen.add(c)
                out.append(f"{r.device.name} has no {c} units for these ops: they run at its "
                           f"{o.unit} rate")
    for ph in (r.prefill, r.decode):
        if ph and ph.power_w > r.device.tdp_w.value * 1.01:
            out.append(f"{ph.phase} would draw {ph.power_w:,.0f} W, above the "
                       f"{r.device.tdp_w.value:,.0f} W TDP: expect clock throttling")
    if r.tp > 1:
        out.append(f"tensor parallelism over {r.tp} devices charges two ring all-reduces per "
                   f"layer over {r.device.scale_up.name}")
    if any(m.hardwired for m in r.device.memory):
        out.append(f"{r.device.name} hardwires the weights: an instance is built for one model, "
                   f"and weight reads cost no memory traffic")
    return out
