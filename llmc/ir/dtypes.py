"""Element types of llmc tensors, including low-bit and block formats.

A dtype knows its bits per element (block formats amortise their shared
scale over the block) and, for the interpreter, the numpy type its values are
held in. Block-format tensors are held as float32 values that are exactly
representable in the format (quantize rounds, dequantize is exact).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from llmc.errors import IRError


@dataclass(frozen=True)
class DType:
    """name: text form; bits: storage bits per element; kind: float, int,
    uint, bool or block; block: elements sharing one scale (block formats);
    scale_bits: bits of that shared scale; elem: element format of a block."""

    name: str
    bits: float
    kind: str
    block: int = 0
    scale_bits: int = 0
    elem: str = ""
    np_name: str = field(default="float32", compare=False)

    @property
    def is_float(self) -> bool:
        return self.kind in ("float", "block")

    @property
    def is_int(self) -> bool:
        return self.kind in ("int", "uint", "bool")

    @property
    def np(self) -> np.dtype:
        """The numpy dtype the interpreter holds values of this type in."""
        return np.dtype(self.np_name)

    def nbytes(self, numel: int) -> int:
        """Storage bytes of `numel` elements (sub-byte types packed densely)."""
        return int(-(-numel * self.bits // 8))

    def __str__(self) -> str:
        return self.name

    __repr__ = __str__


def _d(name: str, bits: float, kind: str, np_name: str) -> DType:
    return DType(name=name, bits=bits, kind=kind, np_name=np_name)


f64 = _d("f64", 64, "float", "float64")
f32 = _d("f32", 32, "float", "float32")
f16 = _d("f16", 16, "float", "float16")
bf16 = _d("bf16", 16, "float", "float32")  # numpy has no bfloat16: held rounded in f32
i64 = _d("i64", 64, "int", "int64")
i32 = _d("i32", 32, "int", "int32")
i16 = _d("i16", 16, "int", "int16")
i8 = _d("i8", 8, "int", "int8")
u8 = _d("u8", 8, "uint", "uint8")
i4 = _d("i4", 4, "int", "int8")   # held one per int8; packed layouts are explicit ops
u4 = _d("u4", 4, "uint", "uint8")
boolean = _d("bool", 8, "bool", "bool")

_SCALARS = {d.name: d for d in (f64, f32, f16, bf16, i64, i32, i16, i8, u8, i4, u4, boolean)}

# OCP Microscaling (MX) v1.0 element formats: (element bits, element name).
MX_ELEMENTS = {
    "mxfp8e4m3": (8, "fp8e4m3"), "mxfp8e5m2": (8, "fp8e5m2"),
    "mxfp6e3m2": (6, "fp6e3m2"), "mxfp6e2m3": (6, "fp6e2m3"),
    "mxfp4": (4, "fp4e2m1"), "mxint8": (8, "int8"),
}
MX_BLOCK = 32  # OCP MX spec v1.0: k = 32 elements share one E8M0 scale


def bfp(mantissa_bits: int, block: int) -> DType:
    """Block floating point `BFP[p|8]{n}`: p-bit mantissas (sign included)
    sharing an 8-bit exponent per block of n (d-Matrix naming; BFP16 = p 8)."""
    if not (2 <= mantissa_bits <= 16 and 1 <= block <= 4096):
        raise IRError(f"bfp: mantissa bits {mantissa_bits} / block {block} out of range")
    return DType(name=f"bfp{mantissa_bits}b{block}", bits=mantissa_bits + 8 / block,
                 kind="block", block=block, scale_bits=8, elem=f"int{mantissa_bits}")


def mx(name: str) -> DType:
    """An OCP MX format (block 32, E8M0 shared scale)."""
    if name not in MX_ELEMENTS:
        raise IRError(f"unknown MX format {name!r}; known: {', '.join(MX_ELEMENTS)}")
    bits, elem = MX_ELEMENTS[name]
    return DType(name=name, bits=bits + 8 / MX_BLOCK, kind="block", block=MX_BLOCK,
                 scale_bits=8, elem=elem)


_BFP_RE = re.compile(r"bfp(\d+)b(\d+)$")


def parse_dtype(name: str) -> DType:
    """The dtype written `name` in the text form."""
    if name in _SCALARS:
        return _SCALARS[name]
    if name in MX_ELEMENTS:
        return mx(name)
    m = _BFP_RE.match(name)
    if m:
        return bfp(int(m.group(1)), int(m.group(2)))
    raise IRError(f"unknown dtype {name!r}")


def is_dtype_name(name: str) -> bool:
    try:
        parse_dtype(name)
    except IRError:
        return False
    return True


_TORCH_NAMES = {
    "float64": f64, "float32": f32, "float16": f16, "bfloat16": bf16, "int64": i64,
    "int32": i32, "int16": i16, "int8": i8, "uint8": u8, "bool": boolean,
}


def from_torch(dtype: object) -> DType:
    """The llmc dtype of a torch dtype (torch.float32 -> f32)."""
    name = str(dtype).removeprefix("torch.")
    if name not in _TORCH_NAMES:
        raise IRError(f"torch dtype {dtype} has no llmc equivalent")
    return _TORCH_NAMES[name]


def round_bf16(x: np.ndarray) -> np.ndarray:
    """Round float32 values to the nearest bfloat16 (ties to even), kept in f32."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32)
    rounding = ((bits >> 16) & 1) + np.uint32(0x7FFF)
    out = ((bits + rounding) & np.uint32(0xFFFF0000)).view(np.float32)
    return np.where(np.isnan(x), np.float32(np.nan), out)
