"""Which tensors of two safetensors files differ, reading headers as JSON and data as bytes.

Never a pickle, never a framework: the 8-byte header length, the JSON header
(checked by :func:`check_safetensors_header`), then each tensor's byte range
compared in streamed blocks. A tensor differs when it is only in one file, its
dtype or shape changed, or its bytes differ (the first differing byte, and the
element it falls in, are named).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from weightvault.gates._formats import (
    SAFETENSORS_DTYPE_BITS,
    TensorInfo,
    validate_safetensors_header,
)

_BLOCK = 1 << 20


@dataclass(frozen=True)
class TensorDiff:
    """One tensor that differs between the expected and the actual file."""

    name: str
    reason: str  # "missing", "unexpected", "dtype", "shape", "data"
    expected: str | None = None
    actual: str | None = None
    #: for "data": the first differing byte within the tensor and the element it is in
    first_byte: int | None = None
    first_element: int | None = None
    expected_sha256: str | None = None
    actual_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (unset fields left out)."""
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def describe(self) -> str:
        """One line: the tensor and where it differs."""
        if self.reason == "data":
            return (
                f"{self.name}: data differs from byte {self.first_byte} "
                f"(element {self.first_element})"
            )
        if self.reason in {"missing", "unexpected"}:
            return f"{self.name}: {self.reason}"
        return f"{self.name}: {self.reason} {self.expected} != {self.actual}"


def _shape(t: TensorInfo) -> str:
    return f"{t.dtype}{list(t.shape)}"


def _first_difference(
    a: IO[bytes], b: IO[bytes], start_a: int, start_b: int, length: int
) -> tuple[int | None, str, str]:
    """First differing offset in two equal-length byte ranges, and both sha256s."""
    a.seek(start_a)
    b.seek(start_b)
    ha, hb = hashlib.sha256(), hashlib.sha256()
    first: int | None = None
    done = 0
    while done < length:
        n = min(_BLOCK, length - done)
        xa, xb = a.read(n), b.read(n)
        ha.update(xa)
        hb.update(xb)
        if first is None and xa != xb:
            first = done + next(
                (i for i, (p, q) in enumerate(zip(xa, xb, strict=False)) if p != q),
                min(len(xa), len(xb)),
            )
        done += n
    return first, ha.hexdigest(), hb.hexdigest()


def diff_safetensors(expected: Path, actual: Path) -> list[TensorDiff]:
    """The tensors that differ between two safetensors files (empty: same tensors).

    InvalidInputError when either is not a well-formed safetensors file.
    """
    want = validate_safetensors_header(expected)
    got = validate_safetensors_header(actual)
    base_a = 8 + (want.header_length or 0)
    base_b = 8 + (got.header_length or 0)
    a_tensors = {t.name: t for t in want.tensors}
    b_tensors = {t.name: t for t in got.tensors}
    diffs: list[TensorDiff] = []
    with expected.open("rb") as fa, actual.open("rb") as fb:
        for name in sorted(a_tensors.keys() | b_tensors.keys()):
            ta, tb = a_tensors.get(name), b_tensors.get(name)
            if tb is None:
                diffs.append(TensorDiff(name, "missing", expected=_shape(ta) if ta else None))
                continue
            if ta is None:
                diffs.append(TensorDiff(name, "unexpected", actual=_shape(tb)))
                continue
            if ta.dtype != tb.dtype:
                diffs.append(TensorDiff(name, "dtype", ta.dtype, tb.dtype))
                continue
            if ta.shape != tb.shape:
                diffs.append(TensorDiff(name, "shape", _shape(ta), _shape(tb)))
                continue
            first, sha_a, sha_b = _first_difference(
                fa, fb, base_a + ta.begin, base_b + tb.begin, ta.end - ta.begin
            )
            if first is not None:
                bits = SAFETENSORS_DTYPE_BITS[ta.dtype]
                diffs.append(
                    TensorDiff(
                        name,
                        "data",
                        _shape(ta),
                        _shape(tb),
                        first_byte=first,
                        first_element=first * 8 // bits,
                        expected_sha256=sha_a,
                        actual_sha256=sha_b,
                    )
                )
    return diffs
