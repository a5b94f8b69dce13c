"""Content-based format detection, safetensors header checks and pickle scanning.

Nothing here is ever unpickled: the malicious payloads would touch a marker
file if they were, and every test that handles one checks the marker is absent.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
from safetensors.numpy import save_file

from weightvault.errors import InvalidInputError, NotFoundError
from weightvault.gates import scan_artifact
from weightvault.gates._formats import (
    MAX_REASONS,
    PREFIX_BYTES,
    FileFormat,
    artifact_verdict,
    check_safetensors_header,
    detect_format,
    scan_file,
    validate_safetensors_header,
)

# --------------------------------------------------------------------------- builders


class TouchMarker:
    """Unpickling this runs ``touch marker`` through os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


class ExecMarker:
    """Unpickling this runs exec() of code that creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a pickle payload was executed"


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def safetensors_bytes(header: object, data: bytes = b"", *, length: int | None = None) -> bytes:
    """Build a safetensors file byte by byte: u64 LE header length, header, data."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def tensor(dtype: str, shape: list[int], begin: int, end: int) -> dict[str, object]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def sentencepiece_bytes() -> bytes:
    """A ModelProto with three pieces (<unk>, <s>, </s>) and a trainer_spec field."""

    def piece(text: str, kind: int) -> bytes:
        body = b"\x0a" + bytes([len(text)]) + text.encode() + b"\x15" + struct.pack("<f", 0.0)
        body += b"\x18" + bytes([kind])
        return b"\x0a" + bytes([len(body)]) + body

    return piece("<unk>", 2) + piece("<s>", 3) + piece("</s>", 3) + b"\x12\x02\x08\x01"


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_renamed_pickle_is_detected_as_pickle_and_never_run(
    tmp_path: Path, marker: Path, protocol: int
) -> None:
    path = write(tmp_path / "model.safetensors", pickle.dumps(TouchMarker(marker), protocol))
    assert detect_format(path) is FileFormat.PICKLE
    result = scan_file(path)
    assert result.verdict == "unsafe"
    assert result.format is FileFormat.PICKLE
    assert "named .safetensors but the content is pickle" in result.reasons
    assert result.picklescan is not None
    assert any(name.endswith(".system") for name in result.picklescan.dangerous)
    assert not check_safetensors_header(path).ok
    assert not marker.exists()


def test_exec_payload_is_flagged_by_picklescan(tmp_path: Path, marker: Path) -> None:
    path = write(tmp_path / "weights.bin", pickle.dumps(ExecMarker(marker), protocol=4))
    result = scan_file(path)
    assert result.verdict == "unsafe"
    assert result.picklescan is not None
    assert "builtins.exec" in result.picklescan.dangerous
    assert "picklescan: dangerous import builtins.exec" in result.reasons


def test_scan_artifact_never_runs_payloads(tmp_path: Path, marker: Path) -> None:
    root = tmp_path / "artifact"
    write(root / "model.safetensors", pickle.dumps(TouchMarker(marker), protocol=2))
    write(root / "sub" / "legacy.pkl", pickle.dumps(TouchMarker(marker), protocol=0))
    results = scan_artifact(root)
    assert [r.path for r in results] == ["model.safetensors", "sub/legacy.pkl"]
    assert all(r.verdict == "unsafe" for r in results)
    assert artifact_verdict(results) == "unsafe"


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("empty", b"", FileFormat.TEXT),
        ("vocab.txt", b"[PAD]\n[unused0]\n[CLS]\n[SEP]\nthe\n", FileFormat.TEXT),
        ("merges.txt", b"#version: 0.2\n\xc4\xa0 t\nh e\n", FileFormat.TEXT),
        ("notice.txt", b"(c) 2024 Foo.\nAll rights reserved.\n", FileFormat.TEXT),
        ("cat.txt", b"cat\ndog\nhello world\n", FileFormat.TEXT),
        ("tokenizer.json", b'\xef\xbb\xbf {"model": {"vocab": {"a": 1}}}', FileFormat.JSON),
        ("broken.json", b'{"a": ', FileFormat.TEXT),
        ("model.gguf", b"GGUF\x03\x00\x00\x00" + b"\x00" * 24, FileFormat.GGUF),
        ("tokenizer.model", sentencepiece_bytes(), FileFormat.SENTENCEPIECE),
        ("model.onnx", b"\x08\x07\x12\x07pytorch\x1a\x032.1:\x00", FileFormat.ONNX),
        ("x.gz", gzip.compress(b"hello", mtime=0), FileFormat.COMPRESSED),
        ("noise.bin", bytes(range(256)) * 4, FileFormat.UNKNOWN),
        (
            "dill.pkl",
            b"\x80\x02cdill._dill\n_load_type\nq\x00X\x08\x00\x00\x00functionq\x01\x85q\x02Rq\x03.",
            FileFormat.DILL,
        ),
    ],
)
def test_detect_format_by_content(
    tmp_path: Path, name: str, data: bytes, expected: FileFormat
) -> None:
    assert detect_format(write(tmp_path / name, data)) is expected


def test_well_formed_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    tensors = {
        "weight": np.arange(640, dtype=np.float32).reshape(10, 64),
        "bias": np.zeros(10, dtype=np.float64),
        "empty": np.zeros((0, 3), dtype=np.int8),
    }
    save_file(tensors, str(path), metadata={"format": "np", "epochs": "40"})
    assert detect_format(path) is FileFormat.SAFETENSORS
    report = validate_safetensors_header(path)
    assert report.ok
    assert report.reasons == ()
    assert {t.name for t in report.tensors} == {"weight", "bias", "empty"}
    assert report.metadata == {"format": "np", "epochs": "40"}
    assert scan_file(path).verdict == "clean"


@pytest.mark.parametrize("header_length", [0x0280, 0x2E4E, 0x0528])
def test_header_lengths_that_start_like_a_pickle(tmp_path: Path, header_length: int) -> None:
    # 0x0280 reads as PROTO 2 then a bad opcode; 0x2e4e as NONE, STOP; 0x0528 as MARK, ...
    header = json.dumps({"w": tensor("U8", [4], 0, 4)}).encode()
    header += b" " * (header_length - len(header))
    path = write(tmp_path / "model.safetensors", safetensors_bytes(header, b"1234"))
    assert path.read_bytes()[:2] == header_length.to_bytes(2, "little")
    assert detect_format(path) is FileFormat.SAFETENSORS
    assert validate_safetensors_header(path).ok


def test_pickle_safetensors_polyglot_is_a_pickle(tmp_path: Path) -> None:
    # PROTO 2, BINUNICODE of 256 bytes (its length bytes double as a ~4 GiB header length),
    # then STOP: the opcodes run past the 8-byte length field, so it is a pickle.
    text = b"\x00{" + b" " * 254
    data = b"\x80\x02X" + struct.pack("<I", 256) + text + b"."
    path = write(tmp_path / "model.safetensors", data)
    with path.open("r+b") as handle:
        handle.truncate(int.from_bytes(data[:8], "little") + 8 + 16)  # sparse
    assert data[8:9] == b"{"
    assert detect_format(path) is FileFormat.PICKLE


def test_safetensors_under_another_name_is_still_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "pytorch_model.bin"
    save_file({"w": np.ones(3, dtype=np.float16)}, str(path))
    assert detect_format(path) is FileFormat.SAFETENSORS


def test_npy_plain_and_object(tmp_path: Path) -> None:
    plain, objects = tmp_path / "a.npy", tmp_path / "o.npy"
    np.save(plain, np.arange(12, dtype=np.int64).reshape(3, 4))
    np.save(objects, np.array([{"k": 1}], dtype=object), allow_pickle=True)
    assert detect_format(plain) is FileFormat.NPY
    assert scan_file(plain).verdict == "clean"
    assert detect_format(objects) is FileFormat.NPY_PICKLE
    result = scan_file(objects)
    assert result.verdict == "unsafe"
    assert result.picklescan is not None


def test_joblib_plain_and_compressed(tmp_path: Path) -> None:
    plain, packed = tmp_path / "m.joblib", tmp_path / "mz.joblib"
    joblib.dump({"w": np.arange(10)}, plain)
    joblib.dump({"w": np.arange(10)}, packed, compress=3)
    assert detect_format(plain) is FileFormat.JOBLIB
    assert detect_format(packed) is FileFormat.COMPRESSED
    assert scan_file(plain).verdict == "unsafe"
    assert scan_file(packed).verdict == "unsafe"


@pytest.mark.parametrize("name", ["model.pt", "model.safetensors", "checkpoint"])
def test_torch_zip_checkpoint(tmp_path: Path, marker: Path, name: str) -> None:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(TouchMarker(marker), protocol=2))
        archive.writestr("archive/version", "3\n")
        archive.writestr("archive/data/0", b"\x00" * 16)
    assert detect_format(path) is FileFormat.TORCH_ZIP
    result = scan_file(path)
    assert result.verdict == "unsafe"
    assert result.picklescan is not None
    assert any(n.endswith(".system") for n in result.picklescan.dangerous)


def test_plain_zip_is_judged_by_its_members(tmp_path: Path) -> None:
    clean, dirty = tmp_path / "docs.zip", tmp_path / "bundle.zip"
    with zipfile.ZipFile(clean, "w") as archive:
        archive.writestr("README.md", "hello\n")
    with zipfile.ZipFile(dirty, "w") as archive:
        archive.writestr("README.md", "hello\n")
        archive.writestr("state.bin", pickle.dumps({"a": 1}, protocol=4))
    assert detect_format(clean) is FileFormat.ZIP
    assert scan_file(clean).verdict == "clean"
    result = scan_file(dirty)
    assert result.verdict == "unsafe"
    assert "archive member 'state.bin' is pickle" in result.reasons


def test_detection_reads_a_bounded_prefix(tmp_path: Path) -> None:
    big_json = write(tmp_path / "tokenizer.json", b'{"v": "' + b"a" * (2 * PREFIX_BYTES) + b'"}')
    assert detect_format(big_json) is FileFormat.JSON
    # A multi-byte character split by the read limit is still text.
    text = b"a" * (PREFIX_BYTES - 1) + "é".encode() + b"tail\n"
    assert detect_format(write(tmp_path / "long.txt", text)) is FileFormat.TEXT
    # A protocol 0 pickle larger than the prefix never reaches STOP in it.
    big_pickle = pickle.dumps(list(range(50_000)), protocol=0)
    assert len(big_pickle) > PREFIX_BYTES
    assert detect_format(write(tmp_path / "big.txt", big_pickle)) is FileFormat.PICKLE


def test_extension_promise_must_be_kept(tmp_path: Path) -> None:
    result = scan_file(write(tmp_path / "model.safetensors", b"just some text\n"))
    assert result.format is FileFormat.TEXT
    assert result.verdict == "unsafe"
    assert result.reasons == ("named .safetensors but the content is text",)


def test_unknown_binary_named_safetensors_gets_header_reasons(tmp_path: Path) -> None:
    data = struct.pack("<Q", 1000) + b"\x00\x01\x02" * 10
    result = scan_file(write(tmp_path / "model.safetensors", data))
    assert result.verdict == "unsafe"
    assert any("runs past the end" in r for r in result.reasons)


def test_non_regular_files(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        detect_format(tmp_path / "missing")
    with pytest.raises(InvalidInputError, match="not a regular file"):
        detect_format(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError, match="not a regular file"):
        detect_format(fifo)
    result = scan_file(fifo)
    assert result.verdict == "unsafe"
    assert result.reasons == ("special file: artifacts must hold regular files only",)


# --------------------------------------------------------------------------- artifacts


def test_scan_artifact_directory(tmp_path: Path) -> None:
    root = tmp_path / "artifact"
    save_file({"w": np.ones((2, 2), dtype=np.float32)}, str(write(root / "model.safetensors", b"")))
    write(root / "config.json", b'{"hidden": 4}')
    write(root / "tokenizer" / "vocab.txt", b"a\nb\n")
    results = scan_artifact(root)
    assert [(r.path, r.format.value, r.verdict) for r in results] == [
        ("config.json", "json", "clean"),
        ("model.safetensors", "safetensors", "clean"),
        ("tokenizer/vocab.txt", "text", "clean"),
    ]
    assert artifact_verdict(results) == "clean"
    assert json.loads(json.dumps([r.to_dict() for r in results]))[0]["format"] == "json"


def test_scan_artifact_refuses_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "artifact"
    write(root / "config.json", b"{}")
    (root / "escape").symlink_to("/etc/passwd")
    (root / "linked_dir").symlink_to(tmp_path)
    results = {r.path: r for r in scan_artifact(root)}
    assert results["escape"].verdict == "unsafe"
    assert results["linked_dir"].verdict == "unsafe"
    assert "symbolic link" in results["escape"].reasons[0]
    assert artifact_verdict(list(results.values())) == "unsafe"


def test_scan_artifact_single_file_empty_and_missing(tmp_path: Path) -> None:
    single = write(tmp_path / "one.json", b"[]")
    assert [r.path for r in scan_artifact(single)] == ["one.json"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="holds no files"):
        scan_artifact(tmp_path / "empty")
    with pytest.raises(NotFoundError):
        scan_artifact(tmp_path / "nope")
    assert artifact_verdict([]) == "unsafe"


# --------------------------------------------------------------------------- malformed safetensors

F32_2x3 = tensor("F32", [2, 3], 0, 24)

MALFORMED: list[tuple[str, bytes, str]] = [
    ("shorter than the length field", b"\x05\x00\x00", "shorter than the 8-byte header length"),
    (
        "header length over the cap",
        safetensors_bytes({"w": F32_2x3}, b"\0" * 24, length=200 * 1024 * 1024),
        "exceeds the 104857600-byte cap",
    ),
    (
        "header length beyond the file",
        safetensors_bytes({"w": F32_2x3}, b"\0" * 24, length=10_000),
        "header length 10000 runs past the end",
    ),
    ("header not UTF-8", safetensors_bytes(b'{"\xff": 1}'), "header is not UTF-8"),
    ("header not JSON", safetensors_bytes(b"{not json}"), "header is not valid JSON"),
    ("header with NaN", safetensors_bytes(b'{"a": NaN}'), "header is not valid JSON"),
    ("header not an object", safetensors_bytes(b"[1, 2]   "), "header is a JSON list"),
    (
        "duplicate keys",
        safetensors_bytes(
            b'{"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},'
            b' "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}',
            b"\0" * 24,
        ),
        "duplicate key 'w' in header",
    ),
    (
        "unknown dtype",
        safetensors_bytes({"w": tensor("Q8", [4], 0, 4)}, b"\0" * 4),
        "tensor 'w': unknown dtype 'Q8'",
    ),
    (
        "offsets not integers",
        safetensors_bytes(
            {"w": {"dtype": "U8", "shape": [4], "data_offsets": ["0", 4]}}, b"\0" * 4
        ),
        "data_offsets ['0', 4] is not [begin, end] integers",
    ),
    (
        "offsets not a pair",
        safetensors_bytes(
            {"w": {"dtype": "U8", "shape": [4], "data_offsets": [0, 2, 4]}}, b"\0" * 4
        ),
        "data_offsets [0, 2, 4] is not [begin, end] integers",
    ),
    (
        "offsets reversed",
        safetensors_bytes({"w": tensor("U8", [4], 4, 0)}, b"\0" * 4),
        "with 0 <= begin <= end",
    ),
    (
        "offsets out of bounds",
        safetensors_bytes({"w": tensor("U8", [8], 0, 8)}, b"\0" * 4),
        "tensor 'w': data_offsets [0, 8] are out of bounds of the 4-byte data region",
    ),
    (
        "gap between tensors",
        safetensors_bytes(
            {"a": tensor("U8", [4], 0, 4), "b": tensor("U8", [4], 8, 12)}, b"\0" * 12
        ),
        "gap of 4 bytes before tensor 'b'",
    ),
    (
        "gap at the start",
        safetensors_bytes({"a": tensor("U8", [4], 2, 6)}, b"\0" * 6),
        "gap of 2 bytes before tensor 'a'",
    ),
    (
        "overlapping tensors",
        safetensors_bytes({"a": tensor("U8", [8], 0, 8), "b": tensor("U8", [4], 4, 8)}, b"\0" * 8),
        "tensor 'b' (bytes 4..8) overlaps tensor 'a'",
    ),
    (
        "size mismatch",
        safetensors_bytes({"w": tensor("F32", [2, 3], 0, 20)}, b"\0" * 20),
        "tensor 'w': F32 x shape [2, 3] needs 24 bytes but data_offsets span 20",
    ),
    (
        "sub-byte dtype not whole bytes",
        safetensors_bytes({"w": tensor("F4", [3], 0, 2)}, b"\0" * 2),
        "F4 x shape [3] is 12 bits, not whole bytes",
    ),
    (
        "negative shape",
        safetensors_bytes({"w": tensor("U8", [-4], 0, 4)}, b"\0" * 4),
        "shape [-4] is not a list of non-negative integers",
    ),
    (
        "entry not an object",
        safetensors_bytes({"w": [0, 4]}, b"\0" * 4),
        "tensor 'w': entry is not an object",
    ),
    (
        "trailing bytes",
        safetensors_bytes({"w": F32_2x3}, b"\0" * 30),
        "6 trailing bytes after the data region",
    ),
    (
        "data without tensors",
        safetensors_bytes({}, b"\0" * 3),
        "3 trailing bytes after the data region",
    ),
    (
        "metadata value not a string",
        safetensors_bytes({"__metadata__": {"epochs": 40}, "w": F32_2x3}, b"\0" * 24),
        "__metadata__['epochs'] is a int, not a string",
    ),
    (
        "metadata not a map",
        safetensors_bytes({"__metadata__": ["a"], "w": F32_2x3}, b"\0" * 24),
        "__metadata__ is not a string-to-string map",
    ),
]


@pytest.mark.parametrize(("case", "data", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_safetensors_is_rejected(
    tmp_path: Path, case: str, data: bytes, reason: str
) -> None:
    path = write(tmp_path / "model.safetensors", data)
    report = check_safetensors_header(path)
    assert not report.ok, case
    assert any(reason in r for r in report.reasons), report.reasons
    with pytest.raises(InvalidInputError, match="not a valid safetensors file") as caught:
        validate_safetensors_header(path)
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)
    assert scan_file(path).verdict == "unsafe"


def test_header_cap_is_a_parameter(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"w": np.ones(4, dtype=np.float32)}, str(path))
    assert check_safetensors_header(path).ok
    report = check_safetensors_header(path, max_header_bytes=16)
    assert report.reasons[0].endswith("exceeds the 16-byte cap")


def test_all_reasons_are_collected(tmp_path: Path) -> None:
    header = {
        "__metadata__": {"n": 1},
        "a": tensor("Q8", [4], 0, 4),
        "b": tensor("F32", [2], 8, 12),
    }
    report = check_safetensors_header(
        write(tmp_path / "m.st", safetensors_bytes(header, b"\0" * 20))
    )
    assert len(report.reasons) == 5, report.reasons
    assert report.to_dict()["ok"] is False


def test_reasons_are_capped(tmp_path: Path) -> None:
    header = {f"t{i}": tensor("U8", [1], 2 * i + 1, 2 * i + 2) for i in range(100)}
    data = safetensors_bytes(header, b"\0" * 200)
    report = check_safetensors_header(write(tmp_path / "m.safetensors", data))
    assert len(report.reasons) == MAX_REASONS + 1
    assert report.reasons[-1] == "... and 36 more problems"
