"""The op registry (see registry.py); importing this package defines every op."""

from llmc.ir.ops import elementwise, nn, shape  # noqa: F401  (definitions)
from llmc.ir.ops.registry import Cost, OpDef, all_ops, define, get_op

__all__ = ["Cost", "OpDef", "all_ops", "define", "get_op"]
