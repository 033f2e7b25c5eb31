"""Weights as safetensors bytes, written deterministically.

The format (https://github.com/huggingface/safetensors): an 8-byte
little-endian header length, a JSON header (name -> dtype, shape, byte
offsets; `__metadata__` string pairs), then the tensors' bytes. It is
written here rather than by the safetensors package so that the bytes are
fixed by the inputs alone: tensors in sorted name order, compact JSON with
sorted keys, fixed metadata, the header padded with spaces to 8 bytes.
Reading goes through the safetensors package.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping

import numpy as np

from llmc.errors import UsageError

_CODES = {"float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64",
          "int32": "I32", "int16": "I16", "int8": "I8", "uint64": "U64", "uint32": "U32",
          "uint16": "U16", "uint8": "U8", "bool": "BOOL"}


def dumps(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
          ) -> bytes:
    """The safetensors bytes of `tensors` (numpy arrays by name)."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in sorted(metadata.items())}
    chunks, offset = [], 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        if a.dtype.name not in _CODES:
            raise UsageError(f"weight {name!r}: dtype {a.dtype} has no safetensors code")
        data = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"data_offsets": [offset, offset + len(data)],
                        "dtype": _CODES[a.dtype.name], "shape": list(a.shape)}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def loads(data: bytes) -> dict[str, np.ndarray]:
    """Tensors by name from safetensors bytes."""
    from safetensors.numpy import load

    return load(data)
