"""Hardwired Neurons: a quantized linear layer as Verilog whose weights are wiring.

After Liu et al. 2025 (HNLPU, arXiv 2508.16151): a weight is stored nowhere;
it decides which accumulator group an input wire lands on. Two forms of the
same layer y = x @ W.T (x: K signed `x_bits`-bit activations; W: N x K 4-bit
codes, with optional per-group integer scales s (N, K/group), so the constant
of weight (n, k) is code * s[n, k // group]):

* **Metal-Embedding HN** (`generate_me`): the activations arrive bit-serially,
  LSB first (the module shifts its loaded input one bit plane per cycle).
  Every input is wired to the popcount of its weight's code (16 codes, per
  scale group; code 0 gets no wire); each popcount is multiplied by its
  constant (canonical signed digits: shifts and adds) and an adder tree sums
  them into the bit plane's partial sum, registered. A serial-parallel
  accumulator adds partial b with weight 2^b (the sign plane subtracts) and
  shifts its low bit out, so no barrel shifter is needed.
* **CSD constant multipliers** (`generate_csd`): the classic hardwired form,
  bit-parallel: each x_k times its constant as canonical-signed-digit
  shift-and-adds, one adder tree per neuron, one cycle.

The Metal-Embedding form has a compact rendering (`generate_me(compact=True)`,
the decode-step designs use it): each neuron is one llmc_hn_neuron whose
parameters are its codes and scales, computing the same partial sums on the
same edges; it compiles and simulates layers of hundreds of thousands of
weights, while synthesis and area use the wire-by-wire form (Yosys maps the
compact one's 32-bit integer arithmetic to more cells).

Both take `start` with x on a K*x_bits bus (element k at bits
[x_bits*k + x_bits-1 : x_bits*k]) and raise `done` with y (N signed 32-bit
words, int_linear's int32) held until the next start. `HnLayer.cycles(style)`
is the number of rising edges from the one that samples `start` to the one
after which `done` is high; the testbench (llmc.rtl.tb_hn) checks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from llmc.errors import UsageError
from llmc.rtl.design import Design
from llmc.rtl.emit import (
    Always,
    Assign,
    Comment,
    If,
    Instance,
    Module,
    Net,
    NonBlocking,
    Port,
    SourceFile,
    render,
)

STYLES = ("me", "csd")
OUT_BITS = 32      # int_linear's int32 accumulator
WEIGHT_BITS = 4    # the supported weight width (4-bit codes, 16 accumulator groups)
ME_PIPELINE = 1    # the registered partial sum between the adder tree and the accumulator


def csd(value: int) -> list[tuple[int, int]]:
    """Canonical signed digits of an integer: [(sign, shift), ...], no two
    adjacent nonzero digits, sum(sign << shift) == value."""
    digits, shift, v = [], 0, int(value)
    while v:
        if v & 1:
            d = 2 - (v & 3)          # +1 if v = 1 mod 4, -1 if v = 3 mod 4
            digits.append((d, shift))
            v -= d
        v >>= 1
        shift += 1
    return digits


@dataclass(frozen=True, eq=False)
class HnLayer:
    """One quantized linear layer to hardwire.

    codes: (N, K) integer weight codes in -8..7; scales: (N, G) non-negative
    integer group scales (G = ceil(K / group)), all ones for none; source:
    where it came from (op, layer), for the generated file's header.
    """

    name: str
    codes: np.ndarray
    scales: np.ndarray
    group: int
    source: str = ""
    x_bits: int = 8
    consts: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        c = np.asarray(self.codes, np.int64)
        s = np.asarray(self.scales, np.int64)
        lo, hi = -(2 ** (WEIGHT_BITS - 1)), 2 ** (WEIGHT_BITS - 1) - 1
        if c.ndim != 2 or c.size == 0:
            raise UsageError(f"{self.name}: weight codes must be a non-empty (N, K) matrix")
        if c.min() < lo or c.max() > hi:
            raise UsageError(f"{self.name}: weights are not {WEIGHT_BITS}-bit codes "
                             f"(values {c.min()}..{c.max()}, expected {lo}..{hi}); the HNLPU "
                             f"backend hardwires int4 weights: compile with --quant w4a8")
        n, k = c.shape
        if self.group <= 0 or s.shape != (n, -(-k // self.group)) or (s.size and s.min() < 0):
            raise UsageError(f"{self.name}: group scales {s.shape} do not match {c.shape} "
                             f"in groups of {self.group}")
        object.__setattr__(self, "codes", c)
        object.__setattr__(self, "scales", s)
        object.__setattr__(self, "consts", c * np.repeat(s, self.group, axis=1)[:, :k])

    @property
    def n(self) -> int:
        return int(self.codes.shape[0])

    @property
    def k(self) -> int:
        return int(self.codes.shape[1])

    @property
    def module(self) -> str:
        return "hn_" + "".join(ch if ch.isalnum() else "_" for ch in self.name)

    def top(self, style: str, compact: bool = False) -> str:
        """The module's name; `compact`: the "me" form of `generate_me(compact=True)`."""
        return f"{self.module}_{check_style(style)}" + ("_c" if compact else "")

    def cycles(self, style: str) -> int:
        """Rising edges from the one that samples `start` to done (see the module doc)."""
        return self.x_bits + ME_PIPELINE if check_style(style) == "me" else 1

    def partial_bits(self) -> int:
        """Signed width of one bit plane's partial sum: the largest sum of |constants|."""
        return int(np.abs(self.consts).sum(axis=1).max()).bit_length() + 1

    def acc_bits(self) -> int:
        """Signed width of the result: partial_bits plus the activation's weight."""
        return min(OUT_BITS, self.partial_bits() + self.x_bits - 1)

    def reference(self, x: np.ndarray) -> np.ndarray:
        """y = x @ consts.T in int64 (the form the RTL computes; tests compare it
        with the IR interpreter's int_linear)."""
        return np.asarray(x, np.int64) @ self.consts.T

    def groups(self, n: int) -> list[tuple[int, list[int]]]:
        """Neuron n's accumulator groups: (constant, input indices), by scale
        group then code; code 0 and scale 0 get none."""
        out = []
        for j in range(self.scales.shape[1]):
            lo = j * self.group
            row = self.codes[n, lo:min(lo + self.group, self.k)]
            for code in range(-(2 ** (WEIGHT_BITS - 1)), 2 ** (WEIGHT_BITS - 1)):
                const = code * int(self.scales[n, j])
                members = (np.flatnonzero(row == code) + lo).tolist()
                if const and members:
                    out.append((const, members))
        return out


def check_style(style: str) -> str:
    if style not in STYLES:
        raise UsageError(f"unknown hardwired-neuron style {style!r}; expected one of "
                         f"{', '.join(STYLES)}")
    return style


def generate(layer: HnLayer, style: str, compact: bool = False) -> Design:
    """The layer as a Design in the given style ("me" or "csd"; `compact`: the
    "me" form of `generate_me(compact=True)`)."""
    if check_style(style) == "me":
        return generate_me(layer, compact)
    if compact:
        raise UsageError("the compact form is the Metal-Embedding one (style \"me\")")
    return generate_csd(layer)


def _ports(layer: HnLayer) -> tuple[Port, ...]:
    return (
        Port("clk", "input"),
        Port("rst", "input", comment="synchronous, active high"),
        Port("start", "input", comment="take x and compute (ME: ignored while busy)"),
        Port("x", "input", layer.k * layer.x_bits,
             comment=f"{layer.k} signed {layer.x_bits}-bit activations, element k at "
                     f"[{layer.x_bits}k+{layer.x_bits - 1}:{layer.x_bits}k]"),
        Port("done", "output", reg=True, comment="y is valid (until the next start)"),
        Port("y", "output", layer.n * OUT_BITS,
             comment=f"{layer.n} signed {OUT_BITS}-bit outputs"),
    )


def _word(parts: list[str]) -> str:
    """A concatenation, dropping empty parts ({0{...}} is not Verilog-2005)."""
    kept = [p for p in parts if p]
    return kept[0] if len(kept) == 1 else "{" + ", ".join(kept) + "}"


def _rep(count: int, bit: str) -> str:
    return f"{{{count}{{{bit}}}}}" if count > 0 else ""


def _sum(terms: list[tuple[int, str]], width: int) -> str:
    """A `width`-bit sum of (sign, `width`-bit expression) terms."""
    if not terms:
        return f"{{{width}{{1'b0}}}}"
    parts = []
    for i, (sign, word) in enumerate(terms):
        op = ("- " if sign < 0 else "+ ") if i else ("-" if sign < 0 else "")
        parts.append(f"{op}{word}")
    return " ".join(parts)


def _signed_digits(const: int) -> list[tuple[int, int]]:
    """CSD digits of a signed constant: (sign, shift) with the constant's sign applied."""
    return [(d if const > 0 else -d, sh) for d, sh in csd(abs(const))]


def _header(layer: HnLayer, style: str) -> str:
    what = "Metal-Embedding Hardwired Neurons (bit-serial, popcount per code)" \
        if style == "me" else "CSD constant multipliers (bit-parallel shift-and-add)"
    src = layer.source or layer.name
    return (f"{src}: {layer.n} x {layer.k} int{WEIGHT_BITS} linear layer "
            f"(scale groups of {layer.group}), {what}")


def _pc_width(members: int) -> int:
    return max(2, members.bit_length())


def me_partial_bits(layer: HnLayer) -> int:
    """Width of the ME partial sums: the layer's bound, and room for every
    shifted popcount term."""
    widest = max((_pc_width(len(m)) + sh + 1 for n in range(layer.n)
                  for const, m in layer.groups(n) for _, sh in _signed_digits(const)),
                 default=2)
    return max(layer.partial_bits(), widest)


def generate_me(layer: HnLayer, compact: bool = False) -> Design:
    """The Metal-Embedding form (see the module docstring). `compact` writes
    each neuron as one llmc_hn_neuron whose parameters are its codes and
    scales (the same function, cycle for cycle: for layers too large to
    simulate wire by wire) instead of one llmc_popcount per code."""
    xb, pw = layer.x_bits, me_partial_bits(layer)
    aw = pw + xb - 1             # the result's signed width (<= OUT_BITS: checked)
    _check_width(layer, aw)
    hi = aw - xb                 # accumulator bits above the low bits shifted out
    cb = max(1, (xb - 1).bit_length())
    last = f"{cb}'d{xb - 1}"
    items: list = [
        Net("reg", "xs", layer.k * xb, comment=f"loaded x, shifted right one bit plane per "
                                              f"cycle: the plane's bit k at xs[{xb}k]"),
        Net("reg", "busy", comment="bit planes still to send"),
        Net("reg", "bitn", cb, comment="index of the bit plane now in xs"),
        Net("reg", "pvalid", comment="part_r* hold a bit plane's partial sums"),
        Net("reg", "psign", comment="... of the sign plane (subtracted)"),
        Net("wire", "load", assign="start && !busy && !pvalid",
            comment="a new x is taken only when the last one is finished"),
    ]
    if compact:
        items += [Net("wire", "plane", layer.k, comment="the bit plane now in xs",
                      assign=_word([f"xs[{xb * k}]" for k in reversed(range(layer.k))])),
                  Net("wire", "plane_en", assign="!rst && busy",
                      comment="the neurons register the plane's sums")]
    latch, outs = [], []
    for n in range(layer.n):
        if compact:
            items += [Net("wire", f"part_r{n}", pw), _neuron(layer, n, pw)]
        else:
            items += [*_wired_neuron(layer, n, pw), Net("reg", f"part_r{n}", pw)]
            latch.append(NonBlocking(f"part_r{n}", f"part{n}"))
        items += [
            Net("reg", f"acc{n}", hi, comment="running sum / 2^(planes done)"),
            Net("reg", f"low{n}", xb, comment="low bits shifted out of the accumulator"),
            Net("wire", f"ext{n}", hi + 1,
                assign=_word([_rep(hi + 1 - pw, f"part_r{n}[{pw - 1}]"), f"part_r{n}"])),
            Net("wire", f"sum{n}", hi + 1,
                assign=f"{{acc{n}[{hi - 1}], acc{n}}} + (psign ? -ext{n} : ext{n})"),
        ]
        items.append(Always("posedge clk", (
            If("load", (NonBlocking(f"acc{n}", f"{hi}'d0"), NonBlocking(f"low{n}", f"{xb}'d0")),
               (If("pvalid", (
                   NonBlocking(f"acc{n}", f"sum{n}[{hi}:1]"),
                   NonBlocking(f"low{n}", f"{{sum{n}[0], low{n}[{xb - 1}:1]}}"))),)),),
            comment=f"neuron {n}: serial-parallel accumulate (the sign plane subtracts)"))
        word = _word([_rep(OUT_BITS - aw, f"acc{n}[{hi - 1}]"), f"acc{n}", f"low{n}"])
        outs.append(Assign(f"y[{OUT_BITS * n + OUT_BITS - 1}:{OUT_BITS * n}]", word))
    control = Always("posedge clk", (
        If("rst", (NonBlocking("busy", "1'b0"), NonBlocking("pvalid", "1'b0"),
                   NonBlocking("psign", "1'b0"), NonBlocking("done", "1'b0")),
           (If("load", (NonBlocking("xs", "x"), NonBlocking("busy", "1'b1"),
                         NonBlocking("bitn", f"{cb}'d0"), NonBlocking("done", "1'b0"))),
            NonBlocking("pvalid", "busy"),
            NonBlocking("psign", f"busy && bitn == {last}"),
            If("busy", (NonBlocking("xs", f"{{1'b0, xs[{layer.k * xb - 1}:1]}}"),
                        NonBlocking("bitn", f"bitn + {cb}'d1"),
                        *latch,
                        If(f"bitn == {last}", (NonBlocking("busy", "1'b0"),)))),
            If("pvalid && psign", (NonBlocking("done", "1'b1"),)))),
    ), comment="load x, then one bit plane per cycle (LSB first); done after the sign plane")
    return _design(layer, "me", (*items, control, Comment(), *outs),
                   ("llmc_hn_neuron",) if compact else ("llmc_popcount",), compact)


def _wired_neuron(layer: HnLayer, n: int, pw: int) -> list:
    """Neuron n's partial sum wire by wire: one llmc_popcount per code group,
    times its constant in signed digits, summed."""
    items: list = []
    terms = []
    for g, (const, members) in enumerate(layer.groups(n)):
        w, pc = _pc_width(len(members)), f"pc{n}_{g}"
        wires = [f"xs[{layer.x_bits * k}]" for k in reversed(members)]
        items.append(Net("wire", pc, w, comment=f"{len(members)} inputs of constant {const}"))
        items.append(Instance("llmc_popcount", f"u_pc{n}_{g}",
                              (("in", _word(wires)), ("count", pc)),
                              params=(("N", len(members)), ("W", w))))
        terms += [(sign, _word([_rep(pw - w - sh, "1'b0"), pc, _rep(sh, "1'b0")]))
                  for sign, sh in _signed_digits(const)]
    items.append(Net("wire", f"part{n}", pw, assign=_sum(terms, pw),
                     comment=f"neuron {n}: popcounts x constants, summed"))
    return items


def _neuron(layer: HnLayer, n: int, pw: int) -> Instance:
    """Neuron n as one llmc_hn_neuron: its codes and scales as parameters."""
    codes = "".join(f"{int(c) & 15:x}" for c in reversed(layer.codes[n]))
    scales = "".join(f"{int(s):08x}" for s in reversed(layer.scales[n]))
    g = layer.scales.shape[1]
    return Instance("llmc_hn_neuron", f"u_n{n}",
                    (("clk", "clk"), ("en", "plane_en"), ("plane", "plane"), ("part", f"part_r{n}")),
                    params=(("K", layer.k), ("GROUP", layer.group), ("G", g), ("PW", pw),
                            ("CODES", f"{4 * layer.k}'h{codes}"),
                            ("SCALES", f"{32 * g}'h{scales}")),
                    comment=f"neuron {n}: input k's code at CODES[4k+3:4k]")


def generate_csd(layer: HnLayer) -> Design:
    """The CSD constant-multiplier form (see the module docstring)."""
    xb = layer.x_bits
    aw = layer.partial_bits() + xb - 1
    _check_width(layer, aw)
    items: list = []
    latch, outs = [], []
    for n in range(layer.n):
        terms = []
        for k in range(layer.k):
            msb = f"x[{xb * k + xb - 1}]"
            for sign, sh in _signed_digits(int(layer.consts[n, k])):
                terms.append((sign, _word([_rep(aw - xb - sh, msb),
                                           f"x[{xb * k + xb - 1}:{xb * k}]",
                                           _rep(sh, "1'b0")])))
        items += [Net("wire", f"prod{n}", aw, assign=_sum(terms, aw),
                      comment=f"neuron {n}: x_k x constant_k as shifted adds, summed"),
                  Net("reg", f"y_r{n}", aw)]
        latch.append(NonBlocking(f"y_r{n}", f"prod{n}"))
        word = _word([_rep(OUT_BITS - aw, f"y_r{n}[{aw - 1}]"), f"y_r{n}"])
        outs.append(Assign(f"y[{OUT_BITS * n + OUT_BITS - 1}:{OUT_BITS * n}]", word))
    control = Always("posedge clk", (
        If("rst", (NonBlocking("done", "1'b0"),),
           (If("start", (*latch, NonBlocking("done", "1'b1"))),)),
    ), comment="one cycle: the products of the x on the bus, registered")
    return _design(layer, "csd", (*items, control, Comment(), *outs), ())


def _check_width(layer: HnLayer, aw: int) -> None:
    if aw > OUT_BITS:
        raise UsageError(f"{layer.name}: its sums need {aw} bits, more than int_linear's "
                         f"int32 accumulator")


def _design(layer: HnLayer, style: str, items: tuple, blocks: tuple[str, ...],
            compact: bool = False) -> Design:
    top = layer.top(style, compact)
    mod = Module(top, _ports(layer), items,
                 doc=f"{top}: y = x @ W.T with W wired in, not stored (llmc.rtl.hn)")
    header = _header(layer, style) + (", one llmc_hn_neuron per neuron" if compact else "")
    text = render(SourceFile((mod,), generated_from=header,
                             generator="llmc.rtl.hn"))
    return Design(top, ((f"{top}.v", text),), blocks)


def step_top(style: str) -> str:
    return f"hn_step_{check_style(style)}"


def generate_step(layers: list[HnLayer], style: str, name: str = "",
                  compact: bool = False) -> Design:
    """Several layers side by side (a decode step's projections, each its own
    hardwired array) behind one `start`; `done` when all are done. Ports
    x_<i>, y_<i> per layer i; one layer alone is returned as its own module
    (ports x, y)."""
    if len(layers) == 1:
        return generate(layers[0], style, compact)
    ports = [Port("clk", "input"), Port("rst", "input", comment="synchronous, active high"),
             Port("start", "input", comment="every layer loads its x and computes"),
             Port("done", "output", comment="every layer's y is valid")]
    items: list = []
    generated: list[tuple[str, str]] = []
    blocks: set[str] = set()
    for i, layer in enumerate(layers):
        ports += [Port(f"x_{i}", "input", layer.k * layer.x_bits, comment=layer.name),
                  Port(f"y_{i}", "output", layer.n * OUT_BITS, comment=layer.name)]
        items.append(Net("wire", f"done_{i}"))
        items.append(Instance(layer.top(style, compact), f"u_{i}", (
            ("clk", "clk"), ("rst", "rst"), ("start", "start"), ("x", f"x_{i}"),
            ("done", f"done_{i}"), ("y", f"y_{i}")), comment=layer.source or layer.name))
        d = generate(layer, style, compact)
        generated += d.generated
        blocks.update(d.blocks)
    items.append(Assign("done", " & ".join(f"done_{i}" for i in range(len(layers)))))
    top = step_top(style)
    what = name or f"{len(layers)} hardwired layers"
    mod = Module(top, tuple(ports), tuple(items),
                 doc=f"{top}: {what}, side by side (llmc.rtl.hn)")
    text = render(SourceFile((mod,), generated_from=f"{what} ({style})",
                             generator="llmc.rtl.hn"))
    return Design(top, (*generated, (f"{top}.v", text)), tuple(sorted(blocks)))
