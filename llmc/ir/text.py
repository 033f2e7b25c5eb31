"""The IR's text form: a printer and a parser that round-trip exactly.

    graph @llama_tiny_prefill {
      %tokens = input() : i64[1,8]
      %w = param() {name="embed.weight"} : f32[128,64]
      %x = embedding(%w, %tokens) : f32[1,8,64]
      %top:2 = topk(%x) {dim=-1, k=2} : f32[1,8,2], i64[1,8,2]
      return %x, %top#1
    }

Weights are not part of the text; `parse_graph(text, params)` reattaches them.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from llmc.errors import IRError
from llmc.ir.dtypes import DType, parse_dtype
from llmc.ir.graph import Attrs, Graph, Node, Value
from llmc.ir.types import TensorType

# ---- printing ----------------------------------------------------------------


def format_attr(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else {"inf": "inf", "-inf": "-inf"}.get(repr(v), "nan")
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, DType):
        return v.name
    if isinstance(v, tuple):
        return "[" + ", ".join(format_attr(x) for x in v) + "]"
    raise IRError(f"attribute value {v!r} of type {type(v).__name__} has no text form")


def format_node(n: Node) -> str:
    lhs = f"%{n.name}" + (f":{len(n.types)}" if len(n.types) != 1 else "")
    args = ", ".join(v.ref for v in n.inputs)
    attrs = ""
    if n.attrs:
        attrs = " {" + ", ".join(f"{k}={format_attr(v)}" for k, v in n.attrs.items()) + "}"
    loc = f" loc({json.dumps(n.loc)})" if n.loc else ""
    return f"{lhs} = {n.op}({args}){attrs} : {', '.join(map(str, n.types))}{loc}"


def print_graph(g: Graph) -> str:
    lines = [f"graph @{g.name} {{"]
    lines += ["  " + format_node(n) for n in g.nodes]
    lines.append("  return " + ", ".join(v.ref for v in g.outputs))
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---- parsing -----------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<ref>%[A-Za-z0-9_.]+(?:\#\d+)?)
  | (?P<number>-?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|inf)(?![A-Za-z0-9_]))
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[{}()\[\],=:@])
""", re.VERBOSE)


class _Tokens:
    def __init__(self, text: str, line_no: int) -> None:
        self.items: list[tuple[str, str]] = []
        self.line_no = line_no
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                raise IRError(f"line {line_no}: unexpected text {text[pos:pos + 20]!r}")
            if m.lastgroup != "ws":
                self.items.append((m.lastgroup or "", m.group()))
            pos = m.end()
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.items[self.i] if self.i < len(self.items) else ("eof", "")

    def next(self) -> tuple[str, str]:
        tok = self.peek()
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        kind, got = self.next()
        if got != value:
            raise IRError(f"line {self.line_no}: expected {value!r}, got {got or 'end of line'!r}")

    def accept(self, value: str) -> bool:
        if self.peek()[1] == value:
            self.i += 1
            return True
        return False


def _parse_value(t: _Tokens) -> Any:
    kind, text = t.next()
    if text == "[":
        items = []
        while not t.accept("]"):
            items.append(_parse_value(t))
            t.accept(",")
        return tuple(items)
    if kind == "string":
        return json.loads(text)
    if kind == "number":
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        return float(text)
    if kind == "word":
        if text in ("true", "false"):
            return text == "true"
        if text == "none":
            return None
        if text == "nan":
            return float("nan")
        return parse_dtype(text)
    raise IRError(f"line {t.line_no}: bad attribute value {text!r}")


def _parse_type(t: _Tokens) -> TensorType:
    kind, name = t.next()
    dtype = parse_dtype(name)
    t.expect("[")
    shape = []
    while not t.accept("]"):
        shape.append(int(t.next()[1]))
        t.accept(",")
    layout = None
    if t.accept("@"):
        layout = t.next()[1]
    return TensorType(tuple(shape), dtype, layout)


def _resolve(ref: str, env: dict[str, Node], line_no: int) -> Value:
    name, _, index = ref[1:].partition("#")
    if name not in env:
        raise IRError(f"line {line_no}: %{name} is used before it is defined")
    node = env[name]
    i = int(index or 0)
    if i >= len(node.types):
        raise IRError(f"line {line_no}: %{name} has no output #{i}")
    return Value(node, i)


def parse_graph(text: str, params: dict[str, np.ndarray | None] | None = None) -> Graph:
    """Parse the text form; `params` supplies weights by param name."""
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines())]
    lines = [(i, ln) for i, ln in lines if ln and not ln.startswith("//")]
    if not lines:
        raise IRError("empty IR text")
    no, head = lines[0]
    m = re.fullmatch(r"graph @([A-Za-z0-9_.\-]+) \{", head)
    if not m:
        raise IRError(f"line {no}: expected 'graph @name {{', got {head!r}")
    g = Graph(m.group(1))
    env: dict[str, Node] = {}
    for no, ln in lines[1:]:
        if ln == "}":
            return g
        t = _Tokens(ln, no)
        if t.accept("return"):
            while t.peek()[0] == "ref":
                g.outputs.append(_resolve(t.next()[1], env, no))
                t.accept(",")
            continue
        kind, ref = t.next()
        if kind != "ref":
            raise IRError(f"line {no}: expected %name, got {ref!r}")
        n_out = 1
        if t.accept(":"):
            n_out = int(t.next()[1])
        t.expect("=")
        op = t.next()[1]
        t.expect("(")
        inputs = []
        while not t.accept(")"):
            inputs.append(_resolve(t.next()[1], env, no))
            t.accept(",")
        attrs: dict[str, Any] = {}
        if t.accept("{"):
            while not t.accept("}"):
                key = t.next()[1]
                t.expect("=")
                attrs[key] = _parse_value(t)
                t.accept(",")
        t.expect(":")
        types = [_parse_type(t)]
        while t.accept(","):
            types.append(_parse_type(t))
        loc = ""
        if t.accept("loc"):
            t.expect("(")
            loc = json.loads(t.next()[1])
            t.expect(")")
        if t.peek()[0] != "eof":
            raise IRError(f"line {no}: unexpected {t.peek()[1]!r} after the types")
        if len(types) != n_out:
            raise IRError(f"line {no}: {ref} declares {n_out} outputs but {len(types)} types")
        name = ref[1:]
        if name in env:
            raise IRError(f"line {no}: {ref} is defined twice")
        node = Node(op, tuple(inputs), Attrs(attrs), tuple(types), name, loc)
        env[name] = node
        g.nodes.append(node)
        if op == "param":
            pname = node.attrs.get("name", name)
            g.params[pname] = (params or {}).get(pname)
    raise IRError("IR text ends without '}'")
