"""The int4x2_lane32 layout (docs/quant_layouts.md): exact bytes, round trip,
and unpacking with nothing but shifts and masks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from llmc.errors import IRError
from llmc.ir.pack import pack_int4, unpack_int4


def test_layout_bytes() -> None:
    q = np.zeros((1, 64), np.int8)
    q[0, 0], q[0, 16], q[0, 1], q[0, 17], q[0, 32], q[0, 48] = 1, -1, -8, 7, 3, -2
    p = pack_int4(q)
    assert p.shape == (1, 32) and p.dtype == np.uint8
    # byte i of lane j: element 32j+i in the low nibble, 32j+16+i in the high nibble
    assert p[0, 0] == 0xF1 and p[0, 1] == 0x78 and p[0, 16] == 0xE3
    assert not p[0, 2:16].any() and not p[0, 17:].any()


def test_simd_style_unpack() -> None:
    """What a 16-byte SIMD lane does: sign-extend low nibbles, arithmetic-shift high ones."""
    rng = np.random.default_rng(0)
    q = rng.integers(-8, 8, (3, 96)).astype(np.int8)
    p = pack_int4(q).view(np.int8)
    for lane in range(3):
        b = p[:, lane * 16:(lane + 1) * 16]
        lo = np.left_shift(b, 4).astype(np.int8) >> 4
        hi = b >> 4
        assert np.array_equal(lo, q[:, lane * 32:lane * 32 + 16])
        assert np.array_equal(hi, q[:, lane * 32 + 16:lane * 32 + 32])


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.data())
def test_round_trip(rows: int, lanes: int, data) -> None:
    q = data.draw(arrays(np.int8, (rows, 32 * lanes), elements=st.integers(-8, 7)))
    assert np.array_equal(unpack_int4(pack_int4(q)), q)


def test_refusals() -> None:
    with pytest.raises(IRError, match="multiple of 32"):
        pack_int4(np.zeros((2, 40), np.int8))
    with pytest.raises(IRError, match="-8..7"):
        pack_int4(np.full((1, 32), 8))
