"""A sweep spec: the axes of a design space and what to evaluate at each point.

    [sweep]
    evaluate = "both"          # cost (the cost model), sim (the cycle simulator) or both
    prompt = 512               # prefill tokens (default min(2048, the model's context))
    output = 128               # tokens generated (default 128)

    [axes]                     # each a value or a list; absent: the device's own figure
    model = ["llama-2-7b"]     # zoo names
    target = ["npu", "./my-npu.toml"]   # targets, device keys or device files
    array = ["64x64", "128x128"]        # hardware overrides (devices with a MAC array)
    sram_mib = [4, 8]
    dram_gbps = [68.3, 136.6]
    clock_ghz = [1.0, 1.4]
    quant = ["int8", "int4"]   # schemes or storage formats, as --quant
    sparsity = ["dense", "2:4"]
    batch = [1, 4]
    context = [2048]           # KV length a decode step reads
    tp = [1]

Everything is checked before anything runs: an unknown key, axis or value
is one UsageError. The grid is the cartesian product in the order of AXES;
each point is a plain dict (JSON types only) with the sha256 of its device
file's bytes, so that a point names exactly what it computes and `point_hash`
keys it across runs, engines and machines.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmc.errors import UsageError

# The axes, in the order the grid enumerates them, with each one's default
# (None: the device's own figure, the model's default, prompt + output).
AXES: dict[str, Any] = {
    "model": None, "target": None, "array": None, "sram_mib": None, "dram_gbps": None,
    "clock_ghz": None, "quant": None, "sparsity": "dense", "batch": 1, "context": None, "tp": 1,
}
HARDWARE_AXES = ("array", "sram_mib", "dram_gbps", "clock_ghz")
EVALUATE = ("cost", "sim", "both")
SPARSITY = ("dense", "2:4")
SETTINGS = {"evaluate": "cost", "prompt": None, "output": 128}
# A grid larger than this is refused unless the caller says yes (`--yes`).
POINT_LIMIT = 5000
# Bumped when what a row holds changes: earlier rows are then recomputed.
SCHEMA = 1


@dataclass(frozen=True)
class Spec:
    """A checked sweep spec: axis -> values, the settings, and the device
    files' text by sha256 (what a worker needs to rebuild any device)."""
    axes: Mapping[str, tuple]
    evaluate: str = "cost"
    prompt: int | None = None
    output: int = 128
    devices: Mapping[str, dict] = field(default_factory=dict)   # sha -> {label, suffix, text}
    device_of: Mapping[str, str] = field(default_factory=dict)  # target label -> sha

    @property
    def size(self) -> int:
        n = 1
        for values in self.axes.values():
            n *= len(values)
        return n

    def to_json(self) -> dict:
        return {"axes": {k: list(v) for k, v in self.axes.items()}, "evaluate": self.evaluate,
                "prompt": self.prompt, "output": self.output,
                "devices": {label: sha for label, sha in self.device_of.items()}}


def load_spec(path: str | Path) -> Spec:
    """Read and check a spec file (TOML); device-file paths are relative to it."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text())
    except OSError as exc:
        raise UsageError(f"{p}: cannot read the sweep spec: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{p}: not valid TOML: {exc}") from None
    return parse_spec(raw, base=p.parent, where=str(p))


def parse_spec(raw: Mapping[str, Any], base: Path = Path("."), where: str = "spec") -> Spec:
    """A Spec from the spec's tables ([sweep] settings, [axes] values)."""
    unknown = sorted(set(raw) - {"sweep", "axes"})
    if unknown:
        raise UsageError(f"{where}: unknown table {', '.join(unknown)}; a spec has [sweep] "
                         "and [axes]")
    settings = {**SETTINGS, **_table(raw, "sweep", where)}
    bad = sorted(set(settings) - set(SETTINGS))
    if bad:
        raise UsageError(f"{where}: unknown [sweep] key {', '.join(bad)}; known: "
                         f"{', '.join(SETTINGS)}")
    axes_raw = _table(raw, "axes", where)
    bad = sorted(set(axes_raw) - set(AXES))
    if bad:
        raise UsageError(f"{where}: unknown axis {', '.join(bad)}; known: {', '.join(AXES)}")
    for need in ("model", "target"):
        if need not in axes_raw:
            raise UsageError(f"{where}: [axes] needs {need}")
    if settings["evaluate"] not in EVALUATE:
        raise UsageError(f"{where}: evaluate = {settings['evaluate']!r}; expected one of "
                         f"{', '.join(EVALUATE)}")
    for k in ("prompt", "output"):
        if settings[k] is not None:
            _positive_int(settings[k], f"[sweep] {k}", where)
    axes = {k: _values(axes_raw.get(k, AXES[k]), k, where) for k in AXES}
    devices, device_of = _check(axes, base, where)
    return Spec(axes, settings["evaluate"], settings["prompt"], settings["output"],
                devices, device_of)


def _table(raw: Mapping[str, Any], name: str, where: str) -> dict:
    t = raw.get(name, {})
    if not isinstance(t, dict):
        raise UsageError(f"{where}: [{name}] must be a table")
    return dict(t)


def _values(v: Any, axis: str, where: str) -> tuple:
    vals = tuple(v) if isinstance(v, list) else (v,)
    if not vals:
        raise UsageError(f"{where}: axis {axis} is empty")
    if len(set(map(repr, vals))) != len(vals):
        raise UsageError(f"{where}: axis {axis} repeats a value: {list(vals)}")
    return vals


def _positive_int(v: Any, what: str, where: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise UsageError(f"{where}: {what} must be a positive integer, got {v!r}")
    return v


def _positive(v: Any, what: str, where: str) -> float:
    if not isinstance(v, int | float) or isinstance(v, bool) or not 0 < v < float("inf"):
        raise UsageError(f"{where}: {what} must be a positive number, got {v!r}")
    return v


def _check(axes: dict[str, tuple], base: Path, where: str) -> tuple[dict, dict]:
    """Every value of every axis, checked; the device files read."""
    from llmc.costmodel.precision import parse_quant
    from llmc.frontend.zoo.config import get_config
    from llmc.hw.database import get_device

    for m in axes["model"]:
        if not isinstance(m, str):
            raise UsageError(f"{where}: model {m!r} is not a name")
        get_config(m)
    devices, device_of = {}, {}
    resolved = []
    for t in axes["target"]:
        if not isinstance(t, str):
            raise UsageError(f"{where}: target {t!r} is not a name")
        is_file = t.endswith((".toml", ".json")) or "/" in t
        dev = get_device(str(base / t) if is_file else t)
        data = Path(dev.path).read_bytes()
        sha = hashlib.sha256(data).hexdigest()[:16]
        devices[sha] = {"label": t, "suffix": Path(dev.path).suffix, "text": data.decode()}
        device_of[t] = sha
        resolved.append(dev)
    for a in axes["array"]:
        if a is not None and (not isinstance(a, str)
                              or not re.fullmatch(r"[1-9]\d*x[1-9]\d*", a)):
            raise UsageError(f"{where}: array {a!r}: expected RxC, e.g. \"128x128\"")
    for k in ("sram_mib", "dram_gbps", "clock_ghz"):
        for v in axes[k]:
            if v is not None:
                _positive(v, k, where)
    for k in ("batch", "context", "tp"):
        for v in axes[k]:
            if v is not None:
                _positive_int(v, k, where)
    for s in axes["sparsity"]:
        if s not in SPARSITY:
            raise UsageError(f"{where}: sparsity {s!r}; expected one of {', '.join(SPARSITY)}")
    for q in axes["quant"]:
        if q is not None and not isinstance(q, str):
            raise UsageError(f"{where}: quant {q!r} is not a name")
        for s in axes["sparsity"]:
            for dev in resolved:
                parse_quant(quant_text(q, s, dev.default_quant), dev.default_quant)
    _check_hardware(axes, resolved, where)
    return devices, device_of


def _check_hardware(axes: dict[str, tuple], devs: Iterable, where: str) -> None:
    """A hardware axis with a value needs the figure it overrides on every device."""
    needs = {"array": ("array", "a MAC array ([array])"),
             "clock_ghz": ("clock_hz", "a clock (clock_hz)"),
             "sram_mib": ("scratchpad", "a scratchpad ([scratchpad])")}
    for axis, (attr, what) in needs.items():
        if any(v is not None for v in axes[axis]):
            lacking = [d.name for d in devs if getattr(d, attr) is None]
            if lacking:
                raise UsageError(f"{where}: axis {axis} overrides {what}, which "
                                 f"{', '.join(lacking)} lacks; sweep it on devices that have "
                                 "one (npu, or your own device file)")


def quant_text(quant: str | None, sparsity: str, default: str) -> str | None:
    """The --quant text of a quant value with a sparsity ("int8" + "2:4")."""
    if sparsity == "dense":
        return quant
    return f"{quant or default}+{sparsity}"


def grid(spec: Spec) -> list[dict]:
    """Every point of the spec, in the order of AXES, each with its hash."""
    keys = list(AXES)
    out = []
    for values in itertools.product(*(spec.axes[k] for k in keys)):
        p = dict(zip(keys, values, strict=True))
        out.append(make_point(spec, p))
    return out


def make_point(spec: Spec, values: Mapping[str, Any]) -> dict:
    """The point of `values` (one value per axis) with the spec's settings and hash."""
    p = {k: values[k] for k in AXES}
    p.update(prompt=spec.prompt, output=spec.output, evaluate=spec.evaluate,
             device=spec.device_of[p["target"]])
    p["hash"] = point_hash(p)
    return p


def point_hash(point: Mapping[str, Any]) -> str:
    """sha256 of the point's canonical JSON (its hash field left out), 16 hex digits."""
    body = {k: v for k, v in point.items() if k != "hash"}
    text = json.dumps({"schema": SCHEMA, **body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_size(spec: Spec, yes: bool, limit: int = POINT_LIMIT) -> None:
    """Refuse a grid over `limit` points unless `yes`."""
    if spec.size > limit and not yes:
        raise UsageError(f"the spec's grid has {spec.size:,} points, over the limit of "
                         f"{limit:,}; pass --yes to run it anyway")
