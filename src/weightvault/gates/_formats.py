"""What a file really is, decided by its bytes, and whether it is safe to admit.

Model files arrive with names that prove nothing: a pickle renamed
``model.safetensors`` is still a pickle, and unpickling it runs whatever code
its author put in it. This module therefore never trusts an extension and
never deserialises anything that can execute code. It

* detects a file's format from a bounded prefix of its bytes
  (:func:`detect_format`; a ZIP's central directory is read as metadata too),
* checks a safetensors header completely without touching tensor data
  (:func:`check_safetensors_header` returns a report, python-tuf style, and
  :func:`validate_safetensors_header` raises :class:`InvalidInputError`),
* scans files and artifacts (:func:`scan_file`, :func:`scan_artifact`),
  asking ``picklescan`` for a second opinion on pickle-based content. Only the
  pickle *disassembler* (``pickletools``) and picklescan's static opcode walk
  ever look at a pickle; nothing calls ``pickle.load``, ``torch.load`` or
  ``joblib.load``.

A scan verdict is ``"clean"`` or ``"unsafe"``. Unsafe means "do not admit;
quarantine": pickle-based content of any kind (it can execute code when
loaded, whatever picklescan finds), a malformed safetensors header,
compressed or unrecognised binary content that cannot be shown harmless,
symbolic links and special files.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import pickletools
import stat
import struct
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, cast

from weightvault._fs import walk_tree
from weightvault.errors import InvalidInputError, NotFoundError

PREFIX_BYTES = 64 * 1024
"""How much of a file :func:`detect_format` reads."""

DEFAULT_MAX_HEADER_BYTES = 100 * 1024 * 1024
"""Largest safetensors header accepted (the reference implementation's cap)."""

MAX_REASONS = 64
"""A report lists at most this many reasons, then says how many were left out."""

Verdict = Literal["clean", "unsafe"]


class FileFormat(StrEnum):
    """A file's format as its content shows it (values appear in policy input)."""

    SAFETENSORS = "safetensors"
    PICKLE = "pickle"
    TORCH_ZIP = "torch-zip"
    JOBLIB = "joblib"
    DILL = "dill"
    NPY = "npy"
    NPY_PICKLE = "npy-pickle"
    GGUF = "gguf"
    ONNX = "onnx"
    SENTENCEPIECE = "sentencepiece"
    JSON = "json"
    TEXT = "text"
    ZIP = "zip"
    COMPRESSED = "compressed"
    UNKNOWN = "unknown"

    @property
    def pickle_based(self) -> bool:
        """True if loading this format with its usual library runs pickle."""
        return self in PICKLE_BASED


PICKLE_BASED = frozenset(
    {
        FileFormat.PICKLE,
        FileFormat.TORCH_ZIP,
        FileFormat.JOBLIB,
        FileFormat.DILL,
        FileFormat.NPY_PICKLE,
    }
)

# Bytes every file of a format starts with.
_GGUF_MAGIC = b"GGUF"
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_COMPRESSED_MAGICS = (
    b"\x1f\x8b",  # gzip (joblib compress="gzip")
    b"BZh",  # bzip2
    b"\xfd7zXZ\x00",  # xz
    b"\x28\xb5\x2f\xfd",  # zstandard
    b"\x04\x22\x4d\x18",  # lz4 frame
    b"7z\xbc\xaf\x27\x1c",  # 7-Zip
    b"ZF0x",  # joblib's legacy zlib container
)
_PROTO = 0x80
_HIGHEST_PROTOCOL = 5
_PICKLE_OPCODES = frozenset(op.code.encode("latin-1") for op in pickletools.opcodes)
_MIN_TRUNCATED_OPCODES = 16
# What pickletools says when the data ends mid-pickle (as opposed to a bad opcode or stack).
_TRUNCATION_MESSAGES = ("exhausted before seeing STOP", "but only", "no newline found")
_TEXT_CONTROLS_OK = frozenset("\t\n\r\f\v\x1b")

# Size in bits of one element of each safetensors dtype.
SAFETENSORS_DTYPE_BITS: Mapping[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}

# Extensions that promise a specific binary format; content must keep the promise.
_PROMISED_BY_EXTENSION: Mapping[str, FileFormat] = {
    ".safetensors": FileFormat.SAFETENSORS,
    ".gguf": FileFormat.GGUF,
    ".npy": FileFormat.NPY,
}

# A .npy whose dtype holds objects is still NPY (the pickle inside is reported anyway).
_SAME_EXTENSION: Mapping[FileFormat, FileFormat] = {FileFormat.NPY: FileFormat.NPY_PICKLE}

# --------------------------------------------------------------------------- detection


def detect_format(path: Path) -> FileFormat:
    """Decide what ``path`` contains from its first :data:`PREFIX_BYTES` bytes.

    ZIP files additionally have their central directory listed (names only)
    to tell a torch checkpoint (``data.pkl`` or ``*/data.pkl``) from other
    archives. Raises :class:`NotFoundError` if the file does not exist and
    :class:`InvalidInputError` if it is not a regular file.
    """
    size = _regular_file_size(path)
    with path.open("rb") as handle:
        prefix = handle.read(PREFIX_BYTES)
    return _classify(path, prefix, size)


def _regular_file_size(path: Path) -> int:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise NotFoundError(f"no such file: {path}") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot stat {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInputError(f"not a regular file: {path}")
    return info.st_size


def _classify(path: Path, prefix: bytes, size: int) -> FileFormat:
    """Try each detector in an order where no earlier one can shadow a later one."""
    if size == 0:
        return FileFormat.TEXT
    by_magic = _magic_kind(path, prefix)
    if by_magic is not None:
        return by_magic
    if _looks_like_safetensors(prefix, size) and _pickle_extent(prefix) <= 8:
        return FileFormat.SAFETENSORS
    if _has_proto_opcode(prefix) or _looks_like_legacy_pickle(prefix, size):
        return _pickle_kind(prefix)
    text = _as_text(prefix, size)
    if text is not None:
        return _text_kind(text, truncated=len(prefix) < size)
    return _binary_kind(prefix)


def _magic_kind(path: Path, prefix: bytes) -> FileFormat | None:
    """Formats that announce themselves with fixed leading bytes."""
    if prefix.startswith(_GGUF_MAGIC):
        return FileFormat.GGUF
    if prefix.startswith(_NPY_MAGIC):
        return _npy_kind(prefix)
    if prefix.startswith(_ZIP_MAGICS):
        return _zip_kind(path)
    if prefix.startswith(_COMPRESSED_MAGICS):
        return FileFormat.COMPRESSED
    return None


def _binary_kind(prefix: bytes) -> FileFormat:
    if _looks_like_sentencepiece(prefix):
        return FileFormat.SENTENCEPIECE
    if _looks_like_onnx(prefix):
        return FileFormat.ONNX
    if _looks_like_zlib(prefix):
        return FileFormat.COMPRESSED
    return FileFormat.UNKNOWN


def _npy_kind(prefix: bytes) -> FileFormat:
    """NPY, or NPY_PICKLE when its dtype holds Python objects (stored as a pickle)."""
    import numpy as np

    stream = io.BytesIO(prefix)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "created on Python 2"
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                _, _, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version in {(2, 0), (3, 0)}:
                _, _, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                return FileFormat.UNKNOWN
    except (ValueError, TypeError, SyntaxError, KeyError, EOFError):
        return FileFormat.UNKNOWN
    return FileFormat.NPY_PICKLE if dtype.hasobject else FileFormat.NPY


def _zip_names(path: Path) -> list[str] | None:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None


def _zip_kind(path: Path) -> FileFormat:
    names = _zip_names(path)
    if names is None:
        return FileFormat.UNKNOWN
    if any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
        return FileFormat.TORCH_ZIP
    return FileFormat.ZIP


def _has_proto_opcode(prefix: bytes) -> bool:
    """Protocol 2+ pickles start with PROTO (0x80) and the protocol number."""
    return len(prefix) >= 2 and prefix[0] == _PROTO and prefix[1] <= _HIGHEST_PROTOCOL


def _looks_like_legacy_pickle(prefix: bytes, size: int) -> bool:
    """Protocol 0/1 pickles have no magic: disassemble (never execute) the prefix.

    :func:`pickletools.dis` parses opcodes and checks the stack and memo
    effects of each. A pickle if that succeeds up to STOP, or if the read
    limit cut the prefix short after many well-formed opcodes.
    """
    if not prefix or prefix[:1] not in _PICKLE_OPCODES:
        return False
    listing = io.StringIO()
    try:
        pickletools.dis(prefix, out=listing)
    except (ValueError, struct.error, EOFError, OverflowError, IndexError) as exc:
        cut_short = len(prefix) < size and any(m in str(exc) for m in _TRUNCATION_MESSAGES)
        return cut_short and listing.getvalue().count("\n") >= _MIN_TRUNCATED_OPCODES
    return True


def _pickle_extent(prefix: bytes) -> int:
    """How far into ``prefix`` an unpickler could get before stopping or failing.

    A safetensors header length may happen to start like a pickle (a length
    of 640 is ``80 02 00 ..``: PROTO 2, then an invalid opcode). If the
    opcodes stop within the 8-byte length field, nothing an unpickler could
    run fits in them, so the file is safetensors; anything longer is treated
    as a pickle (a polyglot), never the other way round.
    """
    stream = io.BytesIO(prefix)
    try:
        for opcode, _arg, _pos in pickletools.genops(stream):
            if opcode.name == "STOP":
                break
    except (ValueError, struct.error, EOFError, OverflowError) as exc:
        if any(m in str(exc) for m in _TRUNCATION_MESSAGES):
            return len(prefix)
        if "unknown" in str(exc):  # the bad opcode itself never runs
            return stream.tell() - 1
    return stream.tell()


def _pickle_kind(prefix: bytes) -> FileFormat:
    """Which pickle-based library wrote it, from the globals it names."""
    if b"joblib.numpy_pickle" in prefix or b"NumpyArrayWrapper" in prefix:
        return FileFormat.JOBLIB
    if b"dill._dill" in prefix:
        return FileFormat.DILL
    return FileFormat.PICKLE


def _looks_like_safetensors(prefix: bytes, size: int) -> bool:
    """An 8-byte little-endian length that fits the file, then a JSON object."""
    if len(prefix) < 10 or prefix[8:9] != b"{":
        return False
    header_length = int.from_bytes(prefix[:8], "little")
    return 2 <= header_length <= size - 8


def _as_text(prefix: bytes, size: int) -> str | None:
    """The prefix as UTF-8 text without control characters, else None."""
    try:
        text = prefix.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A read limit may split a multi-byte character; anything else is binary.
        if len(prefix) == size or exc.start < len(prefix) - 3:
            return None
        text = prefix[: exc.start].decode("utf-8")
    if any(ord(ch) < 32 and ch not in _TEXT_CONTROLS_OK for ch in text) or "\x7f" in text:
        return None
    return text


def _text_kind(text: str, *, truncated: bool) -> FileFormat:
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped.startswith(("{", "[")):
        return FileFormat.TEXT
    if truncated:
        return FileFormat.JSON
    try:
        json.loads(stripped)
    except (ValueError, RecursionError):
        return FileFormat.TEXT
    return FileFormat.JSON


def _read_varint(data: bytes, pos: int) -> tuple[int, int] | None:
    """A protobuf varint at ``pos``: (value, next position), or None."""
    value = 0
    for shift in range(0, 64, 7):
        if pos >= len(data):
            return None
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    return None


def _length_delimited(data: bytes, pos: int, tag: int) -> tuple[bytes, int] | None:
    """Field ``tag`` with a length prefix at ``pos``: (payload, next position)."""
    if pos >= len(data) or data[pos] != tag:
        return None
    varint = _read_varint(data, pos + 1)
    if varint is None:
        return None
    length, start = varint
    if start + length > len(data):
        return None
    return data[start : start + length], start + length


def _is_sentencepiece_piece(message: bytes) -> bool:
    """``SentencePiece{piece=1 (string), score=2 (float), type=3 (enum)}``."""
    piece = _length_delimited(message, 0, 0x0A)
    if piece is None:
        return False
    text, pos = piece
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return False
    while pos < len(message):
        if message[pos] == 0x15:  # score: fixed32
            pos += 5
        elif message[pos] == 0x18:  # type: varint
            varint = _read_varint(message, pos + 1)
            if varint is None:
                return False
            pos = varint[1]
        else:
            return False
    return pos == len(message)


def _looks_like_sentencepiece(prefix: bytes) -> bool:
    """A ``ModelProto`` whose first three fields are well-formed pieces."""
    pos = 0
    for _ in range(3):
        field_ = _length_delimited(prefix, pos, 0x0A)
        if field_ is None or not _is_sentencepiece_piece(field_[0]):
            return False
        pos = field_[1]
    return True


_ONNX_FIELD_TAGS = frozenset({0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72})


def _looks_like_onnx(prefix: bytes) -> bool:
    """``ModelProto`` starts with ``ir_version`` (field 1, small varint)."""
    if prefix[:1] != b"\x08":
        return False
    varint = _read_varint(prefix, 1)
    if varint is None or not 1 <= varint[0] <= 32:
        return False
    return varint[1] < len(prefix) and prefix[varint[1]] in _ONNX_FIELD_TAGS


def _looks_like_zlib(prefix: bytes) -> bool:
    """A raw zlib stream (joblib's default compressor); checked only on binary data."""
    return len(prefix) >= 2 and prefix[0] == 0x78 and (prefix[0] << 8 | prefix[1]) % 31 == 0


# --------------------------------------------------------------------------- safetensors


@dataclass(frozen=True)
class TensorInfo:
    """One tensor entry of a safetensors header (offsets relative to the data region)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class SafetensorsReport:
    """What :func:`check_safetensors_header` found; ``ok`` when there are no reasons."""

    path: str
    reasons: tuple[str, ...]
    header_length: int | None = None
    data_length: int | None = None
    tensors: tuple[TensorInfo, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True if the header is well-formed and the tensors tile the data exactly."""
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "path": self.path,
            "ok": self.ok,
            "reasons": list(self.reasons),
            "header_length": self.header_length,
            "data_length": self.data_length,
            "tensor_count": len(self.tensors),
            "metadata": dict(self.metadata),
        }


def check_safetensors_header(
    path: Path, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
) -> SafetensorsReport:
    """Check a safetensors file's header and layout, reading only the header.

    Returns a report listing every problem found: header length over
    ``max_header_bytes`` or past the end of the file, a header that is not a
    UTF-8 JSON object, duplicate keys, unknown dtypes, malformed or
    out-of-bounds ``data_offsets``, gaps or overlaps between tensors, a
    dtype size times element count that does not match the byte span,
    trailing bytes after the last tensor, and a ``__metadata__`` that is not
    a string-to-string map. Tensor data is never read.
    """
    size = _regular_file_size(path)
    with path.open("rb") as handle:
        raw_length = handle.read(8)
        header_bytes = b""
        if len(raw_length) == 8:
            header_length = int.from_bytes(raw_length, "little")
            if _header_length_problem(header_length, size, max_header_bytes) is None:
                header_bytes = handle.read(header_length)
    return check_safetensors_bytes(str(path), raw_length + header_bytes, size, max_header_bytes)


def safetensors_header_length(prefix: bytes) -> int | None:
    """The header length a safetensors file's first 8 bytes give (None if fewer)."""
    return int.from_bytes(prefix[:8], "little") if len(prefix) >= 8 else None


def check_safetensors_bytes(
    name: str, prefix: bytes, size: int, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
) -> SafetensorsReport:
    """:func:`check_safetensors_header` of a file known by its first bytes and its size.

    ``prefix`` is the file's first ``8 + header length`` bytes (more are ignored); the
    size is the whole file's, so the layout check (tensors tile the data region
    ``size - 8 - header length`` exactly) is the same as for a file on disk. ``name``
    labels the report. For a file that is not local, e.g. one stored in the vault.
    """
    if len(prefix) < 8:
        return _report(name, [f"file is {size} bytes, shorter than the 8-byte header length"])
    header_length = int.from_bytes(prefix[:8], "little")
    problem = _header_length_problem(header_length, size, max_header_bytes)
    if problem:
        return _report(name, [problem], header_length=header_length)
    if len(prefix) < 8 + header_length:
        return _report(
            name,
            [f"header of {header_length} bytes is incomplete ({len(prefix) - 8} given)"],
            header_length=header_length,
        )
    header_bytes = bytes(prefix[8 : 8 + header_length])
    data_length = size - 8 - header_length
    header, reasons = _parse_header(header_bytes)
    if header is None:
        return _report(name, reasons, header_length=header_length, data_length=data_length)
    metadata, meta_reasons = _parse_metadata(header.get("__metadata__"))
    tensors, tensor_reasons = _parse_tensors(header, data_length)
    reasons += meta_reasons + tensor_reasons + _layout_problems(tensors, data_length)
    return _report(
        name,
        reasons,
        header_length=header_length,
        data_length=data_length,
        tensors=tensors,
        metadata=metadata,
    )


def validate_safetensors_header(
    path: Path, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
) -> SafetensorsReport:
    """Like :func:`check_safetensors_header`, but raise :class:`InvalidInputError`.

    The error message names the file and every reason, on one line.
    """
    report = check_safetensors_header(path, max_header_bytes)
    if not report.ok:
        raise InvalidInputError(
            f"{path.name} is not a valid safetensors file: {'; '.join(report.reasons)}"
        )
    return report


def _report(
    path: str | Path,
    reasons: list[str],
    *,
    header_length: int | None = None,
    data_length: int | None = None,
    tensors: Sequence[TensorInfo] = (),
    metadata: Mapping[str, str] | None = None,
) -> SafetensorsReport:
    return SafetensorsReport(
        path=str(path),
        reasons=_capped(reasons),
        header_length=header_length,
        data_length=data_length,
        tensors=tuple(tensors),
        metadata=dict(metadata or {}),
    )


def _capped(reasons: Sequence[str]) -> tuple[str, ...]:
    if len(reasons) <= MAX_REASONS:
        return tuple(reasons)
    left_out = len(reasons) - MAX_REASONS
    return (*reasons[:MAX_REASONS], f"... and {left_out} more problems")


def _header_length_problem(header_length: int, size: int, cap: int) -> str | None:
    if header_length > cap:
        return f"header length {header_length} exceeds the {cap}-byte cap"
    if 8 + header_length > size:
        return f"header length {header_length} runs past the end of the {size}-byte file"
    return None


def _parse_header(header_bytes: bytes) -> tuple[dict[str, Any] | None, list[str]]:
    """The header as a dict, or None with the reasons it is not a usable JSON object."""
    duplicates: list[str] = []

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                duplicates.append(key)
            out[key] = value
        return out

    try:
        text = header_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [f"header is not UTF-8 (bad byte at offset {exc.start})"]
    try:
        header = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        return None, [f"header is not valid JSON ({exc.msg} at offset {exc.pos})"]
    except ValueError as exc:
        return None, [f"header is not valid JSON ({exc})"]
    except RecursionError:
        return None, ["header is not valid JSON (nested too deeply)"]
    reasons = [f"duplicate key {key!r} in header" for key in duplicates]
    if not isinstance(header, dict):
        return None, [*reasons, f"header is a JSON {type(header).__name__}, not an object"]
    return header, reasons


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_metadata(raw: Any) -> tuple[dict[str, str], list[str]]:
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        return {}, ["__metadata__ is not a string-to-string map"]
    reasons = [
        f"__metadata__[{key!r}] is a {type(value).__name__}, not a string"
        for key, value in raw.items()
        if not isinstance(value, str)
    ]
    return {k: v for k, v in raw.items() if isinstance(v, str)}, reasons


def _parse_tensors(
    header: Mapping[str, Any], data_length: int
) -> tuple[list[TensorInfo], list[str]]:
    tensors: list[TensorInfo] = []
    reasons: list[str] = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        info, problems = _parse_tensor(name, entry, data_length)
        reasons += problems
        if info is not None:
            tensors.append(info)
    return tensors, reasons


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_tensor(name: str, entry: Any, data_length: int) -> tuple[TensorInfo | None, list[str]]:
    """A tensor entry, or None if its offsets are unusable; and its problems."""
    if not isinstance(entry, dict):
        return None, [f"tensor {name!r}: entry is not an object"]
    reasons: list[str] = []
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    dtype_ok = isinstance(dtype, str) and dtype in SAFETENSORS_DTYPE_BITS
    if not dtype_ok:
        reasons.append(f"tensor {name!r}: unknown dtype {dtype!r}")
    shape_ok = isinstance(shape, list) and all(_is_int(d) and d >= 0 for d in shape)
    if not shape_ok:
        reasons.append(f"tensor {name!r}: shape {shape!r} is not a list of non-negative integers")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(_is_int(o) for o in offsets)
        and 0 <= offsets[0] <= offsets[1]
    ):
        reasons.append(
            f"tensor {name!r}: data_offsets {offsets!r} is not [begin, end] integers "
            "with 0 <= begin <= end"
        )
        return None, reasons
    begin, end = offsets
    if end > data_length:
        reasons.append(
            f"tensor {name!r}: data_offsets [{begin}, {end}] are out of bounds "
            f"of the {data_length}-byte data region"
        )
    dims: tuple[int, ...] = tuple(cast("list[int]", shape)) if shape_ok else ()
    if dtype_ok and shape_ok:
        reasons += _size_problems(name, str(dtype), dims, end - begin)
    info = TensorInfo(name, str(dtype), dims, begin, end)
    return info, reasons


def _size_problems(name: str, dtype: str, shape: tuple[int, ...], span: int) -> list[str]:
    elements = 1
    for dim in shape:
        elements *= dim
    bits = SAFETENSORS_DTYPE_BITS[dtype] * elements
    if bits % 8:
        return [f"tensor {name!r}: {dtype} x shape {list(shape)} is {bits} bits, not whole bytes"]
    if bits // 8 != span:
        return [
            f"tensor {name!r}: {dtype} x shape {list(shape)} needs {bits // 8} bytes "
            f"but data_offsets span {span}"
        ]
    return []


def _layout_problems(tensors: Sequence[TensorInfo], data_length: int) -> list[str]:
    """Tensors sorted by offset must tile ``[0, data_length)`` with no gap or overlap."""
    reasons: list[str] = []
    cursor, previous = 0, None
    for info in sorted(tensors, key=lambda t: (t.begin, t.end, t.name)):
        if info.begin > cursor:
            reasons.append(
                f"gap of {info.begin - cursor} bytes before tensor {info.name!r} "
                f"(bytes {cursor}..{info.begin} belong to no tensor)"
            )
        elif info.begin < cursor and previous is not None:
            reasons.append(
                f"tensor {info.name!r} (bytes {info.begin}..{info.end}) overlaps "
                f"tensor {previous!r} (ends at {cursor})"
            )
        if info.end >= cursor:
            cursor, previous = info.end, info.name
    if cursor < data_length:
        reasons.append(
            f"{data_length - cursor} trailing bytes after the data region "
            f"(tensors end at {cursor}, the file has {data_length} data bytes)"
        )
    return reasons


# --------------------------------------------------------------------------- scanning


@dataclass(frozen=True)
class PickleGlobal:
    """A global a pickle imports, as picklescan rated it."""

    module: str
    name: str
    safety: str  # "innocuous" | "suspicious" | "dangerous"


@dataclass(frozen=True)
class PicklescanOpinion:
    """picklescan's static reading of pickle-based content (it never unpickles)."""

    globals: tuple[PickleGlobal, ...]
    issues: int
    error: str | None = None

    @property
    def dangerous(self) -> tuple[str, ...]:
        """``module.name`` of every global picklescan rates dangerous."""
        return tuple(f"{g.module}.{g.name}" for g in self.globals if g.safety == "dangerous")

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "globals": [
                {"module": g.module, "name": g.name, "safety": g.safety} for g in self.globals
            ],
            "issues": self.issues,
            "error": self.error,
        }


@dataclass(frozen=True)
class ScanResult:
    """The verdict on one file of an artifact, with every reason behind it."""

    path: str
    format: FileFormat
    size: int
    verdict: Verdict
    reasons: tuple[str, ...] = ()
    picklescan: PicklescanOpinion | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "path": self.path,
            "format": self.format.value,
            "size": self.size,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "picklescan": None if self.picklescan is None else self.picklescan.to_dict(),
        }


def scan_file(path: Path, *, name: str | None = None) -> ScanResult:
    """Detect ``path``'s format and judge it; ``name`` is the path to report.

    Pickle-based content is always unsafe; picklescan adds which globals it
    imports. Nothing is ever unpickled.
    """
    shown = name if name is not None else path.name
    refusal = _not_regular_file(path)
    if refusal is not None:
        return ScanResult(shown, FileFormat.UNKNOWN, 0, "unsafe", (refusal,))
    size = path.stat().st_size
    fmt = detect_format(path)
    reasons = _format_reasons(path, fmt)
    opinion = None
    if fmt.pickle_based or fmt is FileFormat.ZIP:
        opinion = _picklescan(path, fmt)
        reasons += _opinion_reasons(opinion)
    verdict: Verdict = "unsafe" if reasons else "clean"
    return ScanResult(shown, fmt, size, verdict, _capped(reasons), opinion)


def scan_artifact(root: Path) -> list[ScanResult]:
    """Scan a file, or every entry under a directory (sorted, paths relative to it).

    Symbolic links and special files are reported unsafe, never followed.
    Raises :class:`NotFoundError` if ``root`` does not exist and
    :class:`InvalidInputError` if it holds no files. Combine the results with
    :func:`artifact_verdict`.
    """
    if not root.exists() and not root.is_symlink():
        raise NotFoundError(f"no such artifact: {root}")
    if not root.is_dir() or root.is_symlink():
        return [scan_file(root)]
    results = [scan_file(entry.path, name=entry.relpath) for entry in walk_tree(root)]
    if not results:
        raise InvalidInputError(f"artifact {root} holds no files")
    return results


def loader_hazard(result: ScanResult) -> bool:
    """Whether loading the file with its usual library can run code or attack the loader.

    Pickle-based content of any kind, an archive holding pickles, anything
    picklescan finds a dangerous import in, and content that *is* safetensors
    but has a malformed header. A put quarantines such files at once; content
    that is merely unrecognised (random bytes, compressed data) is unsafe to
    admit but not known to be hostile: validation fails and quarantines it.
    """
    if result.format.pickle_based:
        return True
    if result.verdict == "unsafe" and result.format in {FileFormat.SAFETENSORS, FileFormat.ZIP}:
        return True
    return bool(result.picklescan is not None and result.picklescan.dangerous)


def artifact_verdict(results: Sequence[ScanResult]) -> Verdict:
    """``"unsafe"`` (quarantine) if any file is unsafe or there are none, else ``"clean"``."""
    if not results or any(r.verdict == "unsafe" for r in results):
        return "unsafe"
    return "clean"


def _not_regular_file(path: Path) -> str | None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        raise NotFoundError(f"no such file: {path}") from None
    if stat.S_ISLNK(mode):
        return "symbolic link: artifacts must hold regular files only"
    if not stat.S_ISREG(mode):
        return "special file: artifacts must hold regular files only"
    return None


def _format_reasons(path: Path, fmt: FileFormat) -> list[str]:
    reasons: list[str] = []
    if fmt.pickle_based:
        reasons.append(f"{fmt.value} content is pickle-based: loading it can execute code")
    elif fmt is FileFormat.SAFETENSORS:
        reasons += check_safetensors_header(path).reasons
    elif fmt is FileFormat.ZIP:
        reasons += _zip_member_reasons(path)
    elif fmt is FileFormat.COMPRESSED:
        reasons.append("compressed content cannot be inspected without unpacking it")
    elif fmt is FileFormat.UNKNOWN:
        reasons.append("unrecognised binary content: cannot show it is harmless")
    return reasons + _extension_reasons(path, fmt)


def _extension_reasons(path: Path, fmt: FileFormat) -> list[str]:
    promised = _PROMISED_BY_EXTENSION.get(path.suffix.lower())
    if promised is None or fmt in {promised, _SAME_EXTENSION.get(promised)}:
        return []
    reasons = [f"named {path.suffix} but the content is {fmt.value}"]
    if promised is FileFormat.SAFETENSORS and fmt is FileFormat.UNKNOWN:
        reasons += check_safetensors_header(path).reasons
    return reasons


def _zip_member_reasons(path: Path) -> list[str]:
    """Members that are pickles or object-dtype arrays, judged by their first bytes."""
    reasons: list[str] = []
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as member:
                    head = member.read(PREFIX_BYTES)
                inner = (
                    FileFormat.ZIP
                    if head.startswith(_ZIP_MAGICS)
                    else _classify(path, head, info.file_size)
                )
                if inner.pickle_based or inner in {FileFormat.ZIP, FileFormat.COMPRESSED}:
                    reasons.append(f"archive member {info.filename!r} is {inner.value}")
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as exc:
        reasons.append(f"archive cannot be read: {exc}")
    return reasons


def _picklescan(path: Path, fmt: FileFormat) -> PicklescanOpinion:
    """Ask picklescan, choosing its scanner by *our* format, not by extension."""
    from picklescan import scanner

    file_id = path.name
    try:
        with _quiet_picklescan(), path.open("rb") as handle:
            if fmt in {FileFormat.TORCH_ZIP, FileFormat.ZIP}:
                result = scanner.scan_zip_bytes(handle, file_id)
            elif fmt is FileFormat.NPY_PICKLE:
                result = scanner.scan_numpy(handle, file_id)
            else:
                result = scanner.scan_pickle_bytes(handle, file_id)
    except Exception as exc:  # a failed second opinion is reported, not fatal
        return PicklescanOpinion((), 0, f"{type(exc).__name__}: {exc}")
    found = tuple(
        sorted(
            {PickleGlobal(g.module, g.name, g.safety.value) for g in result.globals},
            key=lambda g: (g.module, g.name),
        )
    )
    error = "could not parse all of it" if result.scan_err else None
    return PicklescanOpinion(found, int(result.issues_count), error)


@contextlib.contextmanager
def _quiet_picklescan() -> Iterator[None]:
    """Mute picklescan's own log lines: its findings are returned in the result instead."""
    logger = logging.getLogger("picklescan")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _opinion_reasons(opinion: PicklescanOpinion) -> list[str]:
    reasons = [f"picklescan: dangerous import {name}" for name in opinion.dangerous]
    if opinion.error:
        reasons.append(f"picklescan: {opinion.error}")
    return reasons
