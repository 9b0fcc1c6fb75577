"""Minimal GGUF (v2/v3) key/value reader used by the golden-fixture scripts.

Reads only the metadata section (no tensors); arrays come back as Python lists.
Standard library only.
"""

from __future__ import annotations

import struct
from pathlib import Path

_GGUF_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
    10: "<Q", 11: "<q", 12: "<d",
}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def read_gguf_metadata(path: Path) -> dict:
    """Reads the key/value section of a GGUF file (v2/v3). Arrays come back as lists."""
    with open(path, "rb") as f:
        def take(n: int) -> bytes:
            b = f.read(n)
            if len(b) != n:
                raise ValueError("truncated GGUF header")
            return b

        def unpack(fmt: str):
            return struct.unpack(fmt, take(struct.calcsize(fmt)))[0]

        def string() -> str:
            return take(unpack("<Q")).decode("utf-8")

        def value(vtype: int):
            if vtype in _GGUF_SCALARS:
                return unpack(_GGUF_SCALARS[vtype])
            if vtype == _GGUF_STRING:
                return string()
            if vtype == _GGUF_ARRAY:
                etype = unpack("<I")
                n = unpack("<Q")
                return [value(etype) for _ in range(n)]
            raise ValueError(f"unknown GGUF value type {vtype}")

        if take(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        version = unpack("<I")
        if version not in (2, 3):
            raise ValueError(f"unsupported GGUF version {version}")
        n_tensors = unpack("<Q")
        n_kv = unpack("<Q")
        kv = {}
        for _ in range(n_kv):
            key = string()
            kv[key] = value(unpack("<I"))
        return {"version": version, "n_tensors": n_tensors, "kv": kv}
