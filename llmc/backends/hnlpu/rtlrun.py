"""`llmc run DIR --simulator icarus|verilator [--waves]`: one decode step in RTL.

Where the artifact holds the whole decode step as one design (rtl/layers.json's
"decode": the units and the controller, llmc.rtl.hn_ctrl), that design runs:
the prompt is prefilled on the interpreter, its KV cache loaded into the
attention buffers, and the first decode token's step is checked bit for bit
(the logits, or a layer's output, and every SwiGLU output) and against the
cycle model (llmc.rtl.hn_sim.decode_schedule). Otherwise, and with
--rtl-layers, the hardwired layers and units run alone:

The prompt is prefilled and one token decoded on the interpreter (the golden
model), recording every hardwired layer's int8 input and int32 output; the
artifact's rtl/ step module is then compiled and its cocotb testbench drives
those inputs into every layer at once and checks each output word bit for
bit and the cycle count against the cycle model (rtl/layers.json). A layer
above the RTL limit is refused, pointing to the analytic report.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmc.backends.artifact import Artifact
from llmc.backends.generate import Shapes, generate
from llmc.backends.hnlpu.attn import attention_nodes, norm_nodes
from llmc.backends.hnlpu.backend import LAYERS_JSON, RTL_DIR, STYLE
from llmc.backends.hnlpu.decode import decode_case, decode_spec
from llmc.backends.hnlpu.ffn import ffn_blocks
from llmc.backends.hnlpu.layers import capture, layer_of, linear_nodes, too_large
from llmc.backends.hnlpu.report import SYSTEM_MD
from llmc.backends.reference.backend import ReferenceBackend
from llmc.errors import UsageError
from llmc.ir import Graph, Node, interpret
from llmc.rtl.hn import generate_step
from llmc.rtl.hn_attn import run_attn
from llmc.rtl.hn_norm import run_norm
from llmc.rtl.hn_sim import DECODE_BUILD_ARGS, HnRun, build_ffn, run_decode, run_ffn, run_hn
from llmc.rtl.runner import build_design
from llmc.rtl.tools import find_simulator


def _decode_values(prefill: Graph, decode: Graph, nodes: list[Node], prompt: list[int]
                   ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each node's (input, output) in the first decode step after the prompt."""
    hook = capture(decode, nodes)
    caches = [np.zeros(n.type.shape, n.type.dtype.np) for n in decode.inputs[2:]]
    batch, prompt_tokens = prefill.inputs[0].type.shape
    shapes = Shapes(batch, prompt_tokens, caches[0].shape[2], prefill.outputs[0].type.shape[-1])
    generate(lambda xs: interpret(prefill, xs), lambda xs: interpret(decode, xs, hook),
             caches, shapes, prompt, 2)
    return hook.captured  # type: ignore[attr-defined]


def _run_block(artifact: Artifact, meta: dict, prompt: list[int], simulator: str, waves: bool,
               work_dir: str | Path | None, name: str) -> StepRun:
    """A SwiGLU block (hardwired gate/up/down + the vector unit) on the prompt's
    first decode token: its h and y checked against the interpreter's."""
    tool = find_simulator(simulator)
    ref = ReferenceBackend()
    prefill, decode = ref.load(artifact, "prefill"), ref.load(artifact, "decode")
    block = next(b for b in ffn_blocks(decode) if b.spec.name == name)
    gate = next(n for n in decode.nodes if n.op == "int_linear"
                and n.inputs[0].node is block.x)
    got = _decode_values(prefill, decode, [gate, block.h, block.y], prompt)
    xs = [got[gate.name][0].reshape(-1)]
    hs = [got[block.h.name][1].reshape(-1)]
    ys = [got[block.y.name][1].reshape(-1)]
    keep = waves or work_dir is not None
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="llmc-hnlpu-"))
    run = None
    try:
        t0 = time.perf_counter()
        build = build_ffn(block.spec, tool.name, work, waves=True if waves else None)
        t1 = time.perf_counter()
        run = run_ffn(build, block.spec, xs, hs, ys, work / "run", waves=waves)
        t2 = time.perf_counter()
    finally:
        if not keep and run is not None and run.passed:
            shutil.rmtree(work, ignore_errors=True)
    s = block.spec
    weights = sum(la.n * la.k for la in (s.gate, s.up, s.down))
    return StepRun(tool.name, 3, weights, run, t1 - t0, t2 - t1, work, run.sim.waves,
                   what=f"SwiGLU block {name} (3 hardwired layers + vector unit)")


def _run_attention(artifact: Artifact, prompt: list[int], simulator: str, waves: bool,
                   work_dir: str | Path | None, name: str) -> StepRun:
    """A decode attention (the attention buffer + softmax vector unit) on the
    prompt's first decode token, checked against the interpreter's."""
    tool = find_simulator(simulator)
    ref = ReferenceBackend()
    prefill, decode = ref.load(artifact, "prefill"), ref.load(artifact, "decode")
    att = next(a for a in attention_nodes(decode) if a.spec.name == name)
    wanted = [att.q, att.k_cache, att.k_new, att.v_cache, att.v_new, att.node]
    vals: dict[str, np.ndarray] = {}
    names = {n.name for n in wanted}

    def hook(node: Node, outs: tuple) -> None:
        if node.name in names and node.name not in vals:
            vals[node.name] = np.asarray(outs[0])

    caches = [np.zeros(n.type.shape, n.type.dtype.np) for n in decode.inputs[2:]]
    batch, prompt_tokens = prefill.inputs[0].type.shape
    shapes = Shapes(batch, prompt_tokens, caches[0].shape[2], prefill.outputs[0].type.shape[-1])
    generate(lambda xs: interpret(prefill, xs), lambda xs: interpret(decode, xs, hook),
             caches, shapes, prompt, 2)
    pos = len(prompt)  # the first decode token's position
    case = {"kc": vals[att.k_cache.name][0], "vc": vals[att.v_cache.name][0],
            "q": vals[att.q.name][0, :, 0, :], "k_new": vals[att.k_new.name][0, :, 0, :],
            "v_new": vals[att.v_new.name][0, :, 0, :], "pos": pos,
            "expected": vals[att.node.name][0, :, 0, :]}
    keep = waves or work_dir is not None
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="llmc-hnlpu-"))
    t0 = time.perf_counter()
    ok, rows, log = run_attn(att.spec, tool.name, work, [case], waves=waves)
    t1 = time.perf_counter()
    if not keep and ok:
        shutil.rmtree(work, ignore_errors=True)
    mism = tuple(r["mismatches"] for r in rows)
    cyc = tuple(r["cycles"] for r in rows)
    sim = SimRunLike(Path(log))
    run = HnRun(tool.name, "attention", att.spec.cycles(), cyc, mism, (), sim, t1 - t0,
                None if ok else f"see {log}")
    return StepRun(tool.name, 0, 0, run, 0.0, t1 - t0, work, None,
                   what=f"attention {name} ({att.spec.heads} heads x {att.spec.slots} "
                        f"positions: attention buffer + softmax unit)")


def _run_norm(artifact: Artifact, prompt: list[int], simulator: str, waves: bool,
              work_dir: str | Path | None, name: str) -> StepRun:
    """An RMSNorm unit on the prompt's first decode token, checked against the
    interpreter's."""
    tool = find_simulator(simulator)
    ref = ReferenceBackend()
    prefill, decode = ref.load(artifact, "prefill"), ref.load(artifact, "decode")
    spec, node = next((s, n) for s, n in norm_nodes(decode) if s.name == name)
    got = _decode_values(prefill, decode, [node], prompt)[node.name]
    keep = waves or work_dir is not None
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="llmc-hnlpu-"))
    t0 = time.perf_counter()
    ok, rows, log = run_norm(spec, tool.name, work, got[0].reshape(1, -1),
                             got[1].reshape(1, -1), waves=waves)
    t1 = time.perf_counter()
    if not keep and ok:
        shutil.rmtree(work, ignore_errors=True)
    run = HnRun(tool.name, "norm", spec.cycles(), tuple(r["cycles"] for r in rows),
                tuple(r["mismatches"] for r in rows), (), SimRunLike(Path(log)), t1 - t0,
                None if ok else f"see {log}")
    return StepRun(tool.name, 0, 0, run, 0.0, t1 - t0, work, None,
                   what=f"RMSNorm {name} ({spec.channels} channels)")


def _run_decode(artifact: Artifact, meta: dict, prompt: list[int], simulator: str,
                waves: bool, work_dir: str | Path | None) -> StepRun:
    """The whole decode step (units + controller) on the prompt's first decode token."""
    tool = find_simulator(simulator)
    ref = ReferenceBackend()
    prefill, decode = ref.load(artifact, "prefill"), ref.load(artifact, "decode")
    match = decode_spec(decode, None if meta["whole_model"] else len(meta["layers"]))
    if match is None or match.spec.top != meta["top"]:
        raise UsageError(f"{artifact.path}: its decode design {meta['top']} does not match its "
                         "decode graph; compile it again")
    case = decode_case(prefill, decode, match, prompt)
    keep = waves or work_dir is not None
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="llmc-hnlpu-"))
    run = None
    try:
        src = work / "rtl"
        src.mkdir(parents=True, exist_ok=True)
        for name in meta["sources"]:
            (src / name).write_bytes(artifact.read_bytes(f"{RTL_DIR}/{name}"))
        t0 = time.perf_counter()
        build = build_design([src / n for n in meta["sources"]], meta["top"], tool.name,
                             work / f"sim_{tool.name}", waves=True if waves else None,
                             build_args=DECODE_BUILD_ARGS[tool.name])
        t1 = time.perf_counter()
        run = run_decode(build, match.spec, case.x, case.kcs, case.vcs, case.pos, case.y,
                         case.hs, work / "run", waves=waves)
        t2 = time.perf_counter()
    finally:
        if not keep and run is not None and run.passed:
            shutil.rmtree(work, ignore_errors=True)
    spec = match.spec
    what = (f"{len(spec.layers)} layers + LM head" if spec.head else
            f"layer {spec.layers[0].name}") + \
        f" (units + controller, {len(meta['schedule']) - 1} steps)"
    return StepRun(tool.name, len(spec.layers), spec.weights, run, t1 - t0, t2 - t1, work,
                   run.sim.waves, what=what)


@dataclass(frozen=True)
class SimRunLike:
    """What a StepRun's caller reads of a simulator run: its log."""

    log: Path
    waves: Path | None = None

    @property
    def passed(self) -> bool:
        return True


@dataclass(frozen=True)
class StepRun:
    """One decode step simulated in RTL."""

    simulator: str
    layers: int
    weights: int
    run: HnRun
    build_s: float
    sim_s: float
    work_dir: Path
    waves: Path | None
    what: str = ""

    @property
    def passed(self) -> bool:
        return self.run.passed

    def line(self) -> str:
        r = self.run
        verdict = "bit-exact" if not any(r.mismatches) else f"{sum(r.mismatches)} mismatches"
        what = self.what or f"{self.layers} hardwired layers"
        size = f", {self.weights:,} weights" if self.weights else ""
        return (f"RTL decode step ({self.simulator}): {what}{size}; "
                f"{verdict} vs the interpreter; {r.cycles[0]} cycles "
                f"(cycle model {r.expected_cycles}); build {self.build_s:.1f} s, "
                f"simulation {self.sim_s:.1f} s")


def run_rtl(artifact: Artifact, prompt: list[int], simulator: str = "auto",
            waves: bool = False, work_dir: str | Path | None = None,
            only: str | None = None) -> StepRun:
    """Simulate the artifact's hardwired decode step on the prompt's first decode
    token; `only`: just the layers whose name (module path) starts with it."""
    files = artifact.manifest["files"]
    if LAYERS_JSON not in files:
        raise UsageError(f"{artifact.path} has no hardwired RTL (compile with --quant w4a8 "
                         f"and weights); its analytic report is {artifact.path / SYSTEM_MD}")
    meta = json.loads(artifact.read_text(LAYERS_JSON))
    if only is None and "decode" in meta:
        return _run_decode(artifact, meta["decode"], prompt, simulator, waves, work_dir)
    if only is not None and only in meta.get("ffn_blocks", []):
        return _run_block(artifact, meta, prompt, simulator, waves, work_dir, only)
    if only is not None and only in meta.get("attention", []):
        return _run_attention(artifact, prompt, simulator, waves, work_dir, only)
    if only is not None and only in meta.get("norms", []):
        return _run_norm(artifact, prompt, simulator, waves, work_dir, only)
    chosen = [la for la in meta["layers"] if only is None or la["name"].startswith(only)]
    skipped = [la for la in meta["analytic_only"] if only is None or la["name"].startswith(only)]
    if not chosen and not skipped:
        names = ", ".join(la["name"] for la in meta["layers"][:4])
        raise UsageError(f"no hardwired layer of {artifact.path} is named {only}*; "
                         f"its layers are {names}, ...")
    if skipped:
        big = skipped[0]
        raise UsageError(f"layer {big['name']} ({big['n']} x {big['k']} weights) is above the "
                         f"RTL simulation limit; see the analytic report "
                         f"{artifact.path / SYSTEM_MD}")
    tool = find_simulator(simulator)
    ref = ReferenceBackend()
    prefill, decode = ref.load(artifact, "prefill"), ref.load(artifact, "decode")
    names = {la["node"] for la in chosen}
    nodes = [n for n in linear_nodes(decode) if n.name in names]
    pairs = [(n, layer_of(decode, n)) for n in nodes]
    why = too_large(pairs)
    if why:
        raise UsageError(f"{why}; see the analytic report {artifact.path / SYSTEM_MD}")
    got = _decode_values(prefill, decode, nodes, prompt)
    xs = [[got[n.name][0].reshape(-1, layer.k)[0]] for n, layer in pairs]
    ys = [[got[n.name][1].reshape(-1, layer.n)[0]] for n, layer in pairs]
    keep = waves or work_dir is not None
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="llmc-hnlpu-"))
    run = None
    try:
        src = work / "rtl"
        src.mkdir(parents=True, exist_ok=True)
        sources = [name for name in meta["sources"] if name != f"{meta['top']}.v"]
        for name in sources:
            (src / name).write_bytes(artifact.read_bytes(f"{RTL_DIR}/{name}"))
        # the step module of the chosen layers (the artifact's holds all of them)
        step = generate_step([layer for _, layer in pairs], STYLE,
                             compact=meta.get("compact", False))
        top_name, top_text = step.generated[-1]
        if len(pairs) > 1:
            (src / top_name).write_text(top_text)
            sources.append(top_name)
        t0 = time.perf_counter()
        build = build_design([src / n for n in sources], step.top, tool.name,
                             work / f"sim_{tool.name}", waves=True if waves else None)
        t1 = time.perf_counter()
        run = run_hn(build, [layer for _, layer in pairs], STYLE, xs, ys, work / "run",
                     waves=waves)
        t2 = time.perf_counter()
    finally:
        if not keep and run is not None and run.passed:  # a failure keeps its logs
            shutil.rmtree(work, ignore_errors=True)
    return StepRun(tool.name, len(pairs), sum(la.n * la.k for _, la in pairs), run,
                   t1 - t0, t2 - t1, work, run.sim.waves)
