"""Run one graph on the gpu backend's kernels, for tests and the demo.

`run_graph(graph, inputs, directory, act)` emits the graph as an artifact's
kernels and program (phase "prefill") into `directory`, loads them like
`llmc run` does and returns the outputs as numpy arrays; a block-format
output comes back as its float values (mantissa * 2^(exponent - shift)),
which are exact. The IR interpreter's answer is what they are checked
against (llmc.numerics.compare).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmc.backends.base import CompileOptions
from llmc.ir import Graph


def run_graph(graph: Graph, inputs: Sequence[np.ndarray], directory: Path, act: str = "f32",
              target: str = "a100") -> list[np.ndarray]:
    import torch

    from llmc.backends.gpu.backend import Generator
    from llmc.backends.gpu.device import triton_device
    from llmc.backends.gpu.emit import emit
    from llmc.backends.gpu.runtime import Blocked
    from llmc.hw.database import get_device
    from llmc.hw.targets import get_target

    tgt = get_target(target)
    files = emit({"prefill": graph}, get_device(tgt.device),
                 CompileOptions(target, "prefill", 1, 1, "random"), act=act)
    for name, data in files.items():
        f = Path(directory) / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data if isinstance(data, bytes) else data.encode())
    program = json.loads(files["program.json"])
    where = triton_device()
    gen = Generator(Path(directory), program, files.get("weights.safetensors", b""), where)
    types = program["phases"]["prefill"]["types"]
    args = []
    for r, x in zip(program["phases"]["prefill"]["inputs"], inputs, strict=True):
        dtype = types[r][0]
        fmt = program["kv_formats"].get(dtype)
        if fmt:   # a block-format input given as its (exact) float values
            from llmc.ir.formats import bfp_decompose

            m, e = bfp_decompose(np.asarray(x), fmt["shift"] + 2, fmt["block"])
            args.append(Blocked(torch.from_numpy(m.astype(np.int8)).to(where.device),
                                torch.from_numpy(e.astype(np.int8)).to(where.device), dtype))
            continue
        args.append(torch.from_numpy(np.ascontiguousarray(x)).to(where.device).to(
            gen.rt.dt(dtype)))
    outs = gen.rt.run_phase("prefill", args)
    result = []
    for r, o in zip(program["phases"]["prefill"]["outputs"], outs, strict=True):
        fmt = program["kv_formats"].get(types[r][0])
        if isinstance(o, Blocked):
            o = o.dequantize(fmt["shift"], fmt["block"])
        result.append(_numpy(o))
    return result


def _numpy(t: Any) -> np.ndarray:
    import torch

    t = t.detach().cpu()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    return t.numpy()
