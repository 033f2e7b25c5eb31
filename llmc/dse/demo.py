"""A short tour of design-space sweeps, for `llmc demo`: a spec of 36 points
(gpt2 on the npu, array x SRAM x precision x batch), run, rerun (nothing
computed twice), and its tokens/J x tokens/s x area front."""

from __future__ import annotations

import json
import pathlib

SPEC = """\
[sweep]
prompt = 256
output = 64

[axes]
model = "gpt2"
target = "npu"
array = ["32x32", "128x128", "256x256"]
sram_mib = [8, 128]
quant = ["int8", "int4"]
batch = [1, 4, 16]
"""


def demo(root: pathlib.Path) -> None:
    """Write a spec under `root`, sweep it on two local workers, sweep it
    again (every point reused), print the front."""
    from llmc.dse import LocalEngine, load_spec, run_sweep

    root.mkdir(parents=True, exist_ok=True)
    (root / "dse-sweep.toml").write_text(SPEC)
    spec = load_spec(root / "dse-sweep.toml")
    out = root / "dse-sweep"
    first = run_sweep(spec, out, LocalEngine(2))
    again = run_sweep(spec, out, LocalEngine(2))
    print(f"  llmc sweep {root / 'dse-sweep.toml'} -o {out}")
    print(f"  {first.points} points: {first.computed} computed in {first.seconds:.1f} s; "
          f"rerun: {again.computed} computed, {again.reused} reused (points.jsonl)")
    rows = [json.loads(x) for x in (out / "sweep.jsonl").read_text().splitlines()]
    front = sorted((r for r in rows if r["pareto"]), key=lambda r: r["area_mm2"])
    print(f"  Pareto front (tokens/J x tokens/s x area), {len(front)} of {len(rows)} points:")
    for r in front[:6]:
        print(f"    {r['array']:>7} array, {r['sram_mib']:>3} MiB, {r['quant']}, batch "
              f"{r['batch']:>2}: {r['tokens_per_s']:8,.0f} tokens/s, {r['tokens_per_j']:7,.1f} "
              f"tokens/J, {r['area_mm2']:5.1f} mm²")
    if len(front) > 6:
        print(f"    ... and {len(front) - 6} more in {out / 'sweep.csv'}")
