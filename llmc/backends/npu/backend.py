"""The npu backend's two halves.

emit: lower each phase to a program (lower.py), lay out one DRAM image for
both (weights stored once by param name, then each phase's inputs and
outputs), refuse weights that do not fit the device's DRAM, and write
`program.npu` (binary), `program.s` (its listing), `io.json` (where inputs
and outputs are, the host's dequantize of the logits), `dram.bin` (the
DRAM image's initial bytes; none for a shape-only model), `npu.json` (the
simulator's cycles, stalls, utilisation and energy for one prefill and one
decode step) and `npu_trace.json` (their instruction timeline, Perfetto).

run: load the image into the instruction-set simulator and generate
greedily (llmc.backends.generate); the result carries the simulated cycles
and joules, and the NPU's tokens/s and J/token in its timings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from llmc.backends.artifact import Artifact
from llmc.backends.base import Backend, CompileOptions, Files, MemoryPlanLike, RunResult
from llmc.backends.generate import Shapes, generate
from llmc.backends.npu.asm import disassemble
from llmc.backends.npu.binary import decode, encode
from llmc.backends.npu.isa import Image, Target
from llmc.backends.npu.iss import Machine, Stats
from llmc.backends.npu.layout import Dram
from llmc.backends.npu.lower import float_nodes, lower
from llmc.backends.npu.trace import trace_json
from llmc.errors import UsageError
from llmc.ir import Graph, get_op

PROGRAM, LISTING, IO, DRAM_IMAGE, SUMMARY, TRACE = (
    "program.npu", "program.s", "io.json", "dram.bin", "npu.json", "npu_trace.json")
PHASES = ("prefill", "decode")


def sim_hardware(device: Any) -> Any:
    from llmc.sim.hardware import from_device

    return from_device(device)


def machine(image: Image, device: Any, dram: np.ndarray | None = None,
            execute: bool = True) -> Machine:
    """A simulator for `image` on `device`: llmc.sim's hardware view and energy
    table, with the device file's own DRAM energy per byte."""
    return Machine(image, sim_hardware(device), dram, execute,
                   float(device.main.energy_pj_per_byte))


def dram_capacity(device: Any) -> int:
    """Bytes of the device's DRAM a program may use (capacity less the reserve)."""
    reserved = device.reserved_bytes.value if device.reserved_bytes is not None else 0
    return int(device.main.capacity_bytes - reserved)


def layout_params(graphs: Mapping[str, Graph], dram: Dram) -> dict[str, dict[str, int]]:
    """Every phase's params in DRAM, by name; a name whose values differ between
    phases gets one region per phase."""
    addrs: dict[str, dict[str, int]] = {}
    seen: dict[str, np.ndarray | None] = {}
    for phase, g in graphs.items():
        addrs[phase] = {}
        for n in g.nodes:
            if n.op != "param":
                continue
            name = n.attrs["name"]
            value = g.params.get(name)
            key = f"param:{name}"
            if name in seen and value is not None and seen[name] is not None and not (
                    np.array_equal(seen[name], value)):
                key = f"param:{phase}/{name}"
            seen.setdefault(name, value)
            addrs[phase][name] = dram.alloc(key, n.type.nbytes)
    return addrs


def dram_image(graphs: Mapping[str, Graph], addrs: Mapping[str, Mapping[str, int]],
               size: int) -> bytes:
    image = np.zeros(size, np.uint8)
    for phase, g in graphs.items():
        for name, addr in addrs[phase].items():
            raw = np.ascontiguousarray(np.asarray(g.params[name])).view(np.uint8).reshape(-1)
            image[addr:addr + raw.size] = raw
    return image.tobytes()


class NpuBackend(Backend):
    name: ClassVar[str] = "npu"
    runs_on: ClassVar[str] = "the NPU instruction-set simulator (llmc.backends.npu.iss)"

    def unsupported(self, graphs: Mapping[str, Graph]) -> list[str]:
        from llmc.backends.npu.lower import RENDER

        seen: dict[str, str] = {}
        for g in graphs.values():
            for n in float_nodes(g):
                seen.setdefault(f"float op {n.op} (the NPU computes integers only; compile "
                                f"with --quant w8a8-int or w4a8)", f"%{n.name} in @{g.name}")
            for n in g.nodes:
                kind = get_op(n.op).kind
                if n.op not in RENDER and n.op not in ("input", "param", "dequantize_int") \
                        and kind != "view":
                    seen.setdefault(f"op {n.op}", f"%{n.name} in @{g.name}")
        return [f"{what} (e.g. {where})" for what, where in sorted(seen.items())]

    def fit(self, graphs: Mapping[str, Graph], device: Any
            ) -> tuple[dict[str, Graph], dict[str, int | None]]:
        """Each phase row-tiled where its steps do not fit the scratchpad, and
        the arena its plan must fit (fit.py); the plan spills the rest."""
        from llmc.backends.npu.fit import fit_phase

        fits = {ph: fit_phase(g, device) for ph, g in graphs.items()}
        return {ph: f.graph for ph, f in fits.items()}, \
            {ph: f.arena_bytes for ph, f in fits.items()}

    def emit(self, graphs: Mapping[str, Graph], plans: Mapping[str, MemoryPlanLike],
             device: Any, options: CompileOptions) -> Files:
        image, io, dram = build(graphs, {ph: p.json for ph, p in plans.items()}, device)
        files: Files = {PROGRAM: encode(image), LISTING: disassemble(image),
                        IO: json.dumps(io, indent=2, sort_keys=True) + "\n"}
        shape_only = any(g.shape_only for g in graphs.values())
        if not shape_only:
            files[DRAM_IMAGE] = dram_image(graphs, io["params"], dram.size)
        summary, runs = simulate_steps(image, device)
        files[SUMMARY] = json.dumps(summary, indent=2, sort_keys=True) + "\n"
        files[TRACE] = trace_json(runs)
        return files

    def run(self, artifact: Artifact, prompt: Sequence[int], max_new_tokens: int,
            on_token: Callable[[int], None] | None = None) -> RunResult:
        from llmc.hw.database import get_device

        image = decode(artifact.read_bytes(PROGRAM))
        io = json.loads(artifact.read_text(IO))
        if DRAM_IMAGE not in artifact.manifest["files"]:
            raise UsageError(f"{artifact.path} was compiled shape-only (no weights): it has "
                             "cycles (npu.json) but cannot generate tokens")
        dram = np.zeros(image.target.dram_bytes, np.uint8)
        raw = np.frombuffer(artifact.read_bytes(DRAM_IMAGE), np.uint8)
        dram[:raw.size] = raw
        sim = machine(image, get_device(artifact.manifest["device"]), dram)
        stats: dict[str, list[Stats]] = {"prefill": [], "decode": []}

        def step(phase: str) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
            def call(xs: list[np.ndarray]) -> list[np.ndarray]:
                stats[phase].append(run_phase(sim, io[phase], phase, xs))
                return read_outputs(sim, io[phase])
            return call

        ins = io["decode"]["inputs"]
        caches = [np.zeros(e["shape"], e["dtype"]) for e in ins[2:]]
        pin = io["prefill"]["inputs"][0]["shape"]
        logits = io["prefill"]["outputs"][0]["shape"]
        shapes = Shapes(pin[0], pin[1], caches[0].shape[2], logits[-1])
        res = generate(step("prefill"), step("decode"), caches, shapes, prompt, max_new_tokens,
                       on_token)
        every = stats["prefill"] + stats["decode"]
        res.cycles = sum(s.cycles for s in every)
        res.energy_j = sum(s.energy_j for s in every)
        clock = image.target.clock_hz
        res.timings["npu_prefill_s"] = sum(s.cycles for s in stats["prefill"]) / clock
        res.timings["npu_decode_s"] = sum(s.cycles for s in stats["decode"]) / clock
        if stats["decode"]:
            res.timings["npu_tokens_per_s"] = len(stats["decode"]) / res.timings["npu_decode_s"]
            res.timings["npu_j_per_token"] = sum(s.energy_j for s in stats["decode"]) / len(
                stats["decode"])
        return res


def attention_chip(device: Any) -> Any:
    """The tiling pass's view of the device (llmc.passes.tiling.OnChip), whose
    tiles attention is lowered in; None for a device without tiling rules."""
    from llmc.passes.tiling import on_chip

    if device.scratchpad is None or device.tiling is None:
        return None
    return on_chip(device)


def build(graphs: Mapping[str, Graph], plans: Mapping[str, dict[str, Any]], device: Any
          ) -> tuple[Image, dict[str, Any], Dram]:
    """The image of both phases, io.json's content and the DRAM map."""
    hw = sim_hardware(device)
    dram = Dram()
    params = layout_params(graphs, dram)
    weights = dram.size
    spad = int(device.scratchpad.capacity_bytes)
    programs, io = [], {"params": params}
    for phase in [p for p in PHASES if p in graphs]:
        prog, pio = lower(graphs[phase], plans[phase], dram, params[phase], hw.array.cols, spad,
                          device.scratchpad.banks, attention_chip(device))
        programs.append(prog)
        io[phase] = {"inputs": pio.inputs, "outputs": pio.outputs}
    limit = dram_capacity(device)
    if dram.size > limit:
        raise UsageError(f"the model does not fit the {device.name}'s DRAM: weights "
                         f"{weights:,} bytes + inputs, outputs and KV cache "
                         f"{dram.size - weights:,} = {dram.size:,} bytes; "
                         f"{limit:,} are free ({device.main.capacity_bytes:,.0f} less "
                         f"{device.main.capacity_bytes - limit:,.0f} reserved)")
    target = Target(hw.array.rows, hw.array.cols, hw.need_vector().lanes, spad, dram.size,
                    float(device.clock_hz.value))
    io["dram_bytes"] = dram.size
    return Image(target, programs), io, dram


def simulate_steps(image: Image, device: Any) -> tuple[dict[str, Any], dict[str, Stats]]:
    """Shape-only simulation of one step of each phase: npu.json's figures
    (cycles, stalls, utilisation, energy by component) and the traced runs."""
    m = machine(image, device, execute=False)
    runs = {p.name: m.run(p.name, trace=True) for p in image.programs}
    summary = {name: s.to_json() for name, s in runs.items()}
    summary["clock_hz"] = image.target.clock_hz
    summary["note"] = ("one step of each phase, simulated shape-only (timing without "
                       "data); decode at its graph's position")
    return summary, runs


def run_phase(machine: Machine, io: dict[str, Any], phase: str, xs: list[np.ndarray],
              trace: bool = False) -> Stats:
    for e, x in zip(io["inputs"], xs, strict=True):
        machine.write(e["addr"], np.asarray(x, e["dtype"]).reshape(e["shape"]))
    return machine.run(phase, trace)


def read_outputs(machine: Machine, io: dict[str, Any]) -> list[np.ndarray]:
    outs = []
    for e in io["outputs"]:
        x = machine.read("out", e["addr"], e["dtype"], tuple(e["shape"]))
        if "dequantize" in e:  # the integer graph's last op, on the host (IR semantics)
            dq = e["dequantize"]
            scale = machine.read("scale", dq["addr"], "float32", tuple(dq["shape"]))
            x = get_op("dequantize_int").run([x, scale], {})
        outs.append(x)
    return outs
