"""The gpu backend's two halves.

emit: `<phase>.llmir` (the IR the program was lowered from), the artifact's kernels (kernels/*.py: the GEMM kernels generated per
fusion group's epilogue, the others rendered from templates/, each with a
header saying what calls it), kernels/w4a16_gemv.cu where int4 weights are
used, kernels/block_weights.py where a block-format (BFP / MX) embedding
table is (llmc/backends/gpu/blockfmt.py; block weights are stored as codes
+ shared exponents), kernels/int_ops.py for integer-only graphs
(llmc/backends/gpu/intk.py), program.json (every phase's steps, the values' types, the tiles),
autotune.json (the tile configs per GEMM: defaults, or a sweep's choice
when compiled on a machine with a GPU) and weights.safetensors (floats at
the activation dtype, bf16 stored as its bits).

run: load all that, on the GPU or under Triton's interpreter, and generate
greedily: prefill, then decode with the K/V cache written in place, the
decode step replayed as a CUDA graph on a GPU.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from llmc.backends.artifact import Artifact
from llmc.backends.base import Backend, CompileOptions, Files, MemoryPlanLike, RunResult
from llmc.backends.generate import Shapes, check_request
from llmc.backends.gpu import emit as emitter
from llmc.backends.gpu.lower import VIEWS
from llmc.backends.weights import loads
from llmc.errors import UsageError
from llmc.ir import Graph

PROGRAM, WEIGHTS, AUTOTUNE = "program.json", "weights.safetensors", "autotune.json"
KERNEL_OPS = frozenset({"linear", "wq_linear", "embedding", "cast", "rms_norm", "attention",
                 "flash_init", "flash_step", "quantize", "index_copy", "add", "sub", "mul",
                 "silu", "relu", "neg", "concat", "le", "lt", "ge", "gt", "eq", "arange",
                 "logical_not", "qlinear", "dequantize", "moe_ffn", "int_linear", "requant",
                 "int_rms_norm", "int_layer_norm", "int_attention", "int_silu", "int_gelu",
                 "dequantize_int", "layer_norm", "gelu"} | VIEWS)
GPU_TARGETS = ("a100", "a100-40gb", "h100", "h200")


class GpuBackend(Backend):
    name: ClassVar[str] = "gpu"
    runs_on: ClassVar[str] = ("an NVIDIA GPU (Triton kernels, one CUDA GEMV), or Triton's "
                              "interpreter on the CPU (TRITON_INTERPRET=1, small models)")
    # every op compiles (the report and the plan stand); what has no kernel
    # yet is listed in program.json and `run` refuses it (KERNEL_OPS: what has)
    ops: ClassVar[frozenset[str] | None] = None

    def emit(self, graphs: Mapping[str, Graph], plans: Mapping[str, MemoryPlanLike],
             device: Any, options: CompileOptions) -> Files:
        return emitter.emit(graphs, device, options)

    def run(self, artifact: Artifact, prompt: Sequence[int], max_new_tokens: int,
            on_token: Callable[[int], None] | None = None) -> RunResult:
        program = json.loads(artifact.read_text(PROGRAM))
        if program.get("target") != artifact.manifest.get("target") or \
                program.get("device") != artifact.manifest.get("device"):
            raise UsageError(f"{artifact.path}/{PROGRAM} was built for target "
                             f"{program.get('target')} ({program.get('device')}), the manifest "
                             f"says {artifact.manifest.get('target')}; compile it again")
        if program.get("unsupported"):
            bad = program["unsupported"]
            raise UsageError(f"{artifact.path} cannot run on the gpu backend: no kernel for "
                             f"{'; '.join(bad[:3])}{f' and {len(bad) - 3} more' if len(bad) > 3 else ''}"
                             " (the report and plan in it stand)")
        shapes = shapes_of(program)
        check_request(shapes, prompt, max_new_tokens)
        from llmc.backends.gpu.device import triton_device

        where = triton_device()
        gen = Generator(artifact.path, program, artifact.read_bytes(WEIGHTS), where)
        return gen.generate(shapes, prompt, max_new_tokens, on_token)


def shapes_of(program: dict[str, Any]) -> Shapes:
    """The sizes generation uses, from the program's own types (not the
    manifest's figures): tokens (B, T), logits (B, T, V), caches (B, G, S, D)."""
    pre, dec = program["phases"]["prefill"], program["phases"]["decode"]
    batch, prompt_tokens = pre["types"][pre["inputs"][0]][1]
    vocab = pre["types"][pre["outputs"][0]][1][-1]
    context = dec["types"][dec["inputs"][2]][1][2]
    return Shapes(batch, prompt_tokens, context, vocab)


class Generator:
    """An artifact loaded on a device, generating greedily (as
    llmc.backends.generate does for numpy backends, on device tensors)."""

    def __init__(self, path: Path, program: dict[str, Any], weights: bytes, where: Any) -> None:
        import torch

        from llmc.backends.gpu.runtime import Kernels, Runtime

        self.where = where
        tensors = loads(weights)
        dev = {}
        for name, info in program["weights"].items():
            if name not in tensors:
                raise UsageError(f"{path}/{WEIGHTS} lacks the weight {name}; compile it again")
            t = torch.from_numpy(np.ascontiguousarray(tensors[name]))
            if info == "bf16":
                t = t.view(torch.bfloat16)
                if where.interpret:
                    # the same values in float32: the interpreter converts bf16 in numpy
                    # bit by bit at every load, and kernels compute in f32 either way
                    t = t.float()
            dev[name] = t.to(where.device)
        from llmc.backends.gpu.blockfmt import blocked_weights

        dev.update(blocked_weights(program, dev))   # block-format weights: (codes, exponents)
        self.rt = Runtime(program, Kernels(path / "kernels"), dev, where)
        self.program = program
        self.graph: Any = None

    def caches(self) -> list[Any]:
        """Zero decode caches of the decode phase's input types."""
        import torch

        from llmc.backends.gpu.runtime import Blocked

        ph = self.program["phases"]["decode"]
        out = []
        for r in ph["inputs"][2:]:
            dtype, shape = ph["types"][r]
            fmt = self.program["kv_formats"].get(dtype)
            if fmt:
                e_shape = (*shape[:-1], shape[-1] // fmt["block"])
                out.append(Blocked(torch.zeros(shape, dtype=torch.int8, device=self.where.device),
                                   torch.zeros(e_shape, dtype=torch.int8,
                                               device=self.where.device), dtype))
            else:
                out.append(self.rt.empty(shape, dtype).zero_())
        return out

    def decode_step(self, token: Any, pos: Any, kv: list[Any]) -> Any:
        """One decode step; on a GPU the second and later steps replay a CUDA graph."""
        import torch

        if self.where.device.type != "cuda":
            return self.rt.run_phase("decode", [token, pos, *kv])[0]
        if self.graph is None:
            self.static = (token.clone(), pos.clone())
            self.rt.run_phase("decode", [*self.static, *kv])      # warm-up: compiles
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.static_logits = self.rt.run_phase("decode", [*self.static, *kv])[0]
        self.static[0].copy_(token)
        self.static[1].copy_(pos)
        self.graph.replay()
        return self.static_logits

    def generate(self, shapes: Shapes, prompt: Sequence[int], max_new_tokens: int,
                 on_token: Callable[[int], None] | None) -> RunResult:
        import torch

        dev = self.where.device
        B, L = shapes.batch, len(prompt)
        tokens = torch.zeros((B, shapes.prompt_tokens), dtype=torch.int64, device=dev)
        tokens[:, :L] = torch.tensor(list(prompt), dtype=torch.int64, device=dev)
        t0 = time.perf_counter()
        out = self.rt.run_phase("prefill", [tokens])
        kv = self.caches()
        n = min(shapes.prompt_tokens, shapes.context_tokens)
        rows = torch.arange(n, device=dev)
        for cache, new in zip(kv, out[1:], strict=True):   # prefill K/V (B, G, T, D) -> cache
            self.rt.kv_write(cache, rows, new if n == shapes.prompt_tokens else
                             type(new)(new.m[:, :, :n], new.e[:, :, :n], new.dtype)
                             if hasattr(new, "m") else new[:, :, :n])
        nxt = int(torch.argmax(out[0][0, L - 1].float()))
        t1 = time.perf_counter()
        chosen = [nxt]
        if on_token is not None:
            on_token(nxt)
        for i in range(1, max_new_tokens):
            tok = torch.full((B, 1), nxt, dtype=torch.int64, device=dev)
            pos = torch.tensor([L + i - 1], dtype=torch.int64, device=dev)
            logits = self.decode_step(tok, pos, kv)
            nxt = int(torch.argmax(logits[0, -1].float()))
            chosen.append(nxt)
            if on_token is not None:
                on_token(nxt)
        t2 = time.perf_counter()
        return RunResult(chosen, {"prefill_s": t1 - t0, "decode_s": t2 - t1})
