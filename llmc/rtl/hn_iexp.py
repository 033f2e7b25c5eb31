"""I-BERT's integer exp as Verilog, one definition for the hardwired units
that need it (the softmax of `hn_attn`, the sigmoid of `hn_ffn`). Its
semantics are the IR's i-exp (`llmc.ir.ops.intops.exp_consts`, `EXP_CLAMP`),
so the units stay bit-exact with the interpreter."""

from __future__ import annotations

from llmc.ir.ops.intops import EXP_CLAMP, exp_consts


def slit(v: int, w: int = 64) -> str:
    """A w-bit signed Verilog literal."""
    return f"-{w}'sd{-v}" if v < 0 else f"{w}'sd{v}"


def iexp_lines(ax: str, frac: int, *, q: str = "q", r: str = "r", t: str = "t",
               out: str = "e") -> list[str]:
    """Verilog wires computing `out` = i-exp(-ax) in fixed point with `frac`
    bits, for a signed 64-bit wire `ax` >= 0: clamp to EXP_CLAMP * |x0|
    (`axc`), q = floor(axc / |x0|) by comparisons, r = q |x0| - axc, then the
    second-order polynomial (r + b)^2 + c shifted right by q."""
    x0, b_q, c_q = exp_consts(frac)
    ax0 = -x0
    clamp = slit(EXP_CLAMP * ax0)
    terms = " + ".join(f"{{4'd0, axc >= {slit(k * ax0)}}}" for k in range(1, EXP_CLAMP + 1))
    return [f"    wire signed [63:0] axc = {ax} > {clamp} ? {clamp} : {ax};",
            f"    wire [4:0] {q} = {terms};  // floor(axc / |x0|) by comparisons",
            f"    wire signed [63:0] {r} = $signed({{59'd0, {q}}}) * {slit(ax0)} - axc;",
            f"    wire signed [63:0] {t} = {r} + {slit(b_q)};",
            f"    wire signed [63:0] {out} = ({t} * {t} + {slit(c_q)}) >>> {q};"]
