"""The GPU validation script runs without a GPU in --dry-run mode (its
measuring half needs CUDA and runs on a GPU machine)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load(name: str):  # noqa: ANN201
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod            # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_gpu_validate_dry_run(tmp_path: Path) -> None:
    mod = load("costmodel_gpu_validate")
    assert mod.main(["--dry-run", "--quick", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "costmodel_gpu_dryrun.json").read_text())
    kinds = {r["kind"] for r in res["rows"]}
    assert kinds == {"gemm", "gemv", "attention-prefill", "attention-decode", "elementwise"}
    gemm = next(r for r in res["rows"] if r["name"] == "llama-2-7b up T=2048")
    assert gemm["flops"] == 2 * 2048 * 11008 * 4096 and gemm["bound"] == "compute"
    assert all(r["predicted_s"] >= r["roofline_s"] for r in res["rows"])


def test_calibration_recovers_efficiency() -> None:
    """Feed the fit synthetic 'measurements' made at known efficiencies."""
    mod = load("costmodel_gpu_validate")
    from llmc.hw.database import get_device

    dev = get_device("h100")
    rows = []
    for case in mod.cases(quick=True):
        t = mod.predict(dev, case)
        eff = {"gemm": 0.7, "attention-prefill": 0.5}.get(case.kind, 0.8)
        side = t.compute_s if t.bound == "compute" else t.memory_s
        rows.append({"kind": case.kind, "bound": t.bound, "compute_s": t.compute_s,
                     "memory_s": t.memory_s, "bytes": t.rec.bytes, "measured_s": side / eff})
    fit = mod.calibrate(dev, rows)
    assert fit["matmul"] == 0.7 and fit["attention"] == 0.5 and fit["memory"] == 0.8
