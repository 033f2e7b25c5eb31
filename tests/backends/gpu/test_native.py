"""On an NVIDIA GPU (marked gpu, skipped elsewhere): the decode step replays
as a CUDA graph and still gives the reference tokens; the CUDA C++ w4a16
GEMV, compiled at load where nvcc exists, agrees with the Triton kernel.
(The kernel tests in test_kernels.py run natively there too: the runtime
picks the GPU whenever one is visible.)"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")]


def test_decode_under_a_cuda_graph_gives_the_reference_tokens(tmp_path) -> None:  # noqa: ANN001
    from llmc import api
    from llmc.backends.generate import Shapes, generate
    from llmc.ir import interpret

    c = api.compile("llmc-tiny", "h100", tmp_path / "t", batch=2, seq_len=40)
    made = api.run(tmp_path / "t", "The ", 32)
    pre, dec = c.graphs["prefill"], c.graphs["decode"]
    caches = [np.zeros(x.type.shape, x.type.dtype.np) for x in dec.inputs[2:]]
    ref = generate(lambda xs: interpret(pre, xs), lambda xs: interpret(dec, xs), caches,
                   Shapes.from_json(c.manifest["generate"]), list(b"The "), 32)
    assert made.tokens == ref.tokens


def test_cuda_gemv_matches_the_triton_kernel() -> None:
    from llmc.backends.gpu.cuda import GEMV_SOURCE, can_compile, load_gemv

    if not can_compile():
        pytest.skip("no nvcc")
    gemv = load_gemv(GEMV_SOURCE)
    N, K, G = 300, 256, 64
    x = torch.randn(3, K, device="cuda", dtype=torch.bfloat16)
    w = torch.randint(0, 256, (N, K // 2), device="cuda", dtype=torch.uint8)
    s = (torch.rand(N, K // G, device="cuda") * 0.05).to(torch.bfloat16)
    from llmc.ir.pack import unpack_int4

    q = torch.from_numpy(unpack_int4(w.cpu().numpy()).astype(np.float32)).cuda()
    want = x.float() @ (q * s.float().repeat_interleave(G, dim=1)).T
    got = gemv(x, w, s, K, G).float()
    assert torch.linalg.norm(got - want) / torch.linalg.norm(want) < 1e-2
