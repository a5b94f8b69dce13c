"""Random access into a stored file: one byte range, or one safetensors tensor.

Only the ciphertext chunks that cover the range are fetched (ranged GETs), plus the
56-byte payload header that derives the stream key; every chunk is authenticated
under its index before its plaintext is released (:func:`chunked.decrypt_range`).
The plaintext size, which says which chunk is final, comes from the manifest the
caller verified (its MAC under the DEK, its signed statement).

What "the header verified against the manifest" means for a tensor read: the
safetensors header is read through the same authenticated chunks, so its bytes are
the stored file's own (AES-GCM under the artifact's DEK, bound by the file context to
this artifact and path, at the plaintext offsets the manifest's size fixes). It is
then parsed by the strict parser the ingest gates use, with the manifest's size as
the file size: the header length must fit, and the tensors must tile the data region
``size - 8 - header length`` exactly, with no gap, overlap or trailing bytes. The
whole-file sha256 in the manifest is not checked (that needs every byte): a range read
proves each returned byte authentic, not the rest of the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any

from weightvault.crypto import chunked
from weightvault.crypto.binding import file_context
from weightvault.errors import IntegrityError, InvalidInputError, NotFoundError, StoreError
from weightvault.gates import (
    SafetensorsReport,
    TensorInfo,
    check_safetensors_bytes,
    safetensors_header_length,
)
from weightvault.records import FileEntry, Manifest
from weightvault.store import ObjectStore

__all__ = [
    "MAX_HEADER_BYTES",
    "ByteSink",
    "StoredFile",
    "TensorRead",
    "find_entry",
    "find_tensor",
    "parse_range",
    "read_entry_range",
]

# The largest safetensors header read (the ingest gates' default cap).
MAX_HEADER_BYTES = 100 * 1024 * 1024
# Names listed when a file or tensor is not found.
_SHOWN_NAMES = 5


@dataclass(frozen=True)
class TensorRead:
    """Where one tensor was read from: its header entry and its plaintext file offsets."""

    artifact_id: str
    file: str
    tensor: TensorInfo
    header_length: int
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form (dtype, shape, offsets in the data region and in the file)."""
        return {
            "artifact_id": self.artifact_id,
            "file": self.file,
            "tensor": self.tensor.name,
            "dtype": self.tensor.dtype,
            "shape": list(self.tensor.shape),
            "data_offsets": [self.tensor.begin, self.tensor.end],
            "header_length": self.header_length,
            "start": self.start,
            "end": self.end,
            "bytes": self.end - self.start,
        }


def _some(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_SHOWN_NAMES])
    more = len(names) - _SHOWN_NAMES
    return shown + (f" and {more} more" if more > 0 else "") if names else "none"


def find_entry(manifest: Manifest, file: str) -> FileEntry:
    """The manifest entry of model file ``file``; NotFoundError naming a few others."""
    for entry in manifest.model_files:
        if entry.path == file:
            return entry
    names = [e.path for e in manifest.model_files]
    raise NotFoundError(
        f"artifact {manifest.artifact_id} has no file {file[:200]!r} (files: {_some(names)})"
    )


def parse_range(text: str) -> tuple[int, int | None]:
    """``START:END`` (END exclusive; empty END: to the end of the file) as integers.

    InvalidInputError on anything else, e.g. a negative or reversed range.
    """
    head, sep, tail = text.partition(":")
    if not sep or not head.strip().isdigit() or (tail.strip() and not tail.strip().isdigit()):
        raise InvalidInputError(
            f"--range {text[:80]!r}: expected START:END, byte offsets with END exclusive"
        )
    start = int(head)
    end = int(tail) if tail.strip() else None
    if end is not None and end < start:
        raise InvalidInputError(f"--range {text[:80]!r}: END is before START")
    return start, end


def read_entry_range(
    store: ObjectStore,
    bucket: str,
    artifact_id: str,
    entry: FileEntry,
    dek: bytes,
    start: int,
    end: int,
    dst: IO[bytes] | Any,
) -> int:
    """Decrypt plaintext ``[start, end)`` of one stored file into ``dst`` (one-off
    :meth:`StoredFile.read_into`)."""
    return StoredFile(store, bucket, artifact_id, entry, dek).read_into(start, end, dst)


class ByteSink:
    """A write sink collecting bytes (a BytesIO without the copy on getvalue)."""

    def __init__(self, data: bytearray | None = None) -> None:
        self.data = bytearray() if data is None else data

    def write(self, data: Any) -> int:
        """Append ``data``."""
        self.data += data
        return len(data)


class StoredFile:
    """Random access into one stored file of an artifact whose manifest was verified.

    Fetches only the chunks that cover what is read (ranged GETs); the 56-byte payload
    header is fetched once and its commitment checked at every read. The safetensors
    header, once read and checked, is kept. ``reads`` lists what was read and
    ``bytes_read`` counts the plaintext returned (for the audit outcome; the
    safetensors header read to locate a tensor is not counted). The DEK is the
    caller's; :meth:`close` drops the reference.
    """

    def __init__(
        self, store: ObjectStore, bucket: str, artifact_id: str, entry: FileEntry, dek: bytes
    ) -> None:
        self.store = store
        self.bucket = bucket
        self.artifact_id = artifact_id
        self.entry = entry
        self._dek: bytes | None = dek
        self._context = file_context(artifact_id, entry.path)
        self._header: bytes | None = None
        self._report: SafetensorsReport | None = None
        self.reads: list[str] = []
        self.bytes_read = 0

    def __repr__(self) -> str:
        return f"StoredFile({self.artifact_id!r}, {self.entry.path!r})"

    @property
    def size(self) -> int:
        """The file's plaintext size (from the manifest)."""
        return self.entry.size

    def close(self) -> None:
        """Forget the DEK; later reads raise IntegrityError."""
        self._dek = None

    def _fetch(self, offset: int, length: int) -> bytearray:
        got = self.store.read_range(self.bucket, self.entry.object_key, offset, length)
        if got.total is not None and got.total != self.entry.ciphertext_size:
            raise IntegrityError("object size differs from the manifest's ciphertext size")
        if offset == 0 and self._header is None and len(got.data) >= chunked.HEADER_SIZE:
            self._header = bytes(got.data[: chunked.HEADER_SIZE])
        return got.data

    def read_into(self, start: int, end: int | None, dst: IO[bytes] | Any) -> int:
        """Decrypt plaintext ``[start, end)`` (``end`` None: to the end) into ``dst``.

        Plaintext reaches ``dst`` only after its chunk authenticates (``dst`` may hold
        a valid prefix on error). IntegrityError on any failure (a missing, short or
        modified object); InvalidInputError for a range outside the file.
        """
        stop = self.entry.size if end is None else end
        n = self._decrypt(start, stop, dst)
        self.reads.append(f"{start}:{stop}")
        self.bytes_read += n
        return n

    def _decrypt(self, start: int, stop: int, dst: IO[bytes] | Any) -> int:
        entry = self.entry
        if not 0 <= start <= stop <= entry.size:
            raise InvalidInputError(
                f"range {start}:{stop} is outside file {entry.path!r} ({entry.size} bytes)"
            )
        if self._dek is None:
            raise IntegrityError(f"artifact {self.artifact_id} file {entry.path}: reader closed")
        where = f"artifact {self.artifact_id} file {entry.path}"
        try:
            n = chunked.decrypt_range(
                self._dek,
                self._context,
                self._fetch,
                entry.size,
                start,
                stop,
                dst,
                header=self._header,
            )
        except IntegrityError as exc:
            self._header = None
            raise IntegrityError(f"{where}: {exc.message}") from None
        except NotFoundError:
            raise IntegrityError(f"{where}: object is missing") from None
        except StoreError as exc:
            if "InvalidRange" in exc.message:
                raise IntegrityError(f"{where}: object is shorter than the manifest says") from None
            raise
        return n

    def read(self, start: int, end: int | None) -> bytes:
        """Plaintext ``[start, end)`` as bytes (nothing on any error)."""
        sink = ByteSink()
        self.read_into(start, end, sink)
        return bytes(sink.data)

    def safetensors(self) -> SafetensorsReport:
        """The checked safetensors header of the file (see the module docstring).

        The first chunk is read (it usually holds the whole header), then the rest of
        the header if it is longer. InvalidInputError if the file is not valid
        safetensors.
        """
        if self._report is not None:
            return self._report
        entry = self.entry
        prefix = ByteSink()
        self._decrypt(0, min(entry.size, chunked.CHUNK_SIZE), prefix)
        length = safetensors_header_length(bytes(prefix.data[:8]))
        if (
            length is not None
            and length <= MAX_HEADER_BYTES
            and len(prefix.data) < 8 + length <= entry.size
        ):
            self._decrypt(len(prefix.data), 8 + length, prefix)
        report = check_safetensors_bytes(
            entry.path, bytes(prefix.data), entry.size, MAX_HEADER_BYTES
        )
        if not report.ok:
            raise InvalidInputError(
                f"artifact {self.artifact_id} file {entry.path!r} is not a valid safetensors "
                f"file: {'; '.join(report.reasons[:3])}"
            )
        self._report = report
        return report

    def tensor(self, name: str) -> TensorRead:
        """Where tensor ``name`` lies; NotFoundError naming a few tensors."""
        report = self.safetensors()
        tensor = find_tensor(report, self.artifact_id, name)
        base = 8 + (report.header_length or 0)
        return TensorRead(
            self.artifact_id,
            self.entry.path,
            tensor,
            report.header_length or 0,
            base + tensor.begin,
            base + tensor.end,
        )

    def read_tensor_into(self, name: str, dst: IO[bytes] | Any) -> TensorRead:
        """Decrypt tensor ``name`` into ``dst``; where it lies."""
        where = self.tensor(name)
        self.bytes_read += self._decrypt(where.start, where.end, dst)
        self.reads.append(f"tensor {name[:200]} {where.start}:{where.end}")
        return where

    def read_tensor(self, name: str) -> tuple[TensorRead, bytes]:
        """Tensor ``name``: where it lies, and its bytes (nothing on any error)."""
        sink = ByteSink()
        where = self.read_tensor_into(name, sink)
        return where, bytes(sink.data)


def find_tensor(report: SafetensorsReport, artifact_id: str, name: str) -> TensorInfo:
    """The header entry of tensor ``name``; NotFoundError naming a few tensors."""
    for tensor in report.tensors:
        if tensor.name == name:
            return tensor
    names = sorted(t.name for t in report.tensors)
    raise NotFoundError(
        f"artifact {artifact_id} file {report.path!r} has no tensor {name[:200]!r} "
        f"(tensors: {_some(names)})"
    )
