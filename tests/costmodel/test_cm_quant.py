"""--quant specs: byte widths of weights, KV cache and activations."""

from __future__ import annotations

import pytest

from llmc.costmodel.precision import compute_class, parse_quant
from llmc.errors import UsageError
from llmc.ir.dtypes import bf16, i8


@pytest.mark.parametrize("spec, weight, kv, act", [
    ("bf16", 16, 16, "bf16"),
    ("fp8", 8, 8, "fp8"),
    ("int8", 8, 8, "i8"),
    ("int4", 4.125, 4.125, "bf16"),
    ("w4a16", 4.125, 16, "bf16"),
    ("w8a8", 8, 16, "i8"),
    ("w4a8", 4.125, 16, "i8"),
    ("bfp12-kv", 16, 4.25, "bf16"),
    ("bfp16-kv", 16, 8.25, "bf16"),
    ("w4a16+int4-kv", 4.125, 4.125, "bf16"),
    ("w4a16,bfp4b64-kv", 4.125, 4.125, "bf16"),
    ("mxfp4-w", 4.25, 16, "bf16"),
    ("f32", 32, 32, "f32"),
])
def test_specs(spec: str, weight: float, kv: float, act: str) -> None:
    p = parse_quant(spec)
    assert (p.weight.bits, p.kv.bits, p.act.name) == (weight, kv, act)
    assert p.spec == spec


def test_device_default_then_override() -> None:
    assert parse_quant(None, "int8").weight == i8
    p = parse_quant("bfp12-kv", "int8")                # the NPU's int8, KV in BFP12
    assert p.weight == i8 and p.kv.bits == 4.25
    assert parse_quant("2:4").sparse and not parse_quant("bf16").sparse


@pytest.mark.parametrize("spec", ["int3", "w3a16", "w4a2", "", "bf16+", "bogus-kv"])
def test_bad_specs(spec: str) -> None:
    with pytest.raises(UsageError):
        parse_quant(spec)


def test_compute_class() -> None:
    assert compute_class(bf16, parse_quant("int4").weight) == "bf16"   # weight-only int4
    assert compute_class(i8, parse_quant("int4").weight) == "int8"     # w4a8
    assert compute_class(i8, parse_quant("mxfp4-w").weight) == "int8"  # HNLPU: fp4 x int8
    assert compute_class(parse_quant("fp8").act, parse_quant("fp8").weight) == "fp8"


def test_a_quantized_graph_is_costed_as_served_not_in_float32() -> None:
    """A w4a16 graph keeps its int4 weights and bf16 scales; the float32 the
    trace left everywhere else is costed at the device's default (bf16), so
    its linears run on bf16 tensor cores, as `--quant w4a16` assumes."""
    import llmc
    from llmc.costmodel.report import _precision
    from llmc.costmodel.workload import records, retype
    from llmc.hw.database import get_device

    g = llmc.quantize("llama-tiny", "w4a16", seq_len=16)
    p, why = _precision(None, get_device("a100"), [g])
    assert p.as_is and "float32" in why
    recs = [r for r in records(retype(g, p), fuse=False) if r.op == "wq_linear"]
    assert recs and all(r.compute == "bf16" for r in recs)
    kept = {n.type.dtype.name for n in retype(g, p).param_nodes if "int4" in n.attrs["name"]}
    assert kept == {"u8"}                                   # packed weights untouched
