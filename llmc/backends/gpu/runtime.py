"""Running a gpu artifact: its kernels, its program, its weights, on torch tensors.

`Runtime(artifact_dir_or_files, where)` imports the artifact's kernels
(kernels/*.py, exactly as emitted), loads the weights onto the device and
runs a phase's steps (llmc/backends/gpu/lower.py) with `run_phase`. Values
are torch tensors on the device; a K/V cache in a block format is a
`Blocked` pair (int8 mantissas, int8 exponents). The cache write is in
place: a decode step's cache outputs are its cache inputs, updated.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmc.backends.gpu.device import Where
from llmc.errors import UsageError


def pow2(n: int, lo: int = 16) -> int:
    return max(lo, 1 << max(0, math.ceil(math.log2(max(n, 1)))))


@dataclass
class Blocked:
    """A block-format tensor: int8 mantissas (..., D), int8 exponents (..., D / block)."""

    m: Any
    e: Any
    dtype: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.m.shape)

    def dequantize(self, shift: int, block: int) -> Any:
        scale = (self.e.float() - shift).exp2().repeat_interleave(block, dim=-1)
        return self.m.float() * scale


def torch_dtype(name: str, act: str) -> Any:
    import torch

    table = {"f32": act, "bf16": "bf16", "f16": "f16", "i64": "i64", "i32": "i32",
             "i8": "i8", "u8": "u8", "bool": "bool", "i16": "i16"}
    if name not in table:
        raise UsageError(f"the gpu runtime holds no values of dtype {name}")
    return {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16,
            "i64": torch.int64, "i32": torch.int32, "i8": torch.int8, "u8": torch.uint8,
            "bool": torch.bool, "i16": torch.int16}[table[name]]


def load_module(path: Path, name: str) -> Any:
    """Import one kernel file of an artifact (no bytecode is written beside it)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    keep, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        sys.modules[name] = mod          # triton.jit reads the source through the module
        spec.loader.exec_module(mod)
    finally:
        sys.dont_write_bytecode = keep
    return mod


class Kernels:
    """The kernels of one kernels/ directory, by function name."""

    def __init__(self, directory: Path) -> None:
        self.fns: dict[str, Any] = {}
        tag = f"llmc_gpu_kernels_{abs(hash(str(directory.resolve())))}"
        for f in sorted(directory.glob("*.py")):
            mod = load_module(f, f"{tag}.{f.stem}")
            for k, v in vars(mod).items():
                if not k.startswith("_") and hasattr(v, "fn") and hasattr(v, "__getitem__"):
                    self.fns[k] = v

    def __getitem__(self, name: str) -> Any:
        return self.fns[name]


class Runtime:
    """One artifact's program, kernels and weights on a device (see the module docstring)."""

    def __init__(self, program: Mapping[str, Any], kernels: Kernels,
                 weights: Mapping[str, Any], where: Where) -> None:
        self.program, self.k, self.where = program, kernels, where
        self.act = program["act_dtype"]
        self.weights = weights
        self.configs = program.get("configs", {})

    # -- helpers ------------------------------------------------------------
    def dt(self, ir_dtype: str) -> Any:
        return torch_dtype(ir_dtype, self.act)

    def cfg(self, step: Mapping[str, Any], defaults: Mapping[str, int]) -> dict[str, int]:
        """Tile sizes for a step: the interpreter's (few, large programs) or the
        recorded configs (autotune.json) on a GPU."""
        if self.where.interpret:
            return dict(defaults)
        return {**defaults, **self.configs.get(step.get("config", ""), {})}

    @staticmethod
    def rows(t: Any, last: int) -> Any:
        """t as (R, last) with a unit stride in the last dim (a view when possible)."""
        t2 = t.reshape(-1, last)
        return t2 if t2.stride(1) == 1 or t2.shape[1] == 1 else t2.contiguous()

    def norm_rows(self, s: Mapping[str, Any], vals: dict[str, Any],
                  types: Any) -> tuple[Any, Any, Any]:
        """(x, x as (R, D) rows, the (R, D) output) of a step normalising the
        rows of x = vals[s["x"]]."""
        x = vals[s["x"]]
        x2 = self.rows(x, x.shape[-1])
        return x, x2, self.empty(x2.shape, types[s["out"]][0])

    def attention_operands(self, s: Mapping[str, Any], vals: dict[str, Any]) -> tuple:
        """(q, km, vm, ke, ve, fmt, mask) of an attention step: q with a unit
        stride in the last dim; the K/V mantissas and exponents of a block-
        quantised cache and its format, or K/V twice (unit last stride) and {}
        for a float one; the mask as (T or 1, TK) rows, or None."""
        q, k, v = vals[s["q"]], vals[s["k"]], vals[s["v"]]
        T, TK = q.shape[2], k.shape[2]
        if q.stride(3) != 1:
            q = q.contiguous()
        quant = isinstance(k, Blocked)
        fmt = self.program["kv_formats"].get(k.dtype, {}) if quant else {}
        km, vm = (k.m, v.m) if quant else (self._unit(k), self._unit(v))
        ke, ve = (k.e, v.e) if quant else (km, vm)
        mask = None
        if s["mask"]:
            mask = vals[s["mask"]].reshape(-1, vals[s["mask"]].shape[-1])
            if mask.shape[0] not in (1, T):
                raise UsageError(f"attention mask {tuple(vals[s['mask']].shape)} is not "
                                 f"(1 or {T}, {TK})")
        return q, km, vm, ke, ve, fmt, mask

    @staticmethod
    def kv_strides(q: Any, km: Any, vm: Any, ke: Any, ve: Any) -> tuple[int, ...]:
        """The strides of q, K, V and their exponents over the first three dims,
        in the order the attention kernels take them."""
        return tuple(t.stride(i) for t in (q, km, vm, ke, ve) for i in range(3))

    # -- one phase ----------------------------------------------------------
    def run_phase(self, phase: str, inputs: list[Any]) -> list[Any]:
        ph = self.program["phases"][phase]
        vals: dict[str, Any] = dict(zip(ph["inputs"], inputs, strict=True))
        for r, key in ph["params"].items():
            vals[r] = self.weights[key]
        for step in ph["steps"]:
            vals[step["out"]] = getattr(self, "op_" + step["op"])(step, vals, ph["types"])
        return [vals[r] for r in ph["outputs"]]

    def empty(self, shape: Any, ir_dtype: str) -> Any:
        import torch

        return torch.empty(tuple(shape), dtype=self.dt(ir_dtype), device=self.where.device)

    def op_view(self, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
        x, a = vals[s["in"]], s["attrs"]
        if isinstance(x, Blocked):
            raise UsageError(f"view {s['view']} of the block-format value {s['in']}")
        if s["view"] == "reshape":
            return x.reshape(tuple(s["shape"]))
        if s["view"] == "permute":
            return x.permute(*a["perm"])
        dim = int(a["dim"]) % x.dim()
        end = min(int(a["end"]), x.shape[dim])
        return x.narrow(dim, int(a["start"]), end - int(a["start"]))[
            (slice(None),) * dim + (slice(None, None, int(a.get("step", 1))),)]

    def op_host(self, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
        import torch

        a, xs = s["attrs"], [vals[i] for i in s["in"]]
        if s["fn"] == "arange":
            return torch.arange(int(a["start"]), int(a["end"]), int(a["step"]),
                                dtype=torch.int64, device=self.where.device)
        fn = {"add": torch.add, "sub": torch.sub, "le": torch.le, "lt": torch.lt,
              "ge": torch.ge, "gt": torch.gt, "eq": torch.eq,
              "logical_not": torch.logical_not}[s["fn"]]
        return fn(*xs)

    def op_embedding(self, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
        table, idx = vals[s["table"]], vals[s["idx"]]
        flat = idx.reshape(-1).contiguous()
        R, C = flat.numel(), table.shape[1]
        out = self.empty((R, C), s["dtype"])
        c = self.cfg(s, {"BLOCK_R": pow2(min(R, 64)), "BLOCK_C": pow2(min(C, 1024))})
        self.k["embedding"][(math.ceil(R / c["BLOCK_R"]),)](table, flat, out, R, C, **c)
        return out.reshape(*idx.shape, C)

    def op_rms_norm(self, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
        x, x2, out = self.norm_rows(s, vals, types)
        R, D = x2.shape
        w = vals[s["w"]] if s["w"] else x2
        br = pow2(min(R, 256 if self.where.interpret else 4), 1)
        self.k["rms_norm"][(math.ceil(R / br),)](
            x2, w, out, R, D, s["eps"], x2.stride(0), HAS_W=s["w"] is not None,
            BLOCK_R=br, BLOCK_D=pow2(D, 1))
        return out.reshape(x.shape)

    def op_gemm(self, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
        import torch

        M, N, K = s["M"], s["N"], s["K"]
        x = self.rows(vals[s["x"]], K)
        w = vals[s["w"]]
        out = self.empty((M, N), types[s["out"]][0])
        extra = [self.rows(vals[e], N) for e in s["extra"]]
        sc = vals[s["scales"]] if s["scales"] else x
        if isinstance(w, Blocked):          # block-format weight: codes, exponents
            w, sc = w.m, w.e
        bias = vals[s["bias"]] if s["bias"] else x
        if self.where.interpret:
            # few, large programs: the interpreter's cost is per operation, not per element
            c = {"BLOCK_M": pow2(min(M, 128)), "BLOCK_N": pow2(min(N, 256)),
                 "BLOCK_K": pow2(min(K, 256), 32)}
        else:
            c = self.cfg(s, {"BLOCK_M": 16 if M <= 16 else 64, "BLOCK_N": 64, "BLOCK_K": 64})
        rope: list[Any] = []
        if s.get("head_dim"):       # RoPE epilogue: whole heads per tile, cos/sin (T, D)
            D = s["head_dim"]
            c["BLOCK_N"] = max(c["BLOCK_N"], D)
            cos, sin = self.rows(vals[s["cos"]], D), self.rows(vals[s["sin"]], D)
            extra += [cos, sin, s["T"]]
            rope = [cos.stride(0)]
        grid = (math.ceil(M / c["BLOCK_M"]), math.ceil(N / c["BLOCK_N"]))
        precision = "ieee" if x.dtype == torch.float32 else "tf32"
        self.k[s["kernel"]][grid](
            x, w, sc, bias, out, *extra, M, N, K, s["KP"], max(1, s["group_size"]),
            x.stride(0), *[e.stride(0) for e in extra[:len(s["extra"])]], *rope, **c,
            DOT_F32=self.where.dot_f32, PRECISION=precision,
            **({"HEAD_D": s["head_dim"]} if rope else {}))
        return out.reshape(types[s["out"]][1])

    def op_block_embedding(self, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
        table, idx = vals[s["table"]], vals[s["idx"]]
        flat = idx.reshape(-1).contiguous()
        R, C = flat.numel(), types[s["out"]][1][-1]      # (MXFP4 codes: two per byte)
        out = self.empty((R, C), s["dtype"])
        c = self.cfg(s, {"BLOCK_R": pow2(min(R, 64)), "BLOCK_C": pow2(min(C, 1024), 32)})
        self.k[s["kernel"]][(math.ceil(R / c["BLOCK_R"]),)](table.m, table.e, flat, out, R, C, **c)
        return out.reshape(*idx.shape, C)

    # integer-only graphs: llmc/backends/gpu/intk.py
    def op_int_gemm(self, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
        from llmc.backends.gpu import intk
        return intk.run_gemm(self, s, vals, types)

    def op_int_rms_norm(self, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
        from llmc.backends.gpu import intk
        return intk.run_rms_norm(self, s, vals, types)

    def op_int_attention(self, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
        from llmc.backends.gpu import intk
        return intk.run_attention(self, s, vals, types)

    def op_int_elementwise(self, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
        from llmc.backends.gpu import intk
        return intk.run_elementwise(self, s, vals, types)

    def op_moe(self, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
        from llmc.backends.gpu.moe import run_moe
        return run_moe(self, s, vals, types)

    def op_rope(self, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
        x, cos, sin = vals[s["x"]], vals[s["cos"]], vals[s["sin"]]
        B, H, T, D = x.shape
        if x.stride(3) != 1:
            x = x.contiguous()
        cos, sin = self.rows(cos, D), self.rows(sin, D)
        out = self.empty((B, H, T, D), types[s["out"]][0])
        R = B * H * T
        br = pow2(min(R, 1024 if self.where.interpret else 16), 1)
        self.k["rope"][(math.ceil(R / br),)](
            x, cos, sin, out, R, H, T, D, x.stride(0), x.stride(1), x.stride(2), cos.stride(0),
            BLOCK_R=br, BLOCK_D=pow2(D, 1))
        return out

    def op_attention(self, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
        import torch

        q, km, vm, ke, ve, fmt, m = self.attention_operands(s, vals)
        B, H, T, D = q.shape
        G, TK = km.shape[1], km.shape[2]
        mask, s_mt, anchor, s_at = km, 0, km, 0
        window = s.get("window") or 0
        if m is not None:
            mask = m.to(torch.uint8).contiguous()
            s_mt = TK if m.shape[0] == T else 0
            if window:     # the sliding window counts back from each row's last visible key
                from llmc.backends.gpu.decode import anchors

                anchor = anchors(m.bool(), T, TK, s["causal"])
                s_at = 1 if anchor.numel() > 1 else 0
        out = self.empty((B, H, T, D), types[s["out"]][0])
        bq, bk = s["block_q"], s["block_k"]
        hpg = H // G
        if self.where.interpret:     # one row tile per K/V head: fewer programs
            bq = max(bq, pow2(min(hpg * T, 128)))
        grid = (math.ceil(hpg * T / bq), B * G)
        self.k["attention"][grid](
            q, km, vm, out, ke, ve, mask, anchor, G, T, TK, hpg, D, s["scale"], window,
            s.get("sinks") or 0,
            *self.kv_strides(q, km, vm, ke, ve), s_mt, s_at, CAUSAL=s["causal"], HAS_MASK=s["mask"] is not None, WINDOW=window > 0,
            KV_BLOCK=fmt.get("block", 0), KV_SHIFT=fmt.get("shift", 0),
            BLOCK_Q=bq, BLOCK_K=bk, BLOCK_D=pow2(D, 16), DOT_F32=self.where.dot_f32,
            PRECISION="ieee" if q.dtype == torch.float32 else "tf32")
        return out

    def op_decode_attention(self, s: Mapping[str, Any], vals: dict[str, Any],
                            types: Any) -> Any:
        from llmc.backends.gpu.decode import run_decode_attention

        return run_decode_attention(self, s, vals, types)

    def op_layer_norm(self, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
        from llmc.backends.gpu.pointwise import run_layer_norm

        return run_layer_norm(self, s, vals, types)

    def op_pointwise(self, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
        from llmc.backends.gpu.pointwise import run_pointwise

        return run_pointwise(self, s, vals, types)

    @staticmethod
    def _unit(t: Any) -> Any:
        return t if t.stride(-1) == 1 else t.contiguous()

    def op_quantize(self, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
        import torch

        x = self._unit(vals[s["x"]])
        B, G, T, D = x.shape
        R, blk = B * G * T, s["block"]
        m = torch.empty((B, G, T, D), dtype=torch.int8, device=self.where.device)
        e = torch.empty((B, G, T, D // blk), dtype=torch.int8, device=self.where.device)
        br = pow2(min(R, 256), 1)
        self.k["block_quantize"][(math.ceil(R / br),)](
            x, m, e, R, G, T, x.stride(0), x.stride(1), x.stride(2), D=D, KV_BLOCK=blk,
            SHIFT=s["shift"], TOP=s["top"], BLOCK_R=br)
        return Blocked(m, e, s["dtype"])

    def op_kv_write(self, s: Mapping[str, Any], vals: dict[str, Any], types: Any) -> Any:
        cache, idx, src = vals[s["cache"]], vals[s["idx"]], vals[s["src"]]
        self.kv_write(cache, idx, src)
        return cache

    def kv_write(self, cache: Any, idx: Any, src: Any) -> None:
        """Rows of src (B, G, TN, C) into cache (B, G, S, C) at positions idx, in place."""
        if isinstance(cache, Blocked):
            self.kv_write(cache.m, idx, src.m)
            self.kv_write(cache.e, idx, src.e)
            return
        src = self._unit(src)
        B, G, TN, C = src.shape
        R = B * G * TN
        br = pow2(min(R, 256), 1)
        self.k["kv_write"][(math.ceil(R / br),)](
            src, cache, idx.contiguous(), R, G, TN, cache.shape[2], C,
            src.stride(0), src.stride(1), src.stride(2), BLOCK_R=br, BLOCK_C=pow2(C, 1))


def read_program(text: str) -> dict[str, Any]:
    return json.loads(text)
