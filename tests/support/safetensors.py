"""Valid safetensors files built by hand (no numpy, no torch)."""

from __future__ import annotations

import json
import os

DTYPE_BYTES = {"F32": 4, "F16": 2, "U8": 1, "I64": 8}


def safetensors(tensors: dict[str, tuple[str, list[int]]]) -> tuple[bytes, dict[str, bytes]]:
    """A safetensors file of random tensors ``name -> (dtype, shape)``; the file and each
    tensor's bytes."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    data: dict[str, bytes] = {}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        count = 1
        for dim in shape:
            count *= dim
        raw = os.urandom(count * DTYPE_BYTES[dtype])
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        data[name] = raw
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    body = len(text).to_bytes(8, "little") + text + b"".join(data.values())
    return body, data
