"""Which tensors of two safetensors files differ: headers as JSON, data as bytes, no pickle."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from weightvault.errors import InvalidInputError
from weightvault.gates import diff_safetensors


def _save(path: Path, **tensors: np.ndarray) -> Path:
    save_file(dict(tensors), str(path))
    return path


def test_identical_files_have_no_differences(tmp_path: Path) -> None:
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    a = _save(tmp_path / "a.safetensors", w=w, b=np.zeros(2, dtype=np.int64))
    b = _save(tmp_path / "b.safetensors", w=w.copy(), b=np.zeros(2, dtype=np.int64))
    assert diff_safetensors(a, b) == []


def test_a_changed_element_is_named_with_its_byte_and_element(tmp_path: Path) -> None:
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    changed = w.copy()
    changed[1, 2] = 99.0  # element 6, bytes 24..27
    same = np.ones(3, dtype=np.float16)
    a = _save(tmp_path / "a.safetensors", w=w, same=same)
    b = _save(tmp_path / "b.safetensors", w=changed, same=same)
    (diff,) = diff_safetensors(a, b)
    assert diff.name == "w"
    assert diff.reason == "data"
    assert diff.first_element == 6
    assert 24 <= (diff.first_byte or 0) < 28
    assert diff.expected_sha256 != diff.actual_sha256
    assert diff.describe().startswith("w: data differs from byte")


def test_dtype_shape_missing_and_unexpected_tensors(tmp_path: Path) -> None:
    a = _save(
        tmp_path / "a.safetensors",
        dt=np.zeros(4, dtype=np.float32),
        sh=np.zeros((2, 2), dtype=np.float32),
        gone=np.zeros(1, dtype=np.uint8),
    )
    b = _save(
        tmp_path / "b.safetensors",
        dt=np.zeros(4, dtype=np.float64),
        sh=np.zeros(4, dtype=np.float32),
        new=np.zeros(1, dtype=np.uint8),
    )
    found = {d.name: d for d in diff_safetensors(a, b)}
    assert found["dt"].reason == "dtype"
    assert (found["dt"].expected, found["dt"].actual) == ("F32", "F64")
    assert found["sh"].reason == "shape"
    assert found["gone"].reason == "missing"
    assert found["new"].reason == "unexpected"


def test_a_pickle_or_malformed_header_is_refused_never_loaded(tmp_path: Path) -> None:
    good = _save(tmp_path / "a.safetensors", w=np.zeros(2, dtype=np.float32))
    pickle = tmp_path / "model.safetensors"
    pickle.write_bytes(b"\x80\x04\x95" + b"\x00" * 40)
    with pytest.raises(InvalidInputError, match="not a valid safetensors"):
        diff_safetensors(good, pickle)
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 99]}}).encode()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 16)
    with pytest.raises(InvalidInputError):
        diff_safetensors(good, bad)
