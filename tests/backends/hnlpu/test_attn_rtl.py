"""Decode attention in RTL (the attention buffer holding the KV cache and the
softmax vector unit): bit-exact with the interpreter, cycle-exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmc.backends.hnlpu.attn import attention_nodes
from llmc.ir import interpret
from llmc.rtl.hn_attn import generate_attn, run_attn
from llmc.rtl.lint import lint
from tests.rtl.rtl_helpers import SIMS


def _real_case(compiled):  # noqa: ANN001, ANN202
    """The first attention of a real decode step: spec, operands, the interpreter's y."""
    graph, prefill = compiled.graphs["decode"], compiled.graphs["prefill"]
    att = attention_nodes(graph)[0]
    tokens = np.zeros(prefill.inputs[0].type.shape, np.int64)
    tokens[0, :3] = [104, 105, 33]
    caches = interpret(prefill, [tokens])[1:]
    names = {att.q.name, att.k_cache.name, att.k_new.name, att.v_cache.name, att.v_new.name,
             att.node.name}
    vals: dict[str, np.ndarray] = {}
    interpret(graph, [np.array([[7]]), np.array([3]), *caches],
              lambda n, o: vals.__setitem__(n.name, o[0]) if n.name in names else None)
    case = {"kc": vals[att.k_cache.name][0], "vc": vals[att.v_cache.name][0],
            "q": vals[att.q.name][0, :, 0, :], "k_new": vals[att.k_new.name][0, :, 0, :],
            "v_new": vals[att.v_new.name][0, :, 0, :], "pos": 3}
    return att.spec, case, vals[att.node.name][0, :, 0, :]


def test_reference_is_the_interpreter(tiny_artifact) -> None:  # noqa: ANN001
    spec, case, y = _real_case(tiny_artifact)
    assert (spec.heads, spec.kv_heads, spec.slots, spec.dim) == (4, 2, 16, 16)
    assert np.array_equal(spec.reference(case["q"], case["kc"], case["vc"], case["k_new"],
                                         case["v_new"], case["pos"]), y)
    assert spec.cycles() == 4 * (3 * 16 + spec.quotient_bits + 1) + 1


@pytest.mark.rtl
def test_attention_lints_clean(tiny_artifact, tmp_path: Path) -> None:  # noqa: ANN001
    spec, _, _ = _real_case(tiny_artifact)
    design = generate_attn(spec)
    assert lint(design.write(tmp_path), design.top) == []


@pytest.mark.rtl
@pytest.mark.parametrize("sim", SIMS)
def test_attention_bit_and_cycle_exact(tiny_artifact, tmp_path: Path, sim: str) -> None:  # noqa: ANN001
    spec, case, y = _real_case(tiny_artifact)
    rng = np.random.default_rng(2)
    rand = {k: rng.integers(-127, 128, np.shape(v)) for k, v in case.items() if k != "pos"}
    rand["pos"] = spec.slots - 1    # every slot visible
    rand["expected"] = spec.reference(rand["q"], rand["kc"], rand["vc"], rand["k_new"],
                                      rand["v_new"], rand["pos"])
    ok, rows, log = run_attn(spec, sim, tmp_path, [case | {"expected": y}, rand])
    assert ok, (rows, log)
    assert [r["cycles"] for r in rows] == [spec.cycles()] * 2
