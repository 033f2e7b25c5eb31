"""Precision: the storage dtypes the cost model charges for weights, the KV
cache and activations, and the dtype class an op's arithmetic runs in.

`--quant` takes either a quantization scheme or storage formats, never both:

- a **scheme** (`bfp12`, `w4a16`, `w4a16g128`, `w8a8-int`, ...; the list is
  `llmc.passes.quant.schemes`, the one place a scheme name gets a meaning):
  the cost model runs the scheme's passes on the graph it costs and charges
  what they produce, so `llmc report --quant S` and the report of
  `llmc compile --quant S` agree. Its Precision summarises the scheme's
  storage (`Scheme.storage`) for the closed-form long-context analysis.
- **storage formats**, a what-if for sweeps: one or more parts joined by
  `+` or `,`, applied left to right on top of the device's default (`bf16`
  on GPUs) by re-typing the graph's tensors (no pass runs):

| part                | weights   | KV cache | activations |
|---------------------|-----------|----------|-------------|
| `f32` `bf16` `fp16` `fp8` `int8` | that | that | that |
| `int4` `fp4`, any llmc dtype (`bfp4b64`, `mxfp6e3m2`) | that | that | unchanged |
| `X-w`, `X-kv`, `X-a`  | only that one, set to X (X also `bfp12`, `bfp16`) |  |  |
| `2:4` (or `sparse`) | 2:4 structured sparsity of linear weights |  |  |

A name is a scheme or a format, not both (tests/costmodel/test_cm_quant.py
checks it). int4 carries an f16 scale per group of 128 (GPTQ/AWQ style: 4.125
bits); in `X-kv` style parts BFP12/BFP16 are the schemes' formats, `bfp4b16` /
`bfp8b16` (4- or 8-bit mantissas sharing an 8-bit exponent per block of 16,
docs/references.md "Block formats"); fp4 is OCP MXFP4.

float32 and the device's default: a traced graph is float32 because the
reference interpreter is; no one serves in it, so its float32 tensors are
costed at the device's default precision. An op the user asks for in f32
(`--quant f32`, or a graph whose float parameters are half precision and that
upcasts some tensors to f32 on purpose) is charged as f32, at the device's
f32 peak (workload.traced_in_f32 tells the two apart).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from llmc.errors import IRError, UsageError
from llmc.ir.dtypes import DType, bf16, f16, f32, i8, mx, parse_dtype
from llmc.passes.quant.schemes import BFP12, BFP16, Scheme, find_scheme, scheme_names

FP8 = DType("fp8", 8, "float")                        # scalar E4M3/E5M2, per-tensor scale
INT4_G128 = DType("int4g128", 4 + 16 / 128, "int")   # int4 + an f16 scale per 128 weights

FORMATS: dict[str, DType] = {
    "f32": f32, "fp32": f32, "bf16": bf16, "fp16": f16, "f16": f16, "fp8": FP8,
    "int8": i8, "i8": i8, "int4": INT4_G128, "i4": INT4_G128, "fp4": mx("mxfp4"),
}
# names of the schemes' block formats, usable as X in X-w / X-kv / X-a only (alone,
# `bfp12` and `bfp16` are schemes)
_PART_FORMATS: dict[str, DType] = {"bfp12": BFP12, "bfp16": BFP16}
_ACT_CAPABLE = {"f32", "bf16", "f16", "fp8", "i8"}     # dtypes activations are kept in
_SPARSE = {"2:4", "sparse", "sparse24", "2:4-sparse"}

# An op runs in the first class (in this order) that one of its operands has:
# w4a16 multiplies in bf16, fp4 weights x int8 activations in int8.
_PRECEDENCE = ("f32", "bf16", "fp8", "int8", "fp4", "int4")


@dataclass(frozen=True)
class Precision:
    """Storage dtypes of weights (matrices; 1-D gains and biases stay in the
    activation dtype), the KV cache and activations; sparse: 2:4 structured
    sparsity on linear weights. as_is: cost the graph's own dtypes.

    scheme: the quantization scheme whose passes run on the costed graph
    (weight, kv and act then summarise its storage); fallback: what the
    float32 tensors those passes leave are costed at (the device's default)."""

    weight: DType
    kv: DType
    act: DType
    sparse: bool = False
    spec: str = ""
    as_is: bool = False
    scheme: Scheme | None = None
    fallback: Precision | None = None

    @property
    def floats(self) -> Precision:
        """The precision a graph's float32 (traced) tensors are costed at."""
        return self.fallback or self

    def describe(self) -> str:
        if self.scheme is not None:
            return (f"scheme {self.scheme.name}: weights {self.weight.name} "
                    f"({self.weight.bits:g} bits), KV {self.kv.name} ({self.kv.bits:g} bits), "
                    f"linear inputs {self.act.name}")
        if self.as_is:
            return (f"the graph's own dtypes (as the passes left them; float32 tensors at "
                    f"{self.act.name})")
        s = (f"weights {self.weight.name} ({self.weight.bits:g} bits), KV {self.kv.name} "
             f"({self.kv.bits:g} bits), activations {self.act.name}")
        return s + (", 2:4-sparse linear weights" if self.sparse else "")

    def to_json(self) -> dict[str, object]:
        return {"spec": self.spec, "weight": self.weight.name, "weight_bits": self.weight.bits,
                "kv": self.kv.name, "kv_bits": self.kv.bits, "act": self.act.name,
                "sparse_2_4": self.sparse, "as_is": self.as_is,
                "scheme": self.scheme.name if self.scheme else None}


BASE = Precision(bf16, bf16, bf16, spec="bf16")


def formats_help() -> str:
    """The storage-format vocabulary, for error messages."""
    return (f"{', '.join(FORMATS)}, an llmc dtype (bfp4b64, mxfp6e3m2), X-w / X-kv / X-a "
            f"(X also bfp12, bfp16), or 2:4")


def _unknown(name: str, spec: str) -> UsageError:
    return UsageError(f"--quant {spec!r}: unknown format {name!r}; a scheme (the passes "
                      f"`llmc compile --quant` runs): {scheme_names()}; or storage formats "
                      f"(what-ifs, joined by +): {formats_help()}")


def _format(name: str, spec: str, part: bool = False) -> DType:
    if name in FORMATS:
        return FORMATS[name]
    if part and name in _PART_FORMATS:
        return _PART_FORMATS[name]
    try:
        return parse_dtype(name)
    except IRError:
        raise _unknown(name, spec) from None


def _apply(p: Precision, part: str, spec: str) -> Precision:
    if part in _SPARSE:
        return replace(p, sparse=True)
    if find_scheme(part) is not None:
        raise UsageError(f"--quant {spec!r}: {part} is a quantization scheme; a scheme is the "
                         f"whole --quant (it fixes weights, KV cache and activations), not a "
                         f"part to combine with storage formats")
    m = re.fullmatch(r"(.+)-(w|kv|a)", part)
    if m:
        d = _format(m.group(1), spec, part=True)
        field = {"w": "weight", "kv": "kv", "a": "act"}[m.group(2)]
        return replace(p, **{field: d})
    d = _format(part, spec)
    return replace(p, weight=d, kv=d, act=d if d.name in _ACT_CAPABLE else p.act)


def _parse_formats(text: str, p: Precision) -> Precision:
    parts = [s.strip().lower() for s in re.split(r"[+,]", text)]
    if not all(parts):
        raise UsageError(f"--quant {text!r}: empty part")
    for part in parts:
        p = _apply(p, part, text)
    return p


def scheme_precision(s: Scheme, default: Precision) -> Precision:
    """The Precision of scheme `s` on a device whose default is `default`:
    what the scheme leaves in float is costed at the default."""
    st = s.storage
    return Precision(st.weight or default.weight, st.kv or default.kv, st.act or default.act,
                     spec=s.name, as_is=True, scheme=s, fallback=default)


def parse_quant(spec: str | None, default: str = "bf16") -> Precision:
    """The Precision of `spec` (a scheme, or formats applied over `default`,
    a device's default_quant)."""
    base = _parse_formats(default, BASE)
    if spec is None:
        return replace(base, spec=default)
    s = find_scheme(spec.strip().lower())
    if s is not None:
        return scheme_precision(s, replace(base, spec=default))
    return replace(_parse_formats(spec, base), spec=spec)


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
