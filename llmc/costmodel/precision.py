"""Precision: the storage dtypes the cost model charges for weights, the KV
cache and activations, and the dtype class an op's arithmetic runs in.

`--quant` is for now an analytic byte-width override (the quantization
passes will put real dtypes in the graph; a graph that already carries them
is costed as it stands). A spec is one or more parts joined by `+` or `,`,
applied left to right on top of the device's default (`bf16` on GPUs):

| part                | weights   | KV cache | activations |
|---------------------|-----------|----------|-------------|
| `f32` `bf16` `fp16` `fp8` `int8` | that | that | that |
| `int4` `fp4` `bfp12` `bfp16`, any llmc dtype (`bfp4b64`, `mxfp6e3m2`) | that | that | unchanged |
| `wNaM` (`w4a16`, `w8a8`, `w4a8`) | N-bit int | unchanged | M-bit |
| `X-w`, `X-kv`, `X-a`  | only that one, set to X |  |  |
| `2:4` (or `sparse`) | 2:4 structured sparsity of linear weights |  |  |

int4 carries an f16 scale per group of 128 (GPTQ/AWQ style: 4.125 bits);
BFP12/BFP16 are `bfp4b32`/`bfp8b32` (4- or 8-bit mantissas sharing an 8-bit
exponent per block of 32, docs/references.md "Block formats"); fp4 is OCP MXFP4.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from llmc.errors import IRError, UsageError
from llmc.ir.dtypes import DType, bf16, bfp, f16, f32, i4, i8, mx, parse_dtype

FP8 = DType("fp8", 8, "float")                        # scalar E4M3/E5M2, per-tensor scale
INT4_G128 = DType("int4g128", 4 + 16 / 128, "int")   # int4 + an f16 scale per 128 weights

FORMATS: dict[str, DType] = {
    "f32": f32, "fp32": f32, "bf16": bf16, "fp16": f16, "f16": f16, "fp8": FP8,
    "int8": i8, "i8": i8, "int4": INT4_G128, "i4": INT4_G128, "fp4": mx("mxfp4"),
    "bfp12": bfp(4, 32), "bfp16": bfp(8, 32),
}
_ACT_CAPABLE = {"f32", "bf16", "f16", "fp8", "i8"}     # dtypes activations are kept in
_W_BITS = {4: INT4_G128, 8: i8, 16: bf16}
_A_BITS = {4: i4, 8: i8, 16: bf16, 32: f32}
_SPARSE = {"2:4", "sparse", "sparse24", "2:4-sparse"}

# An op runs in the first class (in this order) that one of its operands has:
# w4a16 multiplies in bf16, fp4 weights x int8 activations in int8.
_PRECEDENCE = ("f32", "bf16", "fp8", "int8", "fp4", "int4")


@dataclass(frozen=True)
class Precision:
    """Storage dtypes of weights (matrices; 1-D gains and biases stay in the
    activation dtype), the KV cache and activations; sparse: 2:4 structured
    sparsity on linear weights. as_is: cost the graph's own dtypes."""

    weight: DType
    kv: DType
    act: DType
    sparse: bool = False
    spec: str = ""
    as_is: bool = False

    def describe(self) -> str:
        if self.as_is:
            return (f"the graph's own dtypes (as the passes left them; float32 tensors at "
                    f"{self.act.name})")
        s = (f"weights {self.weight.name} ({self.weight.bits:g} bits), KV {self.kv.name} "
             f"({self.kv.bits:g} bits), activations {self.act.name}")
        return s + (", 2:4-sparse linear weights" if self.sparse else "")

    def to_json(self) -> dict[str, object]:
        return {"spec": self.spec, "weight": self.weight.name, "weight_bits": self.weight.bits,
                "kv": self.kv.name, "kv_bits": self.kv.bits, "act": self.act.name,
                "sparse_2_4": self.sparse, "as_is": self.as_is}


BASE = Precision(bf16, bf16, bf16, spec="bf16")


def _format(name: str, spec: str) -> DType:
    if name in FORMATS:
        return FORMATS[name]
    try:
        return parse_dtype(name)
    except IRError:
        raise UsageError(
            f"--quant {spec!r}: unknown format {name!r}; use {', '.join(FORMATS)}, an llmc "
            f"dtype (bfp4b64, mxfp6e3m2), wNaM (w4a16), X-w / X-kv / X-a, or 2:4") from None


def _apply(p: Precision, part: str, spec: str) -> Precision:
    if part in _SPARSE:
        return replace(p, sparse=True)
    m = re.fullmatch(r"w(\d+)a(\d+)", part)
    if m:
        wb, ab = int(m.group(1)), int(m.group(2))
        if wb not in _W_BITS or ab not in _A_BITS:
            raise UsageError(f"--quant {spec!r}: {part} needs weight bits in 4/8/16 and "
                             f"activation bits in 4/8/16/32")
        return replace(p, weight=_W_BITS[wb], act=_A_BITS[ab])
    m = re.fullmatch(r"(.+)-(w|kv|a)", part)
    if m:
        d = _format(m.group(1), spec)
        field = {"w": "weight", "kv": "kv", "a": "act"}[m.group(2)]
        return replace(p, **{field: d})
    d = _format(part, spec)
    return replace(p, weight=d, kv=d, act=d if d.name in _ACT_CAPABLE else p.act)


def parse_quant(spec: str | None, default: str = "bf16") -> Precision:
    """The Precision of `spec` applied over `default` (a device's default_quant)."""
    p = BASE
    for text in (default, spec):
        if text is None:
            continue
        parts = [s.strip().lower() for s in re.split(r"[+,]", text)]
        if not all(parts):
            raise UsageError(f"--quant {text!r}: empty part")
        for part in parts:
            p = _apply(p, part, text)
    return replace(p, spec=spec if spec is not None else default)


def sparse_24(d: DType) -> DType:
    """Storage of a 2:4-sparse weight: half the values plus a 2-bit index
    per kept value (NVIDIA's sparse tensor-core format): bits/2 + 1."""
    return DType(f"{d.name}s24", d.bits / 2 + 1, d.kind, d.block, d.scale_bits, d.elem)


def dtype_class(d: DType) -> str:
    """Arithmetic class of a dtype: f32, bf16, fp8, fp4, int8 or int4."""
    if d.kind == "block":
        e = d.elem
        if e.startswith("fp4"):
            return "fp4"
        if e.startswith(("fp8", "fp6")):
            return "fp8"
        bits = int(e[3:]) if e.startswith("int") else 8
        return "int8" if bits > 4 else "int4"
    if d.kind == "float":
        return "f32" if d.bits > 16 else "bf16" if d.bits > 8 else "fp8" if d.bits > 4 else "fp4"
    return "f32" if d.bits > 8 else "int8" if d.bits > 4.5 else "int4"


def compute_class(*operands: DType) -> str:
    """The class a product of these operands runs in (see _PRECEDENCE)."""
    classes = {dtype_class(d) for d in operands}
    return next(c for c in _PRECEDENCE if c in classes)
