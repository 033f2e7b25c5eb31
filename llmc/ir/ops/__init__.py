"""The op registry (see registry.py). Importing this package defines every
op: each module in this package registers its ops when imported."""

import importlib
import pkgutil

from llmc.ir.ops.registry import Cost, Gemm, OpDef, VectorWork, all_ops, define, get_op

for _m in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _m != "registry":
        importlib.import_module(f"{__name__}.{_m}")

__all__ = ["Cost", "Gemm", "OpDef", "VectorWork", "all_ops", "define", "get_op"]
