"""torch.export -> core-ATen FX graph -> llmc IR.

`export_program` runs torch.export and lowers the program through torch's
core-ATen decomposition table, the one rule for which operators the mapping
table (`aten.py`) must know: everything decomposes to core ATen except the
composites in KEEP_WHOLE, which the IR has as single ops. `to_ir` converts
the program through that table, naming weights by their module path, and
drops the run-time checks in DROPPED (which compute no value).
"""

from __future__ import annotations

import collections
import warnings
from typing import Any

import torch

from llmc.errors import IRError, ModelError, UnsupportedOpError
from llmc.frontend.aten import TABLE, Ctx
from llmc.ir import dtypes
from llmc.ir.graph import Builder, Graph, Value
from llmc.ir.types import TensorType

# Composite ATen ops kept whole instead of decomposed: each is one IR op
# (semantics, cost and matrix products defined once in llmc/ir/ops), which
# decomposed would reach the cost model and backends as pieces to re-find:
# linear/matmul (products), attention (tiled and costed as one), the norms,
# and the activations whose decompositions (erf, tanh polynomials) the IR
# does not need.
KEEP_WHOLE = ("linear", "matmul", "scaled_dot_product_attention", "layer_norm", "rms_norm", "silu",
              "gelu")

# Operators that check, never compute: converting them would add nothing to
# the IR, so they are dropped (with any node whose value only they read,
# such as the symbolic comparison an _assert_scalar tests), each for a reason.
DROPPED = {
    "aten._assert_tensor_metadata.default":
        "checks dtype/device/layout at run time; the IR's static types fix them",
    "aten._assert_scalar.default": "asserts a shape condition; IR shapes are static",
    "aten._assert_async.default": "asserts a tensor's value (an index range); no output",
    "aten._assert_async.msg": "asserts a tensor's value (an index range); no output",
    "aten._functional_assert_async.msg": "functional form of _assert_async; a token only",
    "aten._functional_assert_scalar.default": "functional form of _assert_scalar; a token only",
    "aten._make_dep_token.default": "orders the functional assertions; a token only",
    "aten.sym_constrain_range.default": "a range hint for a symbolic size; IR shapes are static",
    "aten.sym_constrain_range_for_size.default": "a range hint for a symbolic size",
    "aten._functional_sym_constrain_range.default": "functional range hint; a token only",
    "aten._functional_sym_constrain_range_for_size.default": "functional range hint",
}


def export_program(module: torch.nn.Module, args: tuple[Any, ...]) -> torch.export.ExportedProgram:
    """torch.export the module and decompose to core ATen (minus KEEP_WHOLE)."""
    table = torch.export.default_decompositions()
    for name in KEEP_WHOLE:
        op = getattr(torch.ops.aten, name).default
        if op in table:
            del table[op]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch-internal deprecations
        try:
            ep = torch.export.export(module, args, strict=False)
        except Exception as exc:  # torch raises many types; the user needs one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ModelError(f"torch.export failed on {type(module).__name__}: "
                             f"{type(exc).__name__}: {first}") from None
        return ep.run_decompositions(table)


def target_name(target: Any) -> str:
    if isinstance(target, torch._ops.OpOverload | torch._ops.OpOverloadPacket):
        return str(target)
    return f"{getattr(target, '__module__', '')}.{getattr(target, '__name__', target)}"


def _where(node: torch.fx.Node, prefix: str) -> str:
    """Module path and file:line a node came from, for error messages."""
    loc = _module_path(node, prefix)
    trace = node.meta.get("stack_trace") or ""
    lines = [ln.strip() for ln in trace.splitlines() if ln.strip().startswith("File ")]
    src = ""
    if lines:
        parts = lines[-1].split('"')
        if len(parts) >= 3:
            src = f"{parts[1]}:{parts[2].split(',')[1].strip().removeprefix('line ')}"
    return ", ".join(p for p in (loc, src) if p) or "?"


def _module_path(node: torch.fx.Node, prefix: str) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    path = path.removeprefix("L['self'].").removeprefix("L__self__.")
    return "" if path == prefix.rstrip(".") else path.removeprefix(prefix)


def dropped_nodes(ep: torch.export.ExportedProgram) -> set[torch.fx.Node]:
    """Nodes of DROPPED operators, and nodes whose every user is dropped."""
    out: set[torch.fx.Node] = set()
    for n in reversed(ep.graph.nodes):
        if n.op != "call_function":
            continue
        if target_name(n.target) in DROPPED or (n.users and all(u in out for u in n.users)):
            out.add(n)
    return out


def check_supported(ep: torch.export.ExportedProgram, prefix: str = "") -> None:
    """Raise one UnsupportedOpError listing every unmapped operator, with its
    count and where its first occurrence came from (module path, file:line)."""
    missing: dict[str, list[str]] = collections.defaultdict(list)
    dropped = dropped_nodes(ep)
    for n in ep.graph.nodes:
        if n.op == "call_function" and n not in dropped and target_name(n.target) not in TABLE:
            missing[target_name(n.target)].append(_where(n, prefix))
    if missing:
        parts = [f"{op} x{len(w)} (at {w[0]})" for op, w in sorted(missing.items())]
        raise UnsupportedOpError(f"{len(missing)} unsupported operator(s): " + "; ".join(parts))


def to_ir(ep: torch.export.ExportedProgram, name: str, input_names: list[str] | None = None,
          prefix: str = "") -> Graph:
    """Convert an exported program. Weights become `param` nodes named by
    their module path (minus `prefix`), with values unless on the meta device."""
    check_supported(ep, prefix)
    dropped = dropped_nodes(ep)
    sig = ep.graph_signature
    weights = {**sig.inputs_to_parameters, **sig.inputs_to_buffers,
               **getattr(sig, "inputs_to_lifted_tensor_constants", {})}
    tensors = {**ep.state_dict, **ep.constants}
    graph = Graph(name)
    b = Builder(graph)
    ctx = Ctx(b)
    user_inputs = [s for s in sig.user_inputs]
    names = dict(zip(user_inputs, input_names or user_inputs, strict=False))
    outputs: list[Value] = []
    for n in ep.graph.nodes:
        ctx.fx, ctx.loc = n, _module_path(n, prefix)
        if n.op == "placeholder":
            ctx.env[n] = _placeholder(b, n, weights, tensors, names, prefix,
                                      buffer=n.name in sig.inputs_to_buffers)
        elif n.op == "call_function" and n not in dropped:
            try:
                ctx.env[n] = TABLE[target_name(n.target)](ctx, *n.args, **n.kwargs)
            except IRError as exc:
                raise IRError(f"{target_name(n.target)} at {_where(n, prefix)}: {exc}") from None
            _check_type(ctx, n)
        elif n.op == "output":
            outputs = [ctx.env[a] for a in _ordered_outputs(ep, n.args[0])]
    graph.outputs = outputs
    return graph


def _ordered_outputs(ep: torch.export.ExportedProgram, args: list[Any]) -> list[Any]:
    """The module's outputs, then the new values of the inputs it updates in
    place (a static KV cache), in input order. A module that writes its own
    buffers or parameters is refused: an IR graph is a function of its inputs."""
    kinds = torch.export.graph_signature.OutputKind
    specs = ep.graph_signature.output_specs
    state = [s.target for s in specs if s.kind in (kinds.BUFFER_MUTATION,
                                                    kinds.PARAMETER_MUTATION)]
    if state:
        raise ModelError(f"the module updates its own state in place ({', '.join(state)}); "
                         "pass such state as an input instead (it is then returned updated)")
    order = {name: i for i, name in enumerate(ep.graph_signature.user_inputs)}
    updated = sorted((order.get(s.target, 0), a) for a, s in zip(args, specs, strict=True)
                     if s.kind == kinds.USER_INPUT_MUTATION)
    return [a for a, s in zip(args, specs, strict=True) if s.kind == kinds.USER_OUTPUT] + [
        a for _, a in updated]


def _placeholder(b: Builder, n: torch.fx.Node, weights: dict[str, str],
                 tensors: dict[str, torch.Tensor], names: dict[str, str], prefix: str,
                 buffer: bool) -> Value:
    val = n.meta["val"]
    t = TensorType(tuple(int(s) for s in val.shape), dtypes.from_torch(val.dtype))
    if n.name in weights:
        fqn = weights[n.name]
        tensor = tensors.get(fqn)
        value = None
        if tensor is not None and tensor.device.type != "meta":
            held = tensor.detach().cpu()  # bfloat16 (no numpy type) is held as float32
            held = held.float() if held.dtype == torch.bfloat16 else held
            value = held.contiguous().numpy().astype(t.dtype.np, copy=True)
        return b.param(fqn.removeprefix(prefix), t, value, buffer=buffer)
    return b.input(names.get(n.name, n.name), t)


def _check_type(ctx: Ctx, n: torch.fx.Node) -> None:
    """The IR's type rule must agree with what torch recorded."""
    val = n.meta.get("val")
    got = ctx.env[n]
    if not isinstance(val, torch.Tensor) or not isinstance(got, Value):
        return
    want = ctx.meta_type
    if got.type.shape != want.shape or got.type.dtype != want.dtype:
        raise IRError(f"internal: {target_name(n.target)} at {_where(n, '')} converted to "
                      f"{got.type}, torch says {want}")
