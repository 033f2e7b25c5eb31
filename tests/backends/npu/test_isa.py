"""The NPU's instructions against their plain-Python references, the binary
and assembly forms, and programs the NPU must refuse."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmc.backends.npu import ref
from llmc.backends.npu.asm import assemble, disassemble
from llmc.backends.npu.binary import HEADER_BYTES, decode, encode
from llmc.backends.npu.isa import (
    ALU_OPS,
    DRAM,
    DTYPE_CODE,
    I4X2,
    OPS,
    SPAD,
    Desc,
    Image,
    Instr,
    NpuError,
    Program,
    Target,
)
from llmc.backends.npu.iss import Machine
from llmc.ir.pack import pack_int4
from llmc.sim.hardware import from_device

HW = from_device("edge-npu")
SPAD_BYTES, DRAM_BYTES = 1 << 16, 1 << 14
TARGET = Target(128, 128, 256, SPAD_BYTES, DRAM_BYTES, 1.3733e9)


def dense(space: int, dtype: str, base: int, shape: tuple[int, ...], **regs: int) -> Desc:
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= n
    return Desc(space, DTYPE_CODE[dtype], base, tuple(shape), tuple(reversed(strides)), **regs)


def image_of(descs: list[Desc], instrs: list[Instr]) -> Image:
    p = Program("t", list(descs), [*instrs, Instr("halt")])
    return Image(TARGET, [p])


def run_both(descs: list[Desc], instrs: list[Instr], seed: int = 0,
             fill: dict[int, bytes] | None = None) -> tuple[Machine, dict]:
    """Run a program on the simulator and on the reference from the same random
    memories; returns both (the caller compares them)."""
    image = decode(encode(image_of(descs, instrs)))
    rng = np.random.default_rng(seed)
    dram = rng.integers(0, 256, DRAM_BYTES, dtype=np.uint8)
    m = Machine(image, HW, dram.copy())
    m.spad[:] = rng.integers(0, 256, SPAD_BYTES, dtype=np.uint8)
    for at, data in (fill or {}).items():
        m.spad[at:at + len(data)] = np.frombuffer(data, np.uint8)
    mem = {DRAM: bytearray(m.dram.tobytes()), SPAD: bytearray(m.spad.tobytes())}
    m.run("t")
    ref.run_program(image.programs[0], mem)
    return m, mem


def assert_same(m: Machine, mem: dict) -> None:
    assert m.dram.tobytes() == bytes(mem[DRAM])
    assert m.spad.tobytes() == bytes(mem[SPAD])


def i(op: str, *args: int, flags: tuple[int, int, int] = (0, 0, 0)) -> Instr:
    return Instr(op, tuple(args), flags)


# ---- every instruction against the reference ---------------------------------------


def test_dma_strided_both_ways() -> None:
    src = Desc(DRAM, DTYPE_CODE["i16"], 64, (3, 5), (1, 7))      # transposed, strided
    dst = dense(SPAD, "i16", 256, (3, 5))
    back = dense(DRAM, "i16", 4096, (3, 5))
    m, mem = run_both([dst, src, back], [i("dma", 0, 1), i("wait", 0), i("dma", 2, 0)])
    assert_same(m, mem)
    assert m.view(dst).tolist() == m.view(src).tolist()


def test_gather_rows() -> None:
    table = dense(DRAM, "i16", 0, (10, 4))
    idx = dense(SPAD, "i32", 0, (3,))
    dst = dense(SPAD, "i16", 64, (3, 4))
    fill = {0: np.array([7, 0, 9], np.int32).tobytes()}
    m, mem = run_both([dst, table, idx], [i("gather", 0, 1, 2)], fill=fill)
    assert_same(m, mem)


@pytest.mark.parametrize("int4,grouped,accumulate,adt", [
    (False, False, False, "i8"), (False, False, True, "u16"), (True, True, False, "i8"),
    (True, False, True, "i8"), (False, True, False, "i16")])
def test_matmul(int4: bool, grouped: bool, accumulate: bool, adt: str) -> None:
    m_, n, k, group = 3, 5, 64, 32
    a = dense(SPAD, adt, 0, (m_, k))
    b = dense(SPAD, "u8" if int4 else "i8", 1024, (n, k // 2 if int4 else k))
    if int4:
        b = Desc(SPAD, I4X2, b.base, b.shape, b.strides)
    acc = dense(SPAD, "i32", 4096, (m_, n))
    descs = [acc, a, b]
    gs = -1
    if grouped:
        descs.append(dense(SPAD, "u8", 8192, (n, k // group)))
        gs = 3
    ins = i("matmul", 0, 1, 2, gs, group if grouped else 0, flags=(int(accumulate), 0, 0))
    m, mem = run_both(descs, [ins], seed=3)
    assert_same(m, mem)


def test_matmul_int4_matches_the_ir_packing() -> None:
    rng = np.random.default_rng(1)
    w = rng.integers(-8, 8, (4, 32))
    x = rng.integers(-127, 128, (2, 32))
    packed = pack_int4(w)
    fill = {0: x.astype(np.int8).tobytes(), 256: packed.tobytes()}
    descs = [dense(SPAD, "i32", 512, (2, 4)), dense(SPAD, "i8", 0, (2, 32)),
             Desc(SPAD, I4X2, 256, (4, 16), (16, 1))]
    m, mem = run_both(descs, [i("matmul", 0, 1, 2, -1, 0)], fill=fill)
    assert_same(m, mem)
    assert m.view(descs[0]).tolist() == (x @ w.T).tolist()


@pytest.mark.parametrize("per_channel", [False, True])
def test_requant(per_channel: bool) -> None:
    src = dense(SPAD, "i32", 0, (4, 6))
    dst = dense(SPAD, "i8", 256, (4, 6))
    descs = [dst, src]
    mult = -1
    if per_channel:
        descs.append(dense(SPAD, "i32", 512, (6,)))
        mult = 2
    m, mem = run_both(descs, [i("requant", 0, 1, mult, 1 << 20, 25, 3)],
                      fill={512: np.arange(1, 7, dtype=np.int32).tobytes() * 1})
    assert_same(m, mem)


@pytest.mark.parametrize("op", ALU_OPS)
def test_valu(op: str) -> None:
    unary = op in ("neg", "mov")
    out = "bool" if op in ("le", "lt", "eq", "ge", "gt", "ne") else "i16"
    dst = dense(SPAD, out, 0, (2, 3, 4))
    a = dense(SPAD, "i8", 256, (2, 3, 4))
    b = Desc(SPAD, DTYPE_CODE["i8"], 512, (3, 1), (1, 0))   # broadcast along two dims
    ins = i("valu", 0, 1, -1 if unary else 2, flags=(ALU_OPS.index(op), 0, 0))
    m, mem = run_both([dst, a, b], [ins], seed=5)
    assert_same(m, mem)


def test_viota_vreduce_vlut() -> None:
    descs = [dense(SPAD, "i64", 0, (2, 5)), dense(SPAD, "i32", 128, (3, 7)),
             dense(SPAD, "i32", 256, (3, 1)), dense(SPAD, "i16", 384, (3, 1)),
             dense(SPAD, "u8", 512, (4, 4)), dense(SPAD, "i16", 640, (256,)),
             dense(SPAD, "i16", 1280, (4, 4))]
    ins = [i("viota", 0, -3, 7), i("vreduce", 2, 1, flags=(0, 0, 0)),
           i("vreduce", 3, 1, flags=(1, 0, 0)), i("vlut", 6, 4, 5, 0)]
    m, mem = run_both(descs, ins, seed=7)
    assert_same(m, mem)


def test_vrmsnorm_vsilu() -> None:
    x = dense(SPAD, "i16", 0, (3, 8))
    g = dense(SPAD, "i32", 128, (8,))
    y = dense(SPAD, "i8", 256, (3, 8))
    s = dense(SPAD, "i16", 512, (3, 8))
    fill = {128: (np.arange(8, dtype=np.int32) * 5000 + 100).tobytes()}
    ins = [i("vrmsnorm", 2, 0, 1, 1000, 7, 15),
           i("vsilu", 3, 0, 1897965505, 29, 14, 1089942321, 45)]
    m, mem = run_both([x, g, y, s], ins, fill=fill, seed=11)
    assert_same(m, mem)


@pytest.mark.parametrize("causal,masked", [(True, False), (False, True)])
def test_vsoftmax(causal: bool, masked: bool) -> None:
    s = dense(SPAD, "i32", 0, (3, 6))
    p = dense(SPAD, "u16", 256, (3, 6))
    mask = Desc(SPAD, DTYPE_CODE["bool"], 512, (1, 6), (0, 1))
    fill = {512: bytes([1, 1, 0, 1, 1, 1])}
    ins = i("vsoftmax", 1, 0, 2 if masked else -1, 1615132465, 40, 14, 16,
            flags=(int(causal), 0, 0))
    m, mem = run_both([s, p, mask], [ins], fill=fill, seed=13)
    assert_same(m, mem)
    assert m.view(p).max() > 0


def test_loop_with_ping_pong_descriptors() -> None:
    # r1 = 0..3: copy DRAM rows r1 into SPAD buffer (r1 & 1), then into row r1 of out
    src = dense(DRAM, "i8", 0, (1, 16), reg_a=1, step_a=16)
    buf = dense(SPAD, "i8", 0, (1, 16), reg_pp=1, pp_step=64)
    out = dense(SPAD, "i8", 1024, (1, 16), reg_a=1, step_a=16)
    prog = [i("loop", 1, 4), i("dma", 1, 0), i("wait", 0), i("valu", 2, 1, -1,
                                                                 flags=(ALU_OPS.index("mov"),
                                                                        0, 0)),
            i("endloop", 1)]
    m, mem = run_both([src, buf, out], prog)
    assert_same(m, mem)
    assert m.spad[1024:1088].tobytes() == m.dram[:64].tobytes()


def test_every_instruction_has_a_reference_test() -> None:
    tested = {"dma", "gather", "matmul", "requant", "valu", "viota", "vreduce", "vlut",
              "vrmsnorm", "vsilu", "vsoftmax", "loop", "endloop", "wait", "halt", "ldreg",
              "nop", "barrier"}
    assert set(OPS) == tested


def test_ldreg_moves_a_descriptor_and_checks_it_at_run_time() -> None:
    pos = dense(SPAD, "i64", 0, (1,))
    row = dense(DRAM, "i8", 0, (1, 8), reg_a=8, step_a=8)
    src = dense(SPAD, "i8", 64, (1, 8))
    prog = [i("ldreg", 8, 0), i("dma", 1, 2), i("barrier"), i("nop")]
    m, mem = run_both([pos, row, src], prog, fill={0: np.int64(5).tobytes()})
    assert_same(m, mem)
    assert m.dram[40:48].tobytes() == m.spad[64:72].tobytes()
    image = decode(encode(image_of([pos, row, src], prog)))
    far = Machine(image, HW)
    far.spad[0:8] = np.frombuffer(np.int64(DRAM_BYTES // 8).tobytes(), np.uint8)
    with pytest.raises(NpuError, match=r"at run time: dram bytes \[0x4000, 0x4008\) are "
                                       r"outside the 0x4000-byte dram"):
        far.run("t")


# ---- faults -------------------------------------------------------------------------


def test_compute_reading_a_buffer_in_flight_is_a_fault() -> None:
    src = dense(DRAM, "i8", 0, (4, 4))
    buf = dense(SPAD, "i8", 0, (4, 4))
    out = dense(SPAD, "i8", 64, (4, 4))
    prog = [i("dma", 1, 0), i("valu", 2, 1, -1, flags=(ALU_OPS.index("mov"), 0, 0))]
    m = Machine(decode(encode(image_of([src, buf, out], prog))), HW)
    with pytest.raises(NpuError, match=r"instruction 1 \(valu\) touches a .* while a DMA "
                                       r"still writes .*missing WAIT"):
        m.run("t")


def test_a_run_past_its_instruction_limit_is_refused() -> None:
    prog = [i("loop", 1, 2**30), i("nop"), i("endloop", 1)]
    m = Machine(decode(encode(image_of([], prog))), HW)
    with pytest.raises(NpuError, match="t: more than 1,000 instructions run"):
        m.run("t", limit=1000)


def test_gather_index_out_of_range_is_a_fault() -> None:
    table = dense(DRAM, "i16", 0, (10, 4))
    idx = dense(SPAD, "i32", 0, (2,))
    dst = dense(SPAD, "i16", 64, (2, 4))
    m = Machine(decode(encode(image_of([dst, table, idx], [i("gather", 0, 1, 2)]))), HW)
    m.spad[0:8] = np.frombuffer(np.array([3, 10], np.int32).tobytes(), np.uint8)
    with pytest.raises(NpuError, match="gather index 10 outside the table's 10 rows"):
        m.run("t")


# ---- binary and assembly ----------------------------------------------------------------


def sample_image() -> Image:
    descs = [dense(SPAD, "i32", 4096, (3, 5)), dense(SPAD, "i8", 0, (3, 64)),
             Desc(SPAD, I4X2, 1024, (5, 32), (32, 1), reg_pp=1, pp_step=256),
             dense(SPAD, "u8", 8192, (5, 2)),
             Desc(DRAM, I4X2, 0, (5, 32), (32, 1), reg_a=1, step_a=160)]
    prog = [i("loop", 1, 2), i("dma", 2, 4), i("wait", 0),
            i("matmul", 0, 1, 2, 3, 32, flags=(1, 0, 0)), i("endloop", 1),
            i("valu", 1, 1, 1, flags=(ALU_OPS.index("max"), 0, 0)),
            i("vsoftmax", 0, 0, -1, 3, 4, 14, 16, flags=(1, 0, 0))]
    return Image(TARGET, [Program("prefill", descs, [*prog, Instr("halt")]),
                          Program("decode", descs[:2], [i("barrier"), Instr("halt")])])


def test_assembler_disassembler_round_trip() -> None:
    image = sample_image()
    data = encode(image)
    text = disassemble(decode(data))
    assert encode(assemble(text)) == data
    assert disassemble(assemble(text)) == text
    assert "matmul acc=d0 a=d1 b=d2 gs=d3 group=32 accumulate=1" in text


def _patched(data: bytes, at: int, new: bytes, fix_crc: bool = True) -> bytes:
    out = bytearray(data)
    out[at:at + len(new)] = new
    if fix_crc:
        body = bytes(out[HEADER_BYTES:])
        out[HEADER_BYTES - 4:HEADER_BYTES] = struct.pack("<I", zlib.crc32(body))
    return bytes(out)


def test_bad_programs_are_refused_precisely() -> None:
    data = encode(sample_image())
    with pytest.raises(NpuError, match="not an llmc NPU program: magic"):
        decode(b"XXXXXXXX" + data[8:])
    with pytest.raises(NpuError, match="NPU program version 9; this llmc reads version 1"):
        decode(data[:8] + struct.pack("<H", 9) + data[10:])
    with pytest.raises(NpuError, match="checksum mismatch"):
        decode(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(NpuError, match="truncated or padded: the header says"):
        decode(data[:-10])
    with pytest.raises(NpuError, match="program too short"):
        decode(data[:20])
    first_instr = HEADER_BYTES + 40 + 5 * 104
    with pytest.raises(NpuError, match=r"prefill: instruction 0 has unknown opcode 0x7f"):
        decode(_patched(data, first_instr, b"\x7f"))
    # descriptor 0's base moved past the scratchpad's end
    with pytest.raises(NpuError, match=r"prefill: descriptor 0: spad bytes \[0x10000, "
                                       r"0x1003c\) are outside the 0x10000-byte spad"):
        decode(_patched(data, HEADER_BYTES + 40 + 8, struct.pack("<q", SPAD_BYTES)))
    # an instruction naming a descriptor the program does not have
    with pytest.raises(NpuError, match="names descriptor 77; the program has 5"):
        decode(_patched(data, first_instr + 64 + 8, struct.pack("<q", 77)))


def test_assembler_refuses_bad_text() -> None:
    text = disassemble(sample_image())
    with pytest.raises(NpuError, match="line .*: unknown instruction 'matmull'"):
        assemble(text.replace("matmul ", "matmull "))
    with pytest.raises(NpuError, match="unknown valu op 'maxx'"):
        assemble(text.replace("op=max", "op=maxx"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_programs_decode_or_are_refused(data: st.DataObject) -> None:
    """Any bytes: decode gives a checked image or an NpuError, never another
    exception; a decoded image runs or faults with an NpuError."""
    good = encode(sample_image())
    mode = data.draw(st.sampled_from(["flip", "random", "truncate"]))
    if mode == "random":
        blob = data.draw(st.binary(max_size=400))
    elif mode == "truncate":
        blob = good[:data.draw(st.integers(0, len(good)))]
    else:
        at = data.draw(st.integers(HEADER_BYTES, len(good) - 1))
        blob = _patched(good, at, bytes([data.draw(st.integers(0, 255))]))
    try:
        image = decode(blob)
    except NpuError:
        return
    for p in image.programs:
        try:
            Machine(image, HW).run(p.name, limit=10_000)
        except NpuError:
            pass
