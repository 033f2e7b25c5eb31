"""Backends: one subpackage per target family, each the same shape (base.py).

`BACKENDS` is the one table of them (family -> module); a module is
imported only when its backend is used, and names its backend `BACKEND`.
A family whose module does not exist yet is not built: its targets compile
and run on the reference backend (the IR interpreter) meanwhile, and
`llmc targets` says so. Landing a backend means creating its module.

    get_backend("gpu")      -> the gpu backend, or the reference one if not built
    load_backend(name)      -> exactly that backend (UsageError if not built)
    built_backends()        -> the families whose backend is built
"""

from __future__ import annotations

import importlib
import importlib.util

from llmc.backends.base import Backend, CompileOptions, RunResult
from llmc.errors import UsageError

REFERENCE = "reference"

BACKENDS: dict[str, str] = {
    REFERENCE: "llmc.backends.reference",        # the IR interpreter (numpy)
    "gpu": "llmc.backends.gpu",                  # Triton/CUDA kernels
    "npu": "llmc.backends.npu",                  # integer NPU program + simulator
    "hnlpu": "llmc.backends.hnlpu",              # hardwired-weight RTL + testbench
    "neuromorphic": "llmc.backends.neuromorphic",  # spiking-network mapping
}


def is_built(family: str) -> bool:
    module = BACKENDS.get(family)
    return module is not None and importlib.util.find_spec(module) is not None


def built_backends() -> list[str]:
    """The families (keys of BACKENDS) whose backend module exists."""
    return [f for f in BACKENDS if is_built(f)]


def load_backend(name: str) -> Backend:
    """The backend `name`; UsageError when it is unknown or not built."""
    if name not in BACKENDS:
        raise UsageError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})")
    if not is_built(name):
        raise UsageError(f"the {name} backend is not built in this llmc "
                         f"(built: {', '.join(built_backends())})")
    return importlib.import_module(BACKENDS[name]).BACKEND


def get_backend(family: str) -> Backend:
    """The backend a target of `family` uses: its own when built, else the
    reference backend."""
    return load_backend(family if is_built(family) else REFERENCE)


__all__ = ["BACKENDS", "REFERENCE", "Backend", "CompileOptions", "RunResult", "built_backends",
           "get_backend", "is_built", "load_backend"]
