"""One hardware spec: outside llmc/hw no code binds a number to a hardware
figure, and no data file holds device figures.

The check walks the AST of every llmc/**/*.py outside llmc/hw and reports
file:line wherever a numeric constant is bound to a name that looks like a
hardware quantity (`*_bytes_per_s`, `*gbps`, `*_kb`, `*_hz`, `node_nm`,
`capacity*`, `*flops_per_s`, `*energy_pj*`, `*_w`, `lanes`, `rows`, `cols`,
`memory_bytes`, `*latency_ns`, `in_bits`, `acc_bits`, banking, ...):
dataclass field and parameter defaults, assignments, keyword arguments,
`add_argument("--clock-ghz", default=1.0)`, dict entries, and positional
arguments of llmc's own classes (`OnChip("x", 163 * KIB, ...)`,
`ArraySpec(128, 128)`), plus an array written as "RxC" text. Zero is allowed
(it means "none"), and so are limits of code (`MAX_*`, `MIN_*`). A line may
opt out with a `# one-spec: <reason>` comment. Data files (toml/json) under
llmc/ outside llmc/hw are reported if a key that looks like a hardware
figure holds a number.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LLMC = ROOT / "llmc"
HW = LLMC / "hw"

HW_NAME = re.compile(r"""(?x) ^(?:
      \w*bytes_per_s | \w*bytes_per_cycle | \w*gbps | \w*tbps
    | (?:\w+_)?k[i]?b | (?:\w+_)?m[i]?b | (?:\w+_)?g[i]?b
    | (?:\w+_)?[kmgt]?hz
    | (?:\w+_)?node_nm | nm
    | capacity\w* | \w*_capacity | memory_bytes
    | \w*flops_per_s | \w*tflops | \w*tops
    | \w*energy_pj\w* | \w*_pj | \w*pj_per_\w+
    | (?:tdp|idle|power|leakage|static|dynamic)_w | \w+_w
    | lanes | \w*_lanes | rows | cols | banks | \w+_banks | \w*bank_\w*bits | \w*ports_per_bank
    | sram_ports
    | in_bits | acc_bits | pipeline_depth | max_block_q | rows_per_warp
    | clock\w* | \w*latency_ns | \w*latency_s
)$""")
LIMIT = re.compile(r"^(?:max|min)_(?!block_q$)")
PRAGMA = "# one-spec:"
ARRAY_TEXT = re.compile(r"^\s*\d+\s*[x×]\s*\d+\s*$")


def _hardware_name(name: str) -> bool:
    n = name.lower().lstrip("_")
    return bool(HW_NAME.match(n)) and not LIMIT.match(n)


def _constant(node: ast.AST) -> bool:
    """A number, or arithmetic of numbers and ALL_CAPS constants (163 * KIB)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int | float) and not isinstance(node.value, bool)
    if isinstance(node, ast.UnaryOp):
        return _constant(node.operand)
    if isinstance(node, ast.BinOp):
        sides = (node.left, node.right)
        return all(_constant(x) or _caps(x) for x in sides) and any(_constant(x) for x in sides)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
            "float", "int") and len(node.args) == 1 and isinstance(node.args[0], ast.Constant):
        return True  # float("inf")
    return False


def _caps(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id.isupper()


UNITS = {"kb": (10 ** 3, 2 ** 10), "kib": (2 ** 10,), "mb": (10 ** 6, 2 ** 20),
         "mib": (2 ** 20,), "gb": (10 ** 9, 2 ** 30), "gib": (2 ** 30,), "tb": (10 ** 12, 2 ** 40)}


def _unit_definition(name: str, node: ast.AST) -> bool:
    """`gb = 1e9`, `kib = 2 ** 10`: the size of a unit, not a figure."""
    try:
        value = eval(compile(ast.Expression(node), "<unit>", "eval"), {"__builtins__": {}})
    except Exception:  # noqa: BLE001 - names or calls: not a plain unit size
        return False
    return value in UNITS.get(name.lower(), ())


def _zero(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value == 0 and not isinstance(node.value, bool)


def _fields(trees: list[ast.Module]) -> dict[str, list[str]]:
    """Class name -> the names its positional arguments bind (dataclass fields
    in order, or __init__'s parameters), for llmc's own classes."""
    out: dict[str, list[str]] = {}
    for tree in trees:
        for cls in ast.walk(tree):
            if not isinstance(cls, ast.ClassDef):
                continue
            init = next((f for f in cls.body if isinstance(f, ast.FunctionDef)
                         and f.name == "__init__"), None)
            if init is not None:
                out.setdefault(cls.name, [a.arg for a in init.args.args[1:]])
            else:
                names = [s.target.id for s in cls.body if isinstance(s, ast.AnnAssign)
                         and isinstance(s.target, ast.Name)]
                if names:
                    out.setdefault(cls.name, names)
    return out


def _argparse_dest(call: ast.Call) -> str | None:
    for a in call.args:
        if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.startswith("--"):
            return a.value[2:].replace("-", "_")
    return None


def _bindings(tree: ast.Module, fields: dict[str, list[str]]) -> Iterator[tuple[str, ast.AST]]:
    """(name, value) for every place a value is bound to a name."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name | ast.Attribute):
                    yield (t.id if isinstance(t, ast.Name) else t.attr), node.value
                elif (isinstance(t, ast.Tuple) and isinstance(node.value, ast.Tuple)
                      and len(t.elts) == len(node.value.elts)):
                    yield from ((x.id, v) for x, v in zip(t.elts, node.value.elts, strict=True)
                                if isinstance(x, ast.Name))
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            if isinstance(node.target, ast.Name | ast.Attribute):
                t = node.target
                yield (t.id if isinstance(t, ast.Name) else t.attr), node.value
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            a = node.args
            pos = a.posonlyargs + a.args
            yield from zip([x.arg for x in pos[len(pos) - len(a.defaults):]], a.defaults,
                           strict=True)
            yield from ((x.arg, d) for x, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)
                        if d is not None)
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                if isinstance(k, ast.Constant) and isinstance(k.value, str):
                    yield k.value, v
        elif isinstance(node, ast.Call):
            dest = _argparse_dest(node)
            for kw in node.keywords:
                if kw.arg == "default" and dest:
                    yield dest, kw.value
                elif kw.arg:
                    yield kw.arg, kw.value
            func = node.func
            name = func.id if isinstance(func, ast.Name) else (
                func.attr if isinstance(func, ast.Attribute) else None)
            if name in fields:
                yield from zip(fields[name], node.args, strict=False)


def check_source(text: str, path: str, fields: dict[str, list[str]] | None = None) -> list[str]:
    """Violations in one Python source, as 'path:line: name = value'."""
    tree = ast.parse(text)
    fields = _fields([tree]) if fields is None else fields
    lines = text.splitlines()
    out = []
    for name, value in _bindings(tree, fields):
        line = getattr(value, "lineno", 0)
        if line and PRAGMA in lines[line - 1]:
            continue
        number = (_constant(value) and not _zero(value) and _hardware_name(name)
                  and not _unit_definition(name, value))
        array_text = (name == "array" and isinstance(value, ast.Constant)
                      and isinstance(value.value, str) and ARRAY_TEXT.match(value.value))
        if number or array_text:
            out.append(f"{path}:{line}: {name} = {ast.unparse(value)}")
    return sorted(set(out), key=lambda s: (s.split(":")[0], int(s.split(":")[1])))


def _figures(data: object, where: str) -> Iterator[str]:
    if isinstance(data, dict):
        for k, v in data.items():
            number = isinstance(v, int | float) and not isinstance(v, bool)
            wrapped = isinstance(v, dict) and isinstance(v.get("value"), int | float)
            if isinstance(k, str) and _hardware_name(k) and (number or wrapped) and v != 0:
                yield f"{where}: {k}"
            yield from _figures(v, where)
    elif isinstance(data, list):
        for v in data:
            yield from _figures(v, where)


def check_data_file(path: Path, shown: str) -> list[str]:
    """Device figures in a toml/json file, as 'path: key'."""
    text = path.read_text()
    data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    return sorted(set(_figures(data, shown)))


def check_tree(root: Path = LLMC) -> list[str]:
    """Every violation under `root` (llmc/) outside llmc/hw."""
    outside = [p for p in sorted(root.rglob("*")) if HW not in p.parents and p != HW]
    sources = {p: p.read_text() for p in outside if p.suffix == ".py"}
    everything = {p: p.read_text() for p in sorted(root.rglob("*.py"))}
    fields = _fields([ast.parse(t) for t in everything.values()])
    out = []
    for p, text in sources.items():
        out += check_source(text, str(p.relative_to(ROOT)), fields)
    for p in outside:
        if p.suffix in (".toml", ".json"):
            out += check_data_file(p, str(p.relative_to(ROOT)))
    return out


def test_no_hardware_figure_outside_llmc_hw() -> None:
    found = check_tree()
    assert not found, "hardware figures outside llmc/hw (move them to a device file):\n" + \
        "\n".join(found)


PLANTED = {
    "dataclass default": "from dataclasses import dataclass\n@dataclass\nclass S:\n"
                         "    kb: float = 2048.0\n",
    "field default gbps": "class D:\n    gbps: float = 100.0\n",
    "keyword argument": "hw = make(dram_gbps=400.0)\n",
    "nested keyword": "hw = SimHardware(sram=SramSpec(kb=8192))\n",
    "assignment": "node_nm = 7\n",
    "attribute assignment": "self.clock_ghz = 1.0\n",
    "parameter default": "def f(x, latency_ns=100.0):\n    return x\n",
    "keyword-only default": "def f(*, lanes=128):\n    return lanes\n",
    "dict entry": "FIG = {'hbm_bytes_per_s': 3.35e12}\n",
    "energy": "E = {'int8_add_energy_pj': 0.03}\n",
    "power": "tdp_w = 700\n",
    "capacity": "capacity_bytes = 80 * 2 ** 30\n",
    "flops": "peak_flops_per_s = 989.4e12\n",
    "constant arithmetic": "KIB = 1024\nmemory_bytes = 163 * KIB\n",
    "positional to a class": "class OnChip:\n    name: str\n    memory_bytes: int\n"
                             "X = OnChip('a100', 163 * 1024)\n",
    "array rows and cols": "class ArraySpec:\n    rows: int\n    cols: int\n"
                           "A = ArraySpec(128, 128)\n",
    "argparse default": "p.add_argument('--clock-ghz', type=float, default=1.0)\n",
    "argparse bits": "p.add_argument('--in-bits', type=int, default=8)\n",
    "array text": "p.add_argument('--array', default='128x128')\n",
    "infinite": "link_gbps = float('inf')\n",
    "negative": "t = g(dram_latency_ns=-5)\n",
    "tuple assignment": "rows, cols = 128, 128\n",
    "lambda default": "f = lambda mhz=300: mhz\n",
    "a size in a unit's name": "s = SramSpec(kb=8192)\n",
    "banking": "s = make(sram_banks=32, bank_width_bits=64, ports_per_bank=2)\n",
}

BENIGN = {
    "zero": "idle_w: float = 0.0\n",
    "computed": "rows = -(-len(groups) // 6)\n",
    "limit": "MAX_ACC_BITS = 64\nMAX_DIM = 64\n",
    "from a device": "hw = make(dram_gbps=dev.main.bytes_per_s / 1e9)\n",
    "model size": "cfg = dict(hidden=256, n_layers=6, max_seq_len=512)\n",
    "quant bits": "scale_bits = 8\nres_bits = 24\n",
    "pragma": "spec = ArraySpec(4, 4)  # one-spec: a test-sized core\n"
              "class ArraySpec:\n    rows: int\n    cols: int\n",
    "flag without default": "p.add_argument('--sram', type=float, default=None)\n",
    "boolean": "double_buffered = True\n",
    "unit sizes": "kb, mb, gb = 10 ** 3, 10 ** 6, 10 ** 9\ngib = 2 ** 30\ngb = 1e9\n",
    "track ids": "TRACKS = {'array': 1, 'vector': 2, 'dram': 3, 'link': 4}\n",
}


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_checker_flags_planted_figures(name: str) -> None:
    found = check_source(PLANTED[name], "planted.py")
    assert found, name
    assert all(f.startswith("planted.py:") for f in found)


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_checker_leaves_ordinary_code_alone(name: str) -> None:
    assert check_source(BENIGN[name], "ok.py") == []


def test_checker_names_file_and_line() -> None:
    assert check_source("x = 1\n\nnode_nm = 7\n", "llmc/x.py") == ["llmc/x.py:3: node_nm = 7"]


def test_checker_flags_device_data_files(tmp_path: Path) -> None:
    (tmp_path / "chip.toml").write_text(
        'name = "chip"\n[[memory]]\nname = "hbm"\nbytes_per_s = 3.35e12\n'
        '[power]\ntdp_w = { value = 700, source = "x" }\n')
    (tmp_path / "energy.json").write_text(json.dumps(
        {"figures": {"int8_add_energy_pj": {"value": 0.03, "source": "Horowitz"}}}))
    (tmp_path / "model.json").write_text(json.dumps({"hidden": 256, "n_layers": 6}))
    assert check_data_file(tmp_path / "chip.toml", "chip.toml") == [
        "chip.toml: bytes_per_s", "chip.toml: tdp_w"]
    assert check_data_file(tmp_path / "energy.json", "e.json") == ["e.json: int8_add_energy_pj"]
    assert check_data_file(tmp_path / "model.json", "m.json") == []
