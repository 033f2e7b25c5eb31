"""Targets are data: a device from the hardware database (llmc.hw), a pass
pipeline and a backend. Adding a target adds an entry, not driver code."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from llmc.errors import UsageError


@dataclass(frozen=True)
class Target:
    name: str
    device: str                  # key in the hardware database (llmc/hw/devices)
    description: str
    pipeline: tuple[str, ...]    # pass names, run top to bottom
    backend: str                 # backend family ("gpu", "npu", "hnlpu", "neuromorphic")
    # passes run last, after the user's quantization and sparsity: kernel
    # fusion, which the memory plan, the report and the backend then follow
    schedule: tuple[str, ...] = ("fuse", "verify")


_COMMON = ("fuse-attention", "verify")

TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("a100", "a100-sxm4-80gb", "NVIDIA A100 SXM4 80 GB (Triton/CUDA)", _COMMON, "gpu"),
    Target("a100-40gb", "a100-sxm4-40gb", "NVIDIA A100 SXM4 40 GB (Triton/CUDA)", _COMMON, "gpu"),
    Target("h100", "h100-sxm5", "NVIDIA H100 SXM5 80 GB (Triton/CUDA)", _COMMON, "gpu"),
    Target("h200", "h200-sxm", "NVIDIA H200 SXM 141 GB (Triton/CUDA)", _COMMON, "gpu"),
    Target("npu", "edge-npu", "edge NPU: integer-only program + instruction-set simulator",
           _COMMON, "npu"),
    Target("hnlpu", "hnlpu", "Hardwired-Neuron LPU (hardwired-weight RTL)", _COMMON, "hnlpu"),
    Target("spinnaker2", "spinnaker2", "SpiNNaker 2 neuromorphic chip (event-driven mapping)",
           _COMMON, "neuromorphic"),
    Target("spinnaker2-board", "spinnaker2", "a board of SpiNNaker 2 chips (event-driven "
           "mapping over several chips)", _COMMON, "neuromorphic"),
]}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        close = difflib.get_close_matches(name, TARGETS, n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UsageError(f"unknown target {name!r}{hint} (known: {', '.join(TARGETS)})") from None
