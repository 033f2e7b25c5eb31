"""The scheme registry: every quantization scheme llmc knows, as data.

A scheme says how weights, linear-layer activations and the KV cache are
stored, whether K/V channels are reordered (k-sort), and whether the graph is
lowered to integer-only arithmetic. `get_scheme(name)` resolves names such as
`bfp16`, `bfp12-ksort`, `mxfp4`, `w4a16`, `w4a16g128`, `w4a8`, `w8a8-int`;
unknown names list the valid ones.

This is the only place a scheme name gets a meaning: `llmc compile --quant`
runs the scheme's passes, and the cost model (`llmc report --quant`) runs the
same passes on the graph it costs and reads the storage widths it summarises
(weights with their group scales, KV cache, activations) from `Scheme.storage`.
The cost model's plain storage formats (`int8`, `fp8`, `bfp4b32-kv`, ...) are
what-ifs for sweeps, never scheme names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from llmc.errors import UsageError
from llmc.ir import dtypes
from llmc.ir.dtypes import DType, bfp, mx


@dataclass(frozen=True)
class IntWeights:
    """Integer weights: `bits` 4 or 8, symmetric, with one scale per `group`
    input elements (0: one per output channel); `method` "rtn" (round to
    nearest) or "gptq" (Frantar et al. 2023: error compensation on calibration
    data's Hessian)."""

    bits: int
    group: int = 0
    method: str = "rtn"


@dataclass(frozen=True)
class Scheme:
    """weights: a block dtype (bfp/mx) or IntWeights, None = float;
    acts: block dtype for every linear layer's input, None = float;
    kv: block dtype of the K/V cache, None = float (integer schemes: i8);
    ksort: reorder K (with Q) and V (with O) channels so similar magnitudes share
    a block (Trukhanov & Soloveychik 2024); integer: lower to integer-only
    arithmetic (I-BERT / MobileQuant) with static ranges from calibration;
    smooth: SmoothQuant migration strength (0 = off) applied before lowering."""

    name: str
    doc: str
    weights: DType | IntWeights | None = None
    acts: DType | None = None
    kv: DType | None = None
    ksort: bool = False
    integer: bool = False
    smooth: float = 0.0

    @property
    def needs_calibration(self) -> bool:
        w = self.weights
        return self.integer or self.ksort or (isinstance(w, IntWeights) and w.method == "gptq")

    @property
    def storage(self) -> Storage:
        """The widths the passes store: weight matrices with their scales, the
        KV cache and the linear layers' inputs (None: left in float)."""
        w = self.weights
        if isinstance(w, IntWeights):
            w = int_weight_dtype(w, self.integer)
        if self.integer:  # intlower.IntConfig: i8 matmul inputs and KV cache
            return Storage(w, dtypes.i8, dtypes.i8)
        return Storage(w, self.kv, self.acts)


@dataclass(frozen=True)
class Storage:
    """Storage dtypes of a scheme: weight matrices (their per-group scales
    amortised into the bits), KV cache, linear inputs; None = float."""

    weight: DType | None
    kv: DType | None
    act: DType | None


def int_weight_dtype(w: IntWeights, integer: bool) -> DType:
    """Bits per weight of integer weights as blockq/intlower store them: the
    integer plus its group scale (weight-only: a bf16 scale; integer-only int4:
    a u8 sub-scale; docs/quant_layouts.md section 3). Per-channel scales (group
    0, one per output row) are not amortised: their bytes are in the graph."""
    if not w.group:
        return DType(f"int{w.bits}", w.bits, "int")
    scale_bits = 8 if integer else 16
    return DType(f"int{w.bits}g{w.group}", w.bits + scale_bits / w.group, "int")


BFP16, BFP12 = bfp(8, 16), bfp(4, 16)

_LIST = [
    Scheme("bfp16", "BFP16 (8-bit mantissas, block 16) weights, linear inputs and KV cache",
           weights=BFP16, acts=BFP16, kv=BFP16),
    Scheme("bfp12", "BFP16 weights and linear inputs; KV cache in BFP12 (4-bit mantissas, "
                    "block 16)", weights=BFP16, acts=BFP16, kv=BFP12),
    Scheme("bfp12-ksort", "bfp12 with k-sort: K/Q and V/O channels reordered at compile time "
                          "so channels of similar magnitude share a KV block",
           weights=BFP16, acts=BFP16, kv=BFP12, ksort=True),
    Scheme("kv-bfp12", "float weights and activations; KV cache in BFP12 (the KV-only "
                       "ablation)", kv=BFP12),
    Scheme("kv-bfp12-ksort", "kv-bfp12 with k-sort channel reordering", kv=BFP12, ksort=True),
    Scheme("kv-mxint8", "float weights and activations; KV cache in MXINT8 (int8 elements, "
                        "a power-of-two scale per 32)", kv=mx("mxint8")),
    Scheme("mxint8", "MXINT8 weights, linear inputs and KV cache", weights=mx("mxint8"),
           acts=mx("mxint8"), kv=mx("mxint8")),
    Scheme("mxfp8", "MXFP8 E4M3 weights, linear inputs and KV cache",
           weights=mx("mxfp8e4m3"), acts=mx("mxfp8e4m3"), kv=mx("mxfp8e4m3")),
    Scheme("mxfp6", "MXFP6 E2M3 weights, linear inputs and KV cache",
           weights=mx("mxfp6e2m3"), acts=mx("mxfp6e2m3"), kv=mx("mxfp6e2m3")),
    Scheme("mxfp4", "MXFP4 (E2M1) weights; MXFP8 E4M3 linear inputs and KV cache",
           weights=mx("mxfp4"), acts=mx("mxfp8e4m3"), kv=mx("mxfp8e4m3")),
    Scheme("w4a16", "int4 weights (GPTQ, group 64, packed two per byte), float activations",
           weights=IntWeights(4, 64, "gptq")),
    Scheme("w4a16-rtn", "int4 weights (round to nearest, group 64), float activations",
           weights=IntWeights(4, 64, "rtn")),
    Scheme("w8a16", "int8 weights (round to nearest, per channel), float activations",
           weights=IntWeights(8, 0, "rtn")),
    Scheme("w8a8-int", "integer-only: int8 weights (per channel) and activations, int32 "
                       "accumulation, i-exp softmax, integer RMSNorm/SiLU, int8 KV cache",
           weights=IntWeights(8, 0, "rtn"), integer=True),
    Scheme("w4a8", "integer-only with int4 weights (GPTQ, group 64 integer sub-scales, "
                   "packed) and int8 activations", weights=IntWeights(4, 64, "gptq"),
           integer=True),
]
SCHEMES: dict[str, Scheme] = {s.name: s for s in _LIST}

_GROUP = re.compile(r"^(w4a16|w4a16-rtn|w4a8)g(\d+)$")


def find_scheme(name: str) -> Scheme | None:
    """The scheme called `name`, or None when no scheme has that name;
    `w4a16g128`-style names pick the int4 group size."""
    if name in SCHEMES:
        return SCHEMES[name]
    m = _GROUP.match(name)
    if m:
        base, group = SCHEMES[m.group(1)], int(m.group(2))
        if group < 32 or group % 32:
            raise UsageError(f"scheme {name!r}: group {group} must be a multiple of 32")
        w = base.weights
        assert isinstance(w, IntWeights)
        return replace(base, name=name, weights=replace(w, group=group),
                       doc=base.doc.replace(f"group {w.group}", f"group {group}"))
    return None


def scheme_names() -> str:
    """The valid scheme names, for error messages."""
    return (f"{', '.join(SCHEMES)} (and w4a16gN / w4a16-rtngN / w4a8gN for int4 group "
            f"size N)")


def get_scheme(name: str | Scheme) -> Scheme:
    """The scheme called `name` (see `find_scheme`); unknown names list the schemes."""
    if isinstance(name, Scheme):
        return name
    s = find_scheme(name)
    if s is None:
        raise UsageError(f"unknown quantization scheme {name!r}; valid: {scheme_names()}. "
                         f"Storage formats (f32, bf16, fp8, int8, int4, bfp4b32-kv, 2:4, ...) "
                         f"are what-ifs for `llmc report --quant` and `llmc sweep`, not "
                         f"schemes")
    return s
