"""Block-format (BFP, OCP MX) weights on the gpu backend: the packing of
codes and shared exponents, the dequantising GEMM (with the activation
rounded to its block format in the kernel's prologue) and the gather from a
block-format embedding table, through Triton's interpreter on small odd
shapes, against the IR interpreter (float32 within 1e-5 relative, bf16
within 1e-2, the packed values bit-exact)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmc.backends.gpu import blockfmt
from llmc.ir import TensorType, dtypes, interpret
from llmc.ir.formats import quantize_block
from llmc.numerics import assert_close

pytest.importorskip("triton")

from llmc.backends.gpu.check import run_graph  # noqa: E402
from tests.backends.gpu.helpers import check, graph  # noqa: E402

f32, i64 = dtypes.f32, dtypes.i64
FORMATS = ["bfp8b16", "bfp4b16", "mxint8", "mxfp8e4m3", "mxfp8e5m2", "mxfp6e3m2", "mxfp6e2m3",
           "mxfp4"]


def rand(rng, *shape, scale: float = 1.0) -> np.ndarray:  # noqa: ANN001
    """Values exact in bf16, so both activation dtypes round the same inputs."""
    return dtypes.round_bf16((rng.standard_normal(shape) * scale).astype(np.float32))


@pytest.mark.parametrize("fmt", FORMATS)
def test_packing_round_trips_and_codes_are_the_formats(fmt):  # noqa: ANN001
    dt = dtypes.parse_dtype(fmt)
    rng = np.random.default_rng(1)
    v = rand(rng, 5, 96, scale=3.0)
    v[0, :32] = 0.0                                   # an all-zero block
    v[1, 3] = 1e-3                                    # a subnormal element in minifloats
    q = quantize_block(v, dt)
    f = blockfmt.block_format(dt)
    codes, exps = blockfmt.pack(q, f)
    assert exps.dtype == np.int8 and exps.shape == (5, 96 // dt.block)
    assert codes.shape == ((5, 48) if fmt == "mxfp4" else (5, 96))
    assert np.array_equal(blockfmt.unpack_stored(codes, exps, f), q)
    with pytest.raises(Exception, match="outside that format"):
        blockfmt.pack(v, f)                           # not rounded to the format first


def test_minifloat_codes_are_ocp_mx():
    f = blockfmt.block_format(dtypes.parse_dtype("mxfp8e4m3"))
    # a block whose largest magnitude is 448 = 1.75 * 2^8: X = 0, codes are E4M3's own
    v = np.zeros((1, 32), np.float32)
    v[0, :4] = [448.0, -1.0, 2.0 ** -9, 0.5]
    codes, exps = blockfmt.pack(v, f)
    assert exps[0, 0] == 0
    assert list(codes[0, :4]) == [0x7E, 0xB8, 0x01, 0x30]     # 0.1111.110, 1.0111.000, ...
    f4 = blockfmt.block_format(dtypes.parse_dtype("mxfp4"))
    v4 = np.zeros((1, 32), np.float32)
    v4[0, [0, 16]] = [6.0, -0.5]                       # E2M1 0.11.1 and 1.00.1
    codes4, _ = blockfmt.pack(v4, f4)
    assert codes4[0, 0] == (0x9 << 4) | 0x7            # elements 0 and 16 share byte 0


def _qlinear(b, rng, wfmt: str, afmt: str | None, epilogue: str = "none"):  # noqa: ANN001, ANN202
    M0, M1, K, N = 2, 5, 96, 37          # odd rows and columns, K not a tile multiple
    wdt = dtypes.parse_dtype(wfmt)
    w = b.param("w", TensorType((N, K), wdt), quantize_block(rand(rng, N, K, scale=0.2), wdt))
    x = b.input("x", TensorType((M0, M1, K), f32))
    vals = [rand(rng, M0, M1, K)]
    vals[0][0, 0, :32] = 0.0                          # an all-zero activation block
    if afmt:
        x = b.op("quantize", x, dtype=dtypes.parse_dtype(afmt), fusion=1)
    if epilogue == "bias":
        bias = b.param("bias", TensorType((N,), f32), rand(rng, N))
        return [b.op("qlinear", x, w, bias, fusion=0)], vals
    y = b.op("qlinear", x, w, fusion=0)
    if epilogue == "silu_mul":
        up = b.input("up", TensorType((M0, M1, N), f32))
        vals.append(rand(rng, M0, M1, N))
        y = b.op("mul", b.op("silu", y, fusion=0), up, fusion=0)
    return [y], vals


# the weight formats of `llmc compile --quant` (bfp16, bfp12, mxint8, mxfp8, mxfp6,
# mxfp4) with their activation formats, and the other MX element formats weight-only
SCHEMES = [("bfp8b16", "bfp8b16"), ("bfp4b16", None), ("mxint8", "mxint8"),
           ("mxfp8e4m3", "mxfp8e4m3"), ("mxfp8e5m2", None), ("mxfp6e2m3", "mxfp6e2m3"),
           ("mxfp6e3m2", None), ("mxfp4", "mxfp8e4m3")]


@pytest.mark.parametrize(("wfmt", "afmt"), SCHEMES)
def test_block_gemm_f32(tmp_path, wfmt, afmt):  # noqa: ANN001
    check(*graph(lambda b, rng: _qlinear(b, rng, wfmt, afmt)), tmp_path, "f32")


@pytest.mark.parametrize(("wfmt", "afmt", "epilogue"),
                         [("bfp8b16", "bfp8b16", "silu_mul"), ("mxfp4", "mxfp8e4m3", "bias")])
def test_block_gemm_bf16_with_epilogue(tmp_path, wfmt, afmt, epilogue):  # noqa: ANN001
    check(*graph(lambda b, rng: _qlinear(b, rng, wfmt, afmt, epilogue)), tmp_path, "bf16")


def test_the_activation_quantize_is_the_gemms_prologue(tmp_path):  # noqa: ANN001
    """Two projections of one quantized x: two GEMM kernels, no quantize step;
    the kernel reads the packed weight (codes, exponents), not floats."""
    def build(b, rng):  # noqa: ANN001, ANN202
        wdt = dtypes.parse_dtype("mxfp4")
        x = b.input("x", TensorType((3, 64), f32))
        xq = b.op("quantize", x, dtype=dtypes.parse_dtype("mxfp8e4m3"), fusion=0)
        ws = [b.param(f"w{i}", TensorType((24, 64), wdt),
                      quantize_block(rand(rng, 24, 64), wdt)) for i in range(2)]
        return [b.op("qlinear", xq, w, fusion=i + 1) for i, w in enumerate(ws)], [rand(rng, 3, 64)]
    g, xs = graph(build)
    check(g, xs, tmp_path, "f32")
    program = json.loads((tmp_path / "program.json").read_text())
    steps = program["phases"]["prefill"]["steps"]
    assert [s.get("kernel") for s in steps] == ["gemm_mxfp4_xmxfp8e4m3"] * 2
    assert program["block_weights"]["w0"] == {"dtype": "mxfp4", "codes": "w0.codes",
                                              "exps": "w0.exps"}
    assert program["weights"]["w0.codes"] == "uint8" and program["weights"]["w0.exps"] == "int8"
    src = (tmp_path / "kernels/gemm.py").read_text()
    assert "def gemm_mxfp4_xmxfp8e4m3(" in src and "x rounded to mxfp8e4m3 in registers" in src
    assert "c = tl.where(rk[:, None] % 32 < 16, byte & 0xF, (byte >> 4) & 0xF)" in src


@pytest.mark.parametrize("fmt", ["bfp8b16", "mxint8", "mxfp4"])
@pytest.mark.parametrize("act", ["f32", "bf16"])
def test_block_embedding_then_dequantize(tmp_path, fmt, act):  # noqa: ANN001
    def build(b, rng):  # noqa: ANN001, ANN202
        dt = dtypes.parse_dtype(fmt)
        table = b.param("emb", TensorType((19, 64), dt), quantize_block(rand(rng, 19, 64), dt))
        idx = b.input("idx", TensorType((2, 7), i64))
        rows = b.op("embedding", table, idx, fusion=0)
        return [b.op("dequantize", rows, fusion=0)], [rng.integers(0, 19, (2, 7))]
    g, xs = graph(build)
    (ref,) = interpret(g, xs)
    (got,) = run_graph(g, xs, tmp_path, act=act)
    assert_close(got, ref, "i8" if act == "f32" else act)   # f32: bit for bit
    steps = json.loads((tmp_path / "program.json").read_text())["phases"]["prefill"]["steps"]
    assert [s.get("kernel") for s in steps] == [f"embedding_{fmt}"]
