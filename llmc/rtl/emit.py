"""A small typed Verilog-2005 emitter: declare a module as data, render text.

Generated Verilog is code a person reads, so the emitter fixes one layout:
four-space indents, ports and declarations in aligned columns, one statement
per line, a header saying what the file was generated from, a `timescale`,
and `default_nettype none` around each module. The same `SourceFile` always
renders to the same bytes (no dates, no dict-order surprises).

    m = Module("adder", ports=(Port("a", "input", 8), Port("y", "output", 9)),
               items=(Assign("y", "a + 1'b1"),))
    text = render(SourceFile((m,), generated_from="example"))

Widths are None (a scalar), an int n (renders `[n-1:0]`, so 1 gives a
one-bit vector that can still be indexed) or a string expression that renders
as `[EXPR-1:0]`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

Width: TypeAlias = int | str | None
_INDENT = "    "


def width_range(width: Width) -> str:
    """`[w-1:0]` for a width (`[0:0]` for 1, still a vector); "" for None, a scalar."""
    if width is None:
        return ""
    if isinstance(width, int):
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        return f"[{width - 1}:0]"
    return f"[{width}-1:0]"


# ---------------------------------------------------------------- statements
@dataclass(frozen=True)
class NonBlocking:
    """`lhs <= rhs;` inside a clocked always block."""

    lhs: str
    rhs: str


@dataclass(frozen=True)
class Blocking:
    """`lhs = rhs;` inside a combinational always block."""

    lhs: str
    rhs: str


@dataclass(frozen=True)
class If:
    """`if (cond) begin ... end [else ...]`; an else holding one If renders as `else if`."""

    cond: str
    then: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...] = ()


@dataclass(frozen=True)
class For:
    """`for (var = start; cond; var = step) begin ... end` over an `integer`."""

    var: str
    start: str
    cond: str
    step: str
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class Comment:
    """A `//` comment line (or several, split on newlines); empty text is a blank line."""

    text: str = ""


Stmt: TypeAlias = NonBlocking | Blocking | If | For | Comment


# --------------------------------------------------------------- module items
@dataclass(frozen=True)
class Param:
    """A module parameter (`parameter NAME = value`)."""

    name: str
    value: int | str
    comment: str = ""


@dataclass(frozen=True)
class Port:
    """A module port; `reg=True` makes an output a `reg`."""

    name: str
    direction: Literal["input", "output"]
    width: Width = None
    comment: str = ""
    reg: bool = False


@dataclass(frozen=True)
class Localparam:
    """`localparam [range] NAME = value;` (range only when `width` is given)."""

    name: str
    value: int | str
    width: Width | None = None
    comment: str = ""


@dataclass(frozen=True)
class Net:
    """A `wire`, `reg` or `integer` declaration, optionally an unpacked array.

    `depth` makes a memory `reg [w-1:0] name [0:depth-1]`; `assign` gives a
    wire its driver in the declaration (`wire [w-1:0] name = expr;`).
    """

    kind: Literal["wire", "reg", "integer", "genvar"]
    name: str
    width: Width = None
    depth: int | str | None = None
    assign: str | None = None
    comment: str = ""
    signed: bool = False


@dataclass(frozen=True)
class Assign:
    """A continuous assignment `assign lhs = rhs;`."""

    lhs: str
    rhs: str
    comment: str = ""


@dataclass(frozen=True)
class Always:
    """`always @(sensitivity) begin ... end`; sensitivity "*" renders `@(*)`."""

    sensitivity: str
    body: tuple[Stmt, ...]
    comment: str = ""


@dataclass(frozen=True)
class Instance:
    """A module instance with named parameter overrides and named connections."""

    module: str
    name: str
    connections: tuple[tuple[str, str], ...]
    params: tuple[tuple[str, int | str], ...] = ()
    comment: str = ""


@dataclass(frozen=True)
class GenerateFor:
    """`for (genvar = 0; genvar < count; ...) begin : label ... end` in a generate region.

    The genvar must be declared in the enclosing module (a `Net("genvar", ...)`).
    """

    genvar: str
    count: int | str
    label: str
    items: tuple[Item, ...]
    comment: str = ""


@dataclass(frozen=True)
class Lint:
    """Items between `verilator lint_off RULE` and `lint_on RULE` pragmas, with the reason."""

    rules: tuple[str, ...]
    reason: str
    items: tuple[Item, ...]


Item: TypeAlias = (
    Comment | Localparam | Net | Assign | Always | Instance | GenerateFor | Lint
)


@dataclass(frozen=True)
class Module:
    """One Verilog module: header comment, parameters, ports, body items."""

    name: str
    ports: tuple[Port, ...]
    items: tuple[Item, ...] = ()
    params: tuple[Param, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class SourceFile:
    """A `.v` file: the generated-from header, `timescale`, and its modules.

    `generated_from` may span lines; a long or multi-line one gets its own lines.
    """

    modules: tuple[Module, ...]
    generated_from: str
    timescale: str = "1ns / 1ps"
    generator: str = "llmc.rtl"
    notes: tuple[str, ...] = field(default=())


# ----------------------------------------------------------------- rendering
def render(src: SourceFile) -> str:
    """The file's Verilog text, deterministic and ending in one newline."""
    head = f"// Generated by {src.generator} from {src.generated_from}."
    if "\n" in src.generated_from or len(head) > 100:
        lines = [f"// Generated by {src.generator} from"]
        lines += [f"//   {ln}" for ln in src.generated_from.splitlines()]
    else:
        lines = [head]
    lines.append("// Do not edit: regenerate instead (same input, same bytes).")
    lines += [f"// {n}" if n else "//" for n in src.notes]
    lines += [f"`timescale {src.timescale}", "`default_nettype none", ""]
    for i, mod in enumerate(src.modules):
        if i:
            lines.append("")
        lines += _module(mod)
    lines += ["", "`default_nettype wire"]
    return "\n".join(lines) + "\n"


def _module(mod: Module) -> list[str]:
    out = [f"// {t}" if t else "//" for t in mod.doc.splitlines()]
    head = f"module {mod.name}"
    if mod.params:
        out.append(f"{head} #(")
        rows = [(f"parameter {p.name}", f"= {p.value}", p.comment) for p in mod.params]
        out += _columns(rows, _INDENT, sep=",")
        out.append(") (")
    else:
        out.append(f"{head} (")
    rows = []
    for p in mod.ports:
        kind = "reg " if p.reg else "wire"
        rows.append((f"{p.direction:<6} {kind}", width_range(p.width), p.name, p.comment))
    out += _columns(rows, _INDENT, sep=",")
    out.append(");")
    body = _items(mod.items, 1)
    if body:
        out += body
    out.append("endmodule")
    return out


def _columns(rows: Sequence[tuple[str, ...]], indent: str, sep: str) -> list[str]:
    """Rows of cells aligned in columns; `sep` after every row but the last.

    The last cell of a row is its comment (may be empty).
    """
    if not rows:
        return []
    ncols = max(len(r) for r in rows) - 1
    widths = [max(len(r[c]) for r in rows if c < len(r) - 1) for c in range(ncols)]
    keep = [c for c in range(ncols) if widths[c] > 0]  # drop all-empty columns
    pad = sum(widths[c] for c in keep) + len(keep) - 1 + len(sep)
    lines = []
    for i, row in enumerate(rows):
        text = " ".join(row[c].ljust(widths[c]) for c in keep).rstrip()
        text += sep if i < len(rows) - 1 else ""
        if row[-1]:
            text = text.ljust(pad) + f"  // {row[-1]}"
        lines.append(indent + text)
    return lines


def _items(items: Sequence[Item], depth: int) -> list[str]:
    ind = _INDENT * depth
    out: list[str] = []
    decls: list[tuple[str, ...]] = []

    def flush() -> None:
        out.extend(_columns(decls, ind, sep=""))
        decls.clear()

    for item in items:
        if isinstance(item, Net | Localparam):
            decls.append(_decl(item))
            continue
        flush()
        if isinstance(item, Comment):
            out += _comment(item.text, ind)
        elif isinstance(item, Assign):
            out += _comment(item.comment, ind, blank=False)
            out.append(f"{ind}assign {item.lhs} = {item.rhs};")
        elif isinstance(item, Always):
            out += _comment(item.comment, ind, blank=False)
            sens = "*" if item.sensitivity == "*" else item.sensitivity
            out.append(f"{ind}always @({sens}) begin")
            out += _stmts(item.body, depth + 1)
            out.append(f"{ind}end")
        elif isinstance(item, Instance):
            out += _instance(item, ind)
        elif isinstance(item, GenerateFor):
            out += _comment(item.comment, ind, blank=False)
            g = item.genvar
            out.append(f"{ind}for ({g} = 0; {g} < {item.count}; {g} = {g} + 1) begin : {item.label}")
            out += _items(item.items, depth + 1)
            out.append(f"{ind}end")
        elif isinstance(item, Lint):
            out += _comment(item.reason, ind, blank=False)
            out += [f"{ind}/* verilator lint_off {rule} */" for rule in item.rules]
            out += _items(item.items, depth)
            out += [f"{ind}/* verilator lint_on {rule} */" for rule in item.rules]
        else:  # pragma: no cover - the Item union is closed
            raise TypeError(f"not a module item: {item!r}")
    flush()
    return out


def _decl(item: Net | Localparam) -> tuple[str, ...]:
    if isinstance(item, Localparam):
        rng = "" if item.width is None else width_range(item.width)
        return ("localparam", rng, f"{item.name} = {item.value};", item.comment)
    kind = item.kind + (" signed" if item.signed else "")
    rng = "" if item.kind in ("integer", "genvar") else width_range(item.width)
    name = item.name
    if item.depth is not None:
        name += f" [0:{item.depth}-1]" if isinstance(item.depth, str) else f" [0:{item.depth - 1}]"
    if item.assign is not None:
        name += f" = {item.assign}"
    return (kind, rng, name + ";", item.comment)


def _comment(text: str, ind: str, blank: bool = True) -> list[str]:
    if not text:
        return [""] if blank else []
    return [f"{ind}// {t}" if t else f"{ind}//" for t in text.splitlines()]


def _instance(inst: Instance, ind: str) -> list[str]:
    out = _comment(inst.comment, ind, blank=False)
    if inst.params:
        out.append(f"{ind}{inst.module} #(")
        rows = [(f".{n}", f"({v})", "") for n, v in inst.params]
        out += _columns(rows, ind + _INDENT, sep=",")
        out.append(f"{ind}) {inst.name} (")
    else:
        out.append(f"{ind}{inst.module} {inst.name} (")
    rows = [(f".{n}", f"({e})", "") for n, e in inst.connections]
    out += _columns(rows, ind + _INDENT, sep=",")
    out.append(f"{ind});")
    return out


def _stmts(stmts: Sequence[Stmt], depth: int) -> list[str]:
    ind = _INDENT * depth
    out: list[str] = []
    for s in stmts:
        if isinstance(s, NonBlocking):
            out.append(f"{ind}{s.lhs} <= {s.rhs};")
        elif isinstance(s, Blocking):
            out.append(f"{ind}{s.lhs} = {s.rhs};")
        elif isinstance(s, Comment):
            out += _comment(s.text, ind)
        elif isinstance(s, For):
            out.append(f"{ind}for ({s.var} = {s.start}; {s.cond}; {s.var} = {s.step}) begin")
            out += _stmts(s.body, depth + 1)
            out.append(f"{ind}end")
        elif isinstance(s, If):
            out += _if(s, depth, prefix="if")
        else:  # pragma: no cover - the Stmt union is closed
            raise TypeError(f"not a statement: {s!r}")
    return out


def _if(s: If, depth: int, prefix: str) -> list[str]:
    ind = _INDENT * depth
    out = [f"{ind}{prefix} ({s.cond}) begin"]
    out += _stmts(s.then, depth + 1)
    if len(s.orelse) == 1 and isinstance(s.orelse[0], If):
        nested = _if(s.orelse[0], depth, prefix="end else if")
        return out + nested
    if s.orelse:
        out.append(f"{ind}end else begin")
        out += _stmts(s.orelse, depth + 1)
    out.append(f"{ind}end")
    return out
