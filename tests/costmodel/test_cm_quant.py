"""--quant: one vocabulary of schemes (llmc.passes.quant.schemes) and
storage formats (what-ifs), byte widths of weights, KV cache and activations."""

from __future__ import annotations

import pytest

from llmc.costmodel.precision import FORMATS, compute_class, parse_quant
from llmc.errors import UsageError
from llmc.ir.dtypes import bf16, i8
from llmc.passes.quant.schemes import BFP12, BFP16, SCHEMES, find_scheme, get_scheme


@pytest.mark.parametrize("spec, weight, kv, act", [
    ("bf16", 16, 16, "bf16"),
    ("fp8", 8, 8, "fp8"),
    ("int8", 8, 8, "i8"),
    ("int4", 4.125, 4.125, "bf16"),
    ("int4-w+int8-a", 4.125, 16, "i8"),
    ("bfp12-kv", 16, 4.5, "bf16"),
    ("bfp16-kv", 16, 8.5, "bf16"),
    ("bfp4b32-kv", 16, 4.25, "bf16"),
    ("int4-w+int4-kv", 4.125, 4.125, "bf16"),
    ("int4-w,bfp4b64-kv", 4.125, 4.125, "bf16"),
    ("mxfp4-w", 4.25, 16, "bf16"),
    ("f32", 32, 32, "f32"),
])
def test_format_specs(spec: str, weight: float, kv: float, act: str) -> None:
    p = parse_quant(spec)
    assert (p.weight.bits, p.kv.bits, p.act.name) == (weight, kv, act)
    assert p.spec == spec and p.scheme is None and not p.as_is


@pytest.mark.parametrize("name, weight, kv, act", [
    ("bfp16", 8.5, 8.5, "bfp8b16"),                 # BFP16 = bfp8b16 everywhere
    ("bfp12", 8.5, 4.5, "bfp8b16"),                 # BFP16 weights, BFP12 (bfp4b16) KV
    ("kv-bfp12", 16, 4.5, "bf16"),
    ("mxfp4", 4.25, 8.25, "mxfp8e4m3"),
    ("w4a16", 4.25, 16, "bf16"),                    # int4, a bf16 scale per 64 (GPTQ)
    ("w4a16g128", 4.125, 16, "bf16"),
    ("w8a16", 8, 16, "bf16"),
    ("w8a8-int", 8, 8, "i8"),                       # integer-only: int8 KV cache
    ("w4a8", 4.125, 8, "i8"),                       # int4 + a u8 sub-scale per 64
])
def test_schemes_are_costed_as_the_passes_store_them(name: str, weight: float, kv: float,
                                                    act: str) -> None:
    p = parse_quant(name)
    assert p.scheme == get_scheme(name)
    assert (p.weight.bits, p.kv.bits, p.act.name) == (weight, kv, act)
    assert p.as_is and p.floats.weight == bf16          # what stays float: the default


def test_one_vocabulary() -> None:
    """Every scheme name means the scheme in both paths; no format shares a
    name with a scheme; the block formats named after schemes are theirs."""
    for name in [*SCHEMES, "w4a16g128", "w4a16-rtng32", "w4a8g128"]:
        assert parse_quant(name).scheme == get_scheme(name)
        assert parse_quant(name.upper()).scheme == get_scheme(name)
    assert not set(FORMATS) & set(SCHEMES)
    assert all(find_scheme(f) is None for f in FORMATS)
    assert parse_quant("bfp12-kv").kv == BFP12 == SCHEMES["bfp12"].kv
    assert parse_quant("bfp16-w").weight == BFP16 == SCHEMES["bfp16"].weights
    assert parse_quant("mxfp4-w").weight == SCHEMES["mxfp4"].weights
    with pytest.raises(UsageError, match="w4a16 is a quantization scheme"):
        parse_quant("w4a16+int4-kv")                   # a scheme is the whole spec


def test_unknown_names_list_schemes_and_formats() -> None:
    with pytest.raises(UsageError) as exc:
        parse_quant("w8a8")
    msg = str(exc.value)
    assert all(s in msg for s in SCHEMES) and all(f in msg for f in FORMATS)
    with pytest.raises(UsageError) as exc:
        get_scheme("int8")                              # compile's path names both too
    assert "w8a8-int" in str(exc.value) and "what-ifs" in str(exc.value)


def test_device_default_then_override() -> None:
    assert parse_quant(None, "int8").weight == i8
    p = parse_quant("bfp12-kv", "int8")                # the NPU's int8, KV in BFP12
    assert p.weight == i8 and p.kv.bits == 4.5
    assert parse_quant("2:4").sparse and not parse_quant("bf16").sparse
    assert parse_quant("w4a16", "int8").floats.weight == i8


@pytest.mark.parametrize("spec", ["int3", "w3a16", "w4a2", "w8a8", "", "bf16+", "bogus-kv",
                                  "w4a16g48"])
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
    from llmc.costmodel.report import costed_precision
    from llmc.costmodel.workload import records, retype
    from llmc.hw.database import get_device

    g = llmc.quantize("llama-tiny", "w4a16", seq_len=16)
    p, why = costed_precision(None, get_device("a100"), [g])
    assert p.as_is and "float32" in why
    recs = [r for r in records(retype(g, p), fuse=False) if r.op == "wq_linear"]
    assert recs and all(r.compute == "bf16" for r in recs)
    kept = {n.type.dtype.name for n in retype(g, p).param_nodes if "int4" in n.attrs["name"]}
    assert kept == {"u8"}                                   # packed weights untouched


def test_f32_asked_for_runs_at_the_f32_peak() -> None:
    """--quant f32 puts linears on the A100's f32 units (19.5 TFLOP/s, not the
    bf16 tensor cores), and so does a graph whose parameters are bf16 and
    that upcasts a product to f32 on purpose; a traced graph's float32 is the
    reference precision, costed at the device's default (bf16)."""
    from llmc.costmodel.report import build_report
    from llmc.frontend.zoo.config import get_config
    from llmc.hw.database import get_device
    from llmc.ir.dtypes import f32
    from llmc.ir.graph import Builder, Graph
    from llmc.ir.types import TensorType

    a100 = get_device("a100")
    assert a100.compute["f32"].flops_per_s == 19.5e12
    cfg = get_config("llama-2-7b")
    r = build_report(None, None, cfg, "a100", prompt=256, quant="f32")
    mm = [o for o in r.prefill.ops if o.rec.op in ("linear", "attention")]
    assert mm and all(o.unit == "f32" and o.peak_flops_per_s == 19.5e12 for o in mm)
    assert build_report(None, None, cfg, "a100", prompt=256).prefill.ops[0].unit != "f32"

    T, h = 256, 1024
    g = Graph("mixed")
    b = Builder(g)
    x = b.input("x", TensorType((T, h), bf16))
    w = b.param("w", TensorType((h, h), bf16), None)
    y = b.add("linear", [x, w], loc="half").out()
    up = b.add("cast", [y], {"dtype": f32}).out()
    b.add("linear", [up, b.add("cast", [w], {"dtype": f32}).out()], loc="full")
    r = build_report(g, None, None, "a100")
    unit = {o.rec.loc: o.unit for o in r.prefill.ops if o.rec.op == "linear"}
    assert unit == {"half": "bf16", "full": "f32"}
    assert "deliberate" in r.notes[0]


def test_a_quantized_graph_reports_the_kv_cache_it_holds() -> None:
    """Without --quant, a graph whose passes stored the KV cache in BFP12
    reports that cache's bytes per token (it once reported bf16's)."""
    from llmc.costmodel.report import build_report
    from llmc.frontend.zoo.config import get_config
    from llmc.passes.quant import quantize_graphs
    from tests.conftest import traced

    cfg = get_config("llama-tiny")
    q = quantize_graphs({ph: traced("llama-tiny", ph).graph for ph in ("prefill", "decode")},
                        "kv-bfp12")
    r = build_report(q["prefill"], q["decode"], cfg, "a100", batch=2, prompt=8, context=8)
    assert r.precision.as_is and r.precision.kv == BFP12
    assert r.kv_bytes_per_token == 2 * cfg.n_layers * cfg.n_kv_heads * cfg.head_dim * 4.5 / 8
