"""The public Python API (re-exported by `llmc`): what the CLI calls."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llmc import __version__
from llmc.backends import REFERENCE, CompileOptions, RunResult, get_backend, load_backend
from llmc.backends.artifact import MANIFEST, manifest_text
from llmc.errors import LlmcError, UnsupportedOpError, UsageError
from llmc.frontend.export import export_program, to_ir
from llmc.frontend.loader import LoadedModel, load_model
from llmc.frontend.zoo.decoder import DecodeGraph, PrefillGraph, example_inputs
from llmc.hw.targets import Target, get_target
from llmc.ir import Graph, print_graph, verify
from llmc.ir import interpret as _interpret
from llmc.ir.cost import graph_cost, op_counts, param_count
from llmc.outdir import check_dest, write_dir
from llmc.passes.manager import PassContext, family, get_pass, get_stage, run_pipeline

PHASES = ("prefill", "decode")

# What a model class traced through file.py:factory goes through after conversion:
# transformers writes by hand (RMSNorm, GELU, Conv1D, repeat_kv, masks and RoPE
# tables computed at run time) what llmc's zoo writes as ops and tables, which
# every later pass (quantization above all) reads. Zoo and HF-directory graphs
# are llmc's own decoder: already in these forms.
FACTORY_RAISES = ("simplify", "fold-constants", "raise-norm", "raise-act", "raise-linear",
                  "raise-attention", "simplify")


@dataclass
class Traced:
    """A traced model: its IR graph, the example inputs it was traced with,
    and how long each stage took (seconds)."""

    model: LoadedModel
    phase: str
    graph: Graph
    inputs: tuple[np.ndarray, ...]
    timings: dict[str, float] = field(default_factory=dict)


def default_seq_len(loaded: LoadedModel, seq_len: int | None) -> int:
    if seq_len is not None:
        return seq_len
    return min(128, loaded.config.max_seq_len) if loaded.config else 128


def _check_sizes(**sizes: int | None) -> None:
    for name, v in sizes.items():
        if v is not None and (not isinstance(v, int) or v <= 0):
            raise UsageError(f"{name.replace('_', '-')} must be a positive integer, got {v!r}")


def trace(model: str | LoadedModel, phase: str = "prefill", batch: int = 1,
          seq_len: int | None = None,
          cache_len: int | None = None, weights: str = "auto") -> Traced:
    """torch.export `model` and convert it to a verified IR graph.

    prefill: `seq_len` prompt tokens. decode: one new token at position
    seq_len-1 with a KV cache of `cache_len` (default seq_len) slots.
    """
    if phase not in PHASES:
        raise UsageError(f"unknown phase {phase!r}; expected prefill or decode")
    _check_sizes(batch=batch, seq_len=seq_len, cache_len=cache_len)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, weights)
    t0 = time.perf_counter()
    if loaded.is_event:  # recurrent event LMs write their IR directly (event_lm.to_graph)
        seq_len = seq_len or 64
        graph = loaded.module.to_graph(phase, batch, seq_len)
        verify(graph)
        return Traced(loaded, phase, graph, loaded.module.example_inputs(phase, batch, seq_len),
                      {"export_s": 0.0, "convert_s": time.perf_counter() - t0})
    if loaded.config is None:
        module, args, names = loaded.module, loaded.example_args or (), None
        if factory_shape(loaded, batch, seq_len) is not None:
            names = ["tokens"]  # (B, T) token ids: a prefill, as the passes name it
        gname = loaded.name
    else:
        cfg = loaded.config
        seq_len = default_seq_len(loaded, seq_len)
        if seq_len > cfg.max_seq_len or (cache_len or 0) > cfg.max_seq_len:
            raise UsageError(f"{cfg.name}: seq-len {max(seq_len, cache_len or 0)} exceeds its "
                             f"context of {cfg.max_seq_len}")
        if cache_len is not None and cache_len < seq_len:
            raise UsageError(f"cache-len {cache_len} is shorter than seq-len {seq_len}")
        device = "meta" if loaded.is_meta else "cpu"
        args = example_inputs(cfg, phase, batch, seq_len, device, cache_len)
        wrapper = PrefillGraph if phase == "prefill" else DecodeGraph
        module = wrapper(loaded.module)
        names = ["tokens"] if phase == "prefill" else ["tokens", "pos"] + [
            f"{kv}_cache_{i}" for i in range(cfg.n_layers) for kv in "kv"]
        gname = f"{cfg.name}_{phase}"
    ep = export_program(module, args)
    t1 = time.perf_counter()
    graph = to_ir(ep, gname, names, prefix="model." if loaded.config else "")
    graph = get_pass("raise-moe")(graph)  # transformers' expert routing -> moe_ffn
    if loaded.config is None:
        graph = run_pipeline(graph, FACTORY_RAISES, check=False)
    t2 = time.perf_counter()
    verify(graph)
    t3 = time.perf_counter()
    inputs = tuple(a.detach().numpy() if a.device.type != "meta" else np.empty(0) for a in args)
    return Traced(loaded, phase, graph, inputs,
                  {"export_s": t1 - t0, "convert_s": t2 - t1, "verify_s": t3 - t2})


def factory_shape(loaded: LoadedModel, batch: int = 1, seq_len: int | None = None
                  ) -> tuple[int, int] | None:
    """(B, T) of a factory whose one example input is (B, T) token ids (None
    for any other model). A factory is traced once, at its example's shape:
    a `seq_len` (or a `batch` other than 1, the default) that differs is refused."""
    args = loaded.example_args or ()
    if loaded.config is not None or len(args) != 1 or args[0].is_floating_point() \
            or args[0].dim() != 2:
        return None
    b, t = (int(d) for d in args[0].shape)
    wrong = [f"{flag} {v}" for flag, v, have in (("--batch", batch, b), ("--seq-len", seq_len, t))
             if v is not None and v != have and not (flag == "--batch" and v == 1)]
    if wrong:
        raise UsageError(f"{loaded.source or loaded.name} is traced at its example's shape, "
                         f"batch {b} x {t} tokens; {' and '.join(wrong)} cannot apply (change "
                         f"the example its factory returns)")
    return b, t


def interpret(graph: Graph, inputs: Sequence[np.ndarray] | Mapping[str, np.ndarray]
              ) -> list[np.ndarray]:
    """Run a graph in the reference interpreter (the golden model)."""
    return _interpret(graph, inputs)


def summarize(graph: Graph) -> dict[str, Any]:
    """Op counts, parameter counts, and FLOPs/bytes from the op registry."""
    params = param_count(graph)
    cost = graph_cost(graph)
    return {"ops": op_counts(graph), "nodes": len(graph.nodes), "params_total": params.total,
            "params_active": params.active, "weight_bytes": params.nbytes,
            "flops": cost.flops, "bytes": cost.bytes}


@dataclass
class Compiled:
    out_dir: Path
    report: dict[str, Any]
    graphs: dict[str, Graph]
    timings: dict[str, float]
    backend: str = REFERENCE
    manifest: dict[str, Any] = field(default_factory=dict)


def pipeline_stages(target: Target, quant: str | None = None, sparsity: str | None = None,
                    attention: str | None = None) -> list[str]:
    """The stages one compile runs on every phase, top to bottom."""
    return [
        *target.pipeline,                                  # fuse-attention, verify
        *([f"sparsity:{sparsity}"] if sparsity else []),   # prunes (plan from prefill)
        *([f"attention:{attention}"] if attention else []),  # sparse / tiled attention
        *([f"quant:{quant}"] if quant else []),            # calibrates on prefill
        *target.schedule,                                  # fuse, verify
    ]


def compile(model: str | LoadedModel, target: str, out_dir: str | os.PathLike[str],
            phase: str = "prefill", batch: int = 1, seq_len: int | None = None,
            weights: str = "auto", progress: Any = None, quant: str | None = None,
            sparsity: str | None = None, attention: str | None = None,
            backend: str | None = None) -> Compiled:
    """Trace both phases, run the target's pipeline, cost them (the report),
    plan memory at the precision the report charges, emit with the target's
    backend, write the artifact directory atomically (built aside, then
    renamed into place) with its manifest.json. `backend` chooses the
    emitter: the target's own family (the default) or "reference" (the IR
    interpreter, which runs any target's graphs)."""
    tgt = get_target(target)
    if phase not in PHASES:
        raise UsageError(f"unknown phase {phase!r}; expected prefill or decode")
    out = check_dest(out_dir, "report.json")
    step = progress or (lambda label: None)
    stages = pipeline_stages(tgt, quant, sparsity, attention)
    for name in stages:
        get_stage(name)  # an unknown stage or a bad argument fails before any work
    if backend not in (None, REFERENCE, tgt.backend):
        raise UsageError(f"--backend {backend}: target {tgt.name} compiles with its "
                         f"{tgt.backend} backend or the {REFERENCE} one")
    backend = load_backend(backend) if backend else get_backend(tgt.backend)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, weights)
    _check_sizes(batch=batch, seq_len=seq_len)
    batch, seq_len = factory_shape(loaded, batch, seq_len) or (batch, seq_len)
    seq_len = default_seq_len(loaded, seq_len)
    options = CompileOptions(tgt.name, phase, batch, seq_len, weights, quant, sparsity,
                             attention)
    graphs, saved, timings = _run_phases(loaded, stages, PassContext(device=tgt.device),
                                         batch, seq_len, step)
    unsupported = backend.unsupported(graphs)
    if unsupported:
        raise UnsupportedOpError(f"the {backend.name} backend cannot render: "
                                 + "; ".join(unsupported))
    from llmc.hw.database import get_device

    graphs, arenas = backend.fit(graphs, get_device(tgt.device))  # row tiles, arena bounds
    step("report")
    from llmc.costmodel import build_report
    from llmc.costmodel.report import PlannedMemory

    rep = build_report(graphs["prefill"], graphs.get("decode"), loaded.config, tgt.name,
                       batch=batch, prompt=seq_len,
                       context=seq_len if "decode" in graphs else None, model=loaded.name,
                       quant=quant)
    step("memory plan")
    t = time.perf_counter()
    # at the element sizes the report charges (its precision), so the two agree
    plans = {ph: plan_memory(g, precision=rep.precision, arena_bytes=arenas.get(ph))
             for ph, g in graphs.items()}
    timings["memplan_s"] = time.perf_counter() - t
    rep.memory_plan = PlannedMemory({ph: p.json for ph, p in plans.items()},
                                    {f"plan_{ph}.png": p.png() for ph, p in plans.items()})
    step(f"backend {backend.name}")
    t = time.perf_counter()
    emitted = backend.emit(graphs, plans, get_device(tgt.device), options)
    timings["backend_s"] = time.perf_counter() - t
    report = rep.to_json()
    for ph, w in saved.items():
        report.setdefault(ph, {})["work_saved"] = w
    step("write")
    files: dict[str, Any] = dict(rep.files())     # report.md/.html/.json, plots, plan pictures
    files.update({
        "model.llmir": print_graph(graphs.get(phase, graphs["prefill"])),
        "report.json": json.dumps(report, indent=2, sort_keys=True) + "\n",
        "plan.json": json.dumps({ph: p.json for ph, p in plans.items()}, indent=2,
                                sort_keys=True) + "\n",
    })
    clash = sorted(set(emitted) & (set(files) | {MANIFEST}))
    if clash:
        raise LlmcError(f"the {backend.name} backend emitted {', '.join(clash)}, which "
                        "compile writes itself")
    files.update(emitted)
    fields = _manifest_fields(loaded, tgt, backend.name, options, graphs)
    # written last: it holds the sha256 of every file written before it
    files[MANIFEST] = lambda path: path.write_text(manifest_text(path.parent, __version__,
                                                                  fields))
    write_dir(out, files, marker="report.json")
    manifest = json.loads((out / MANIFEST).read_text())
    return Compiled(out, report, graphs, timings, backend.name, manifest)


def _run_phases(loaded: LoadedModel, stages: list[str], ctx: PassContext, batch: int,
                seq_len: int, step: Any) -> tuple[dict[str, Graph], dict[str, Any],
                                                  dict[str, float]]:
    """Trace each phase and run `stages` on it, prefill first, sharing `ctx`.
    Returns the graphs, the work sparsity and attention saved per phase
    (registry costs before their first stage vs after their last), timings."""
    graphs: dict[str, Graph] = {}
    timings: dict[str, float] = {}
    marks: dict[str, list[Graph]] = {}  # phase -> [before, after]

    def mark(name: str, before: Graph, after: Graph) -> None:
        if family(name) in ("sparsity", "attention"):
            marks.setdefault(ctx.phase, [before])[1:] = [after]

    for ph in PHASES if loaded.config is not None or loaded.is_event else ("prefill",):
        step(f"trace {ph}")
        traced = trace(loaded, ph, batch, seq_len)
        timings.update({f"{ph}.{k}": v for k, v in traced.timings.items()})
        step(f"passes {ph}")
        t = time.perf_counter()
        ctx.phase = ph
        graphs[ph] = run_pipeline(traced.graph, stages, ctx=ctx, on_stage=mark)
        timings[f"{ph}.passes_s"] = time.perf_counter() - t
    saved = {}
    if marks:
        from llmc.passes.sparsity import work_saved

        saved = {ph: work_saved(before, after) for ph, (before, after) in marks.items()}
    return graphs, saved, timings


def _manifest_fields(loaded: LoadedModel, tgt: Target, backend: str, options: CompileOptions,
                     graphs: Mapping[str, Graph]) -> dict[str, Any]:
    """manifest.json's fields besides the format, the version and the files."""
    shape_only = any(g.shape_only for g in graphs.values())
    generate = None
    if loaded.is_event:  # recurrent: the context is bounded by nothing but the state
        cfg = loaded.module.cfg
        generate = {"batch": options.batch, "prompt_tokens": options.seq_len,
                    "context_tokens": cfg.max_seq_len, "vocab_size": cfg.vocab_size,
                    "tokenizer": "utf-8 bytes"}
    elif loaded.config is not None and "decode" in graphs:
        generate = {"batch": options.batch, "prompt_tokens": options.seq_len,
                    "context_tokens": options.seq_len, "vocab_size": loaded.config.vocab_size,
                    "tokenizer": "utf-8 bytes"}
    return {"backend": backend, "target": tgt.name, "target_backend": tgt.backend,
            "device": tgt.device,
            "model": {"name": loaded.name, "sha256": model_sha256(loaded),
                      "shape_only": shape_only},
            "options": options.to_json(), "options_sha256": options.sha256(),
            "generate": generate}


def model_sha256(loaded: LoadedModel) -> str:
    """sha256 of a model: its config and, unless it is shape-only, every
    weight (name, dtype, shape, bytes) in name order."""
    h = hashlib.sha256()
    if loaded.config is not None or loaded.is_event:
        cfg = loaded.config if loaded.config is not None else loaded.module.cfg
        h.update(json.dumps(cfg.to_dict(), sort_keys=True).encode())
    else:
        h.update(f"{type(loaded.module).__module__}.{type(loaded.module).__qualname__}".encode())
    if loaded.is_meta:
        return h.hexdigest()
    for name, t in sorted(loaded.module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}:".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@dataclass
class Generated:
    """What `run` gave: the prompt and generated token ids, the generated
    text (byte-level: ids below 256 are UTF-8 bytes), and the backend's
    result (timings; cycles and energy where it knows them)."""

    artifact: Path
    backend: str
    target: str
    prompt_tokens: list[int]
    tokens: list[int]
    text: str
    result: RunResult


def run(artifact: str | os.PathLike[str], prompt: str | Sequence[int],
        max_new_tokens: int = 32, on_token: Callable[[int], None] | None = None,
        target: str | None = None) -> Generated:
    """Generate `max_new_tokens` tokens greedily from `prompt` (text, as UTF-8
    bytes, or token ids) with a compiled artifact, on the backend that built
    it; `on_token(id)` is called after each. Refuses (UsageError) a directory
    that is not an artifact, one built by another llmc version, one changed
    since compile, one built for another target than `target` (when given),
    a shape-only model, and a prompt or token count that does not fit;
    nothing is written."""
    from llmc.backends.artifact import open_artifact
    from llmc.backends.generate import Shapes, check_request

    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) \
            or max_new_tokens <= 0:
        raise UsageError(f"the number of tokens to generate must be a positive integer, "
                         f"got {max_new_tokens!r}")
    art = open_artifact(artifact, __version__)
    m = art.manifest
    if target is not None and m.get("target") != target:
        raise UsageError(f"{art.path} was built for target {m.get('target')}, not {target}")
    if m.get("model", {}).get("shape_only"):
        raise UsageError(f"{art.path} holds a shape-only model (compiled without weights): it "
                         "has a report but cannot run; compile it with weights (--weights auto "
                         "for a model that ships them, or --weights random)")
    if not m.get("generate"):
        raise UsageError(f"{art.path} holds a model without a decode phase; llmc run generates "
                         "text with zoo and HF-style language models")
    ids = _tokenize(prompt)
    check_request(Shapes.from_json(m["generate"]), ids, max_new_tokens)
    result = load_backend(art.backend).run(art, ids, max_new_tokens, on_token)
    return Generated(art.path, art.backend, m.get("target", "?"), ids, list(result.tokens),
                     detokenize(result.tokens), result)


def _tokenize(prompt: str | Sequence[int]) -> list[int]:
    if isinstance(prompt, str):
        return list(prompt.encode("utf-8"))
    if isinstance(prompt, bytes):
        return list(prompt)
    ids = list(prompt)
    if not all(isinstance(t, int | np.integer) and not isinstance(t, bool) for t in ids):
        raise UsageError("a prompt is text or a sequence of integer token ids")
    return [int(t) for t in ids]


def detokenize(ids: Sequence[int]) -> str:
    """Byte-level text of token ids: ids below 256 are UTF-8 bytes (an
    incomplete sequence shows as U+FFFD), others as <id>."""
    out, run_ = [], bytearray()
    for t in ids:
        if t < 256:
            run_.append(t)
            continue
        out.append(run_.decode("utf-8", errors="replace") + f"<{t}>")
        run_ = bytearray()
    return "".join(out) + run_.decode("utf-8", errors="replace")


@dataclass
class MemoryPlan:
    """A memory plan of one graph: the activation arena's problem and plan,
    its JSON form (plan.json: buffers, static regions, the precision planned
    at) and its picture."""

    problem: Any
    plan: Any
    json: dict[str, Any]

    @property
    def precision(self) -> str:
        """The element sizes planned at, in words."""
        return self.json["precision"]["describe"]

    def png(self) -> bytes:
        from llmc.passes.memplan import plan_png

        return plan_png(self.problem, self.plan)

    def plot(self, path: Path) -> None:
        Path(path).write_bytes(self.png())


def plan_memory(graph: Graph, method: str = "auto", arena_bytes: int | None = None,
                time_limit_s: float = 10.0, *, precision: Any = None,
                target: str | None = None, banks: str | None = None) -> MemoryPlan:
    """Plan every intermediate of `graph` into one arena, checked before it is
    returned; weights, constants, the KV cache and the inputs are laid out in
    their own regions (``json["static"]``). An `arena_bytes` below what the
    graph needs gets a plan with spills (``json["spills"]``) where `method`
    is "auto" or "cpsat".

    Element sizes are the cost model's (`llmc.costmodel.workload.retype`):
    `precision` (a `llmc.costmodel.Precision`, e.g. a Report's) plans at it;
    `target` plans at the precision the cost model charges `graph` on that
    target (a float32 trace at its device's default, bf16 on GPUs; a graph
    whose dtypes a pass chose, as it stands); neither plans the graph's dtypes
    as they stand (a trace's float32). ``json["precision"]`` says which.
    `banks` ("start" or "within", `llmc.passes.memplan.BANK_RULES`) puts
    every buffer under that bank rule, banks as the `target` device's
    scratchpad has them."""
    from llmc.passes.memplan import check_plan, plan, plan_to_json, with_banks
    from llmc.passes.memplan.liveness import liveness
    from llmc.passes.memplan.static import static_layout

    sized, how = at_plan_precision(graph, precision, target)
    problem = liveness(sized).problem
    if banks is not None:
        from llmc.hw.database import get_device
        from llmc.passes.memplan import bank_bytes_of

        if target is None:
            raise UsageError("bank rules need a target whose device has a banked scratchpad")
        problem = with_banks(problem, bank_bytes_of(get_device(target)), banks)
    p = plan(problem, method=method, arena_bytes=arena_bytes, time_limit_s=time_limit_s)
    check_plan(problem, p, arena_bytes)
    data = plan_to_json(problem, p, timing=False)
    data["static"] = static_layout(sized, problem.alignment).to_json()
    data["precision"] = how
    return MemoryPlan(problem, p, data)


def at_plan_precision(graph: Graph, precision: Any = None, target: str | None = None
                      ) -> tuple[Graph, dict[str, Any]]:
    """`graph` re-typed to the element sizes the cost model charges, and the
    precision as plan.json records it."""
    from llmc.costmodel.workload import held_dtypes, retype

    if precision is None and target is not None:
        from llmc.costmodel.report import costed_precision
        from llmc.hw.database import get_device

        precision = costed_precision(None, get_device(target), [graph])[0]
    if precision is None:
        held = held_dtypes(graph)
        words = ", ".join(f"{k} {v}" for k, v in (("weights", held["weight"]),
                                                 ("KV cache", held["kv"]),
                                                 ("activations", held["act"])) if v)
        return graph, {"spec": "as-is", "as_is": True, **held,
                       "describe": f"the graph's own dtypes ({words}); no target given"}
    return retype(graph, precision), precision.to_json() | {"describe": precision.describe()}


def torch_reference(traced: Traced) -> list[np.ndarray]:
    """Run the traced module in PyTorch eager on the same inputs."""
    loaded = traced.model
    module = loaded.module if loaded.config is None else (
        PrefillGraph if traced.phase == "prefill" else DecodeGraph)(loaded.module)
    with torch.no_grad():
        out = module(*[torch.from_numpy(x) for x in traced.inputs])
    out = out if isinstance(out, tuple | list) else (out,)
    return [o.numpy() for o in out]


def quantize(model: str | LoadedModel | Traced | Graph, scheme: Any, calib_data: Any = None, *,
             phase: str = "prefill", batch: int = 1, seq_len: int | None = None,
             weights: str = "auto") -> Graph:
    """`llmc.quantize`: a model (zoo name, LoadedModel, Traced or Graph) quantized
    under `scheme` (a name or a llmc.passes.quant.Scheme); returns the quantized
    Graph of `phase`. Calibration runs on the model's prefill graph at the
    calibration windows' length; a decode graph is calibrated through it."""
    from llmc.passes.quant import get_scheme
    from llmc.passes.quant.calibrate import Calibration
    from llmc.passes.quant.pipeline import apply, prepare

    sch = get_scheme(scheme)
    if isinstance(model, Graph):
        return apply(model, sch, calib_data)
    if isinstance(model, Traced):
        if model.phase == "prefill":
            return apply(model.graph, sch, calib_data)
        model, phase = model.model, model.phase
    loaded = model if not isinstance(model, str) else load_model(model, weights)
    toks = None if calib_data is None or isinstance(calib_data, Calibration) else \
        np.asarray(calib_data)
    if seq_len is None and toks is not None and toks.ndim == 2 and phase == "prefill":
        seq_len = toks.shape[1]            # trace at the calibration windows' length
    target = trace(loaded, phase, batch=batch, seq_len=seq_len).graph
    if phase == "prefill" or target.shape_only or not sch.needs_calibration or \
            isinstance(calib_data, Calibration):
        return apply(target, sch, calib_data)
    cal_len = toks.shape[-1] if toks is not None and toks.ndim == 2 else seq_len
    prefill = trace(loaded, "prefill", batch=1, seq_len=cal_len).graph
    _, cal = prepare(prefill, sch, toks)
    return apply(target, sch, cal)


def evaluate(model: str | LoadedModel = "llmc-tiny", scheme: Any = None, *,
             seq_len: int | None = None, windows: int | np.ndarray | None = None,
             batch: int | None = None, calib_windows: int = 16, weights: str = "auto",
             float_ppl: float | None = None) -> Any:
    """Perplexity of `model` quantized under `scheme` (None: float only) on
    held-out windows (or the given (n, T + 1) token array), the float
    perplexity, and bytes, as a llmc.passes.quant.evaluate.EvalResult.
    Windows are `seq_len` tokens (default 256), run `batch` at a time
    (default 8); a file.py:factory model runs at its example's shape (B, T),
    the one it is traced at. Calibration uses `calib_windows` windows of the
    *training* split. `float_ppl` skips re-measuring the float model."""
    from llmc.passes.quant import get_scheme
    from llmc.passes.quant.calibrate import default_tokens
    from llmc.passes.quant.evaluate import (
        EvalResult,
        check_byte_level,
        heldout_windows,
        kv_bytes_per_token,
        perplexity,
        weight_bytes,
    )
    from llmc.passes.quant.pipeline import apply

    t0 = time.perf_counter()
    loaded = model if isinstance(model, LoadedModel) else load_model(model, weights)
    if loaded.is_meta:
        raise UsageError(f"{model} has no weights here (shape-only); evaluation needs weights "
                         f"(try --weights random for a smoke test)")
    given = windows if isinstance(windows, np.ndarray) else None
    if loaded.config is None:  # a factory: its traced graph says its shape and vocabulary
        shape = factory_shape(loaded, batch, seq_len)
        if shape is None:
            raise UsageError(f"{model}: llmc eval scores the logits of (B, T) token ids; this "
                             f"factory's example is not one (B, T) integer tensor")
        batch, seq_len = shape
        graph = trace(loaded, "prefill").graph
        vocab = graph.outputs[0].type.shape[-1]          # the logits' last dim
        if given is not None and given.shape[1] != seq_len + 1:
            raise UsageError(f"{model} is traced at {seq_len} tokens: windows must be "
                             f"(n, {seq_len + 1}), got {tuple(given.shape)}")
    else:
        seq_len = seq_len if seq_len is not None else 256
        seq_len = given.shape[1] - 1 if given is not None else seq_len
        vocab, graph = loaded.config.vocab_size, None
    if given is None:
        check_byte_level(str(model), vocab)
        win = heldout_windows(seq_len, windows)
    else:
        win = given
    if len(win) == 0:
        raise UsageError("no evaluation windows")
    if graph is None:
        batch = min(batch if batch is not None else 8, len(win))
        graph = trace(loaded, "prefill", batch=batch, seq_len=seq_len).graph
    fppl = perplexity(graph, win) if float_ppl is None else float_ppl
    qgraph, name = graph, "float"
    if scheme is not None:
        sch = get_scheme(scheme)
        name = sch.name
        calib = default_tokens(graph, calib_windows) if sch.needs_calibration else None
        qgraph = apply(graph, sch, calib)
    ppl = perplexity(qgraph, win) if qgraph is not graph else fppl
    return EvalResult(loaded.name, name, ppl, fppl, weight_bytes(qgraph), weight_bytes(graph),
                      kv_bytes_per_token(qgraph), kv_bytes_per_token(graph), len(win), seq_len,
                      time.perf_counter() - t0, batch)
