"""Real model shapes for the benchmarks (issue 17 item 1), generated deterministically.

Three shapes, each a directory written once and reused while its manifest matches:

- ``sharded``: a sharded safetensors model, ``shards`` x ``shard_mib`` MiB (default
  8 x 512 MiB), with ``model.safetensors.index.json``, ``config.json``,
  ``tokenizer.json`` and ``tokenizer_config.json``, as a Hugging Face checkpoint is laid out;
- ``small-files``: ``count`` files of ``size`` bytes (default 10,000 x 4 KiB) in
  100 directories, the shape of a dataset-like artifact or an unpacked tokenizer zoo;
- ``one-file``: one safetensors file of ``mib`` MiB (default 5 GiB).

The bytes come from a counter-mode SHA-256 stream seeded by the shape and file name, so
two runs (and two machines) get the same bytes, and nothing compresses or deduplicates
by accident. Every file is written in 4 MiB blocks: memory does not grow with size.

    .venv/bin/python bench/shapes.py DIR [--scale 0.01]   # writes all three, prints them
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
_BLOCK = 4 * MIB
_MANIFEST = "shape.json"


def stream(seed: str, size: int) -> Iterator[bytes]:
    """``size`` deterministic pseudo-random bytes in blocks of at most 4 MiB."""
    key = hashlib.sha256(seed.encode()).digest()
    counter = 0
    left = size
    while left > 0:
        n = min(_BLOCK, left)
        out = bytearray()
        while len(out) < n:
            out += hashlib.shake_256(key + struct.pack("<Q", counter)).digest(
                min(n - len(out), MIB)
            )
            counter += 1
        left -= n
        yield bytes(out)


def _safetensors(path: Path, seed: str, data_bytes: int, tensor_bytes: int = 64 * MIB) -> int:
    """A valid safetensors file of ``data_bytes`` of F32 tensor data; its total size."""
    tensors: dict[str, object] = {}
    offset = 0
    index = 0
    while offset < data_bytes:
        n = min(tensor_bytes, data_bytes - offset)
        n -= n % 4
        if n == 0:
            break
        tensors[f"layers.{index}.weight"] = {
            "dtype": "F32",
            "shape": [n // 4],
            "data_offsets": [offset, offset + n],
        }
        offset += n
        index += 1
    header = json.dumps({"__metadata__": {"format": "pt"}, **tensors}).encode()
    header += b" " * (-len(header) % 8)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)
        for block in stream(seed, offset):
            fh.write(block)
    return 8 + len(header) + offset


@dataclass(frozen=True)
class Shape:
    """A generated shape: where it is, what it holds."""

    name: str
    root: Path
    files: int
    bytes: int


def _done(root: Path, spec: dict[str, object]) -> Shape | None:
    try:
        found = json.loads((root / _MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if found.get("spec") != spec:
        return None
    return Shape(str(spec["shape"]), root, int(found["files"]), int(found["bytes"]))


def _record(root: Path, spec: dict[str, object], files: int, total: int) -> Shape:
    (root / _MANIFEST).write_text(json.dumps({"spec": spec, "files": files, "bytes": total}))
    return Shape(str(spec["shape"]), root, files, total)


def sharded(root: Path, shards: int = 8, shard_mib: int = 512) -> Shape:
    """The sharded safetensors checkpoint with its tokenizer and config files."""
    spec: dict[str, object] = {"shape": "sharded", "shards": shards, "shard_mib": shard_mib}
    if (done := _done(root, spec)) is not None:
        return done
    root.mkdir(parents=True, exist_ok=True)
    total, weight_map = 0, {}
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        total += _safetensors(root / name, f"sharded/{name}", shard_mib * MIB)
        weight_map[f"shard.{i}"] = name
    extra = {
        "model.safetensors.index.json": json.dumps({"weight_map": weight_map}).encode(),
        "config.json": json.dumps({"architectures": ["Bench"], "hidden_size": 4096}).encode(),
        "tokenizer_config.json": b'{"model_max_length": 4096}',
        "tokenizer.json": json.dumps(
            {"model": {"vocab": {f"tok{i}": i for i in range(32000)}}}
        ).encode(),
    }
    for name, data in extra.items():
        (root / name).write_bytes(data)
        total += len(data)
    return _record(root, spec, shards + len(extra), total)


def small_files(root: Path, count: int = 10_000, size: int = 4096) -> Shape:
    """``count`` files of ``size`` bytes in 100 directories."""
    spec: dict[str, object] = {"shape": "small-files", "count": count, "size": size}
    if (done := _done(root, spec)) is not None:
        return done
    for i in range(count):
        path = root / f"d{i % 100:02d}" / f"f{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        # A leading zero byte: never mistaken for a pickle by the ingest scan.
        path.write_bytes(b"\x00" + b"".join(stream(f"small/{i}", size - 1)))
    return _record(root, spec, count, count * size)


def one_file(root: Path, mib: int = 5 * 1024) -> Shape:
    """One safetensors file of about ``mib`` MiB."""
    spec: dict[str, object] = {"shape": "one-file", "mib": mib}
    if (done := _done(root, spec)) is not None:
        return done
    root.mkdir(parents=True, exist_ok=True)
    total = _safetensors(root / "model.safetensors", "one-file", mib * MIB)
    return _record(root, spec, 1, total)


def all_shapes(base: Path, scale: float = 1.0) -> list[Shape]:
    """The three shapes under ``base``, sizes multiplied by ``scale`` (1.0: the issue's)."""
    return [
        sharded(base / "sharded", shard_mib=max(1, round(512 * scale))),
        small_files(base / "small-files", count=max(10, round(10_000 * scale))),
        one_file(base / "one-file", mib=max(1, round(5 * 1024 * scale))),
    ]


def main() -> None:
    """Write the shapes and print what they hold."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--scale", type=float, default=1.0, help="size factor (1.0: full)")
    args = parser.parse_args()
    for shape in all_shapes(args.dir, args.scale):
        print(f"{shape.name:12} {shape.files:6} files {shape.bytes / 1e9:8.3f} GB  {shape.root}")


if __name__ == "__main__":
    main()
