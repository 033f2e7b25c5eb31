"""llmc's tensor IR: dtypes, types, SSA graph, op registry, verifier, text
form, interpreter and cost."""

from llmc.ir import dtypes
from llmc.ir.cost import graph_cost, node_cost
from llmc.ir.graph import Attrs, Builder, Graph, Node, Value
from llmc.ir.interp import interpret
from llmc.ir.ops import Cost, all_ops, get_op
from llmc.ir.text import parse_graph, print_graph
from llmc.ir.types import TensorType
from llmc.ir.verify import verify

__all__ = [
    "Attrs", "Builder", "Cost", "Graph", "Node", "TensorType", "Value", "all_ops", "dtypes",
    "get_op", "graph_cost", "interpret", "node_cost", "parse_graph", "print_graph", "verify",
]
