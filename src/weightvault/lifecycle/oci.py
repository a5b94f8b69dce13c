"""``export --oci``: an artifact as an OCI image layout in the CNCF ModelPack format.

The layout (OCI image-layout 1.0, manifests OCI image-spec 1.1)::

    oci-layout                      {"imageLayoutVersion": "1.0.0"}
    index.json                      the model manifest (ref name = the tag), the
                                    referrers index (ref name ``sha256-<hex>``,
                                    the OCI 1.1 referrers tag schema) and each
                                    referrer manifest
    blobs/sha256/<hex>              every blob, named by its sha256

The model manifest has ``artifactType`` ``application/vnd.cncf.model.manifest.v1+json``,
a ModelPack config (``application/vnd.cncf.model.config.v1+json``: descriptor,
``modelfs`` with one diffId per layer) and one raw layer per model file, its media
type by kind (weight, weight config, doc, code; see :func:`media_type`) and its
path in ``org.cncf.model.filepath``. Two referrer manifests name it as their
``subject``: the signed in-toto statement (DSSE envelope) and, when the put made
one, the OMS signature (Sigstore bundle).

The layers are plaintext, so this is a read as well as an export: it is logged
as ``artifact.exported`` (``format: oci``) before any file is decrypted, needs
the rights of ``export`` (authz.rego), is for cold releases only like the
bundle, and goes through the same checks as ``get`` (quarantine, log state,
manifest MAC, signed statement, per-file sha256). Nothing reaches ``out``
unless every file decrypted and matched.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from weightvault._fs import staged_output
from weightvault.artifacts import Vault
from weightvault.catalog import ArtifactRow
from weightvault.errors import InvalidInputError
from weightvault.lifecycle.export import cold_release
from weightvault.records import Manifest
from weightvault.store.layout import statement_key

__all__ = [
    "ARTIFACT_TYPE",
    "CONFIG_MEDIA_TYPE",
    "OciExport",
    "export_oci",
    "media_type",
]

ARTIFACT_TYPE = "application/vnd.cncf.model.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.cncf.model.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO_ARTIFACT_TYPE = "application/vnd.in-toto+json"
SIGSTORE_BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
ANNOTATION_FILEPATH = "org.cncf.model.filepath"
ANNOTATION_FILE_METADATA = "org.cncf.model.file.metadata+json"
ANNOTATION_UNTESTED = "org.cncf.model.file.mediatype.untested"
ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_CREATED = "org.opencontainers.image.created"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_ARTIFACT_ID = "dev.weightvault.artifact.id"
ANNOTATION_CONTENT_DIGEST = "dev.weightvault.content-digest"

_WEIGHTS = {
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".ggml", ".onnx", ".h5",
    ".keras", ".pb", ".tflite", ".msgpack", ".npz", ".npy", ".joblib", ".pkl", ".mlmodel",
}  # fmt: skip
_WEIGHT_CONFIGS = {".json", ".yaml", ".yml", ".txt", ".model", ".tiktoken", ".vocab", ".jinja"}
_DOCS = {".md", ".rst", ".pdf", ".html"}
_DOC_NAMES = re.compile(r"^(readme|license|licence|notice|copying|model_card)(\..*)?$", re.I)
_CODE = {".py", ".sh", ".ipynb", ".js", ".ts", ".go", ".rs", ".c", ".cc", ".cpp", ".h", ".java"}
_EMPTY = b"{}"
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_CHUNK = 1 << 20


def media_type(path: str) -> tuple[str, bool]:
    """The ModelPack raw layer media type of a file, and whether it is a guess.

    Weights by extension (``.safetensors``, ``.gguf``, ``.onnx`` ...), weight
    configs (``.json``, tokenizer and vocabulary files), docs (README, LICENSE,
    ``.md``), code (``.py`` ...); anything else is a weight, marked untested.
    """
    name = PurePosixPath(path).name
    suffix = PurePosixPath(name).suffix.lower()
    if _DOC_NAMES.match(name) or suffix in _DOCS:
        return "application/vnd.cncf.model.doc.v1.raw", False
    if suffix in _WEIGHTS:
        return "application/vnd.cncf.model.weight.v1.raw", False
    if suffix in _WEIGHT_CONFIGS:
        return "application/vnd.cncf.model.weight.config.v1.raw", False
    if suffix in _CODE:
        return "application/vnd.cncf.model.code.v1.raw", False
    return "application/vnd.cncf.model.weight.v1.raw", True


@dataclass(frozen=True)
class OciExport:
    """What ``export --oci`` wrote: the layout, its tag and the manifests' digests."""

    out: Path
    tag: str
    manifest_digest: str
    referrers: tuple[str, ...]
    layers: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "layout": str(self.out),
            "tag": self.tag,
            "manifest": self.manifest_digest,
            "referrers": list(self.referrers),
            "layers": self.layers,
        }


def _json(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


class _Blobs:
    def __init__(self, root: Path) -> None:
        self.dir = root / "blobs" / "sha256"
        self.dir.mkdir(parents=True)

    def put(self, data: bytes, media: str, **extra: Any) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (self.dir / digest).write_bytes(data)
        return {"mediaType": media, "digest": f"sha256:{digest}", "size": len(data), **extra}


def _referrer(
    blobs: _Blobs, subject: dict[str, Any], artifact_type: str, data: bytes, created: str
) -> dict[str, Any]:
    """An OCI 1.1 artifact manifest holding ``data`` as one layer, about ``subject``."""
    doc = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": artifact_type,
        "config": blobs.put(_EMPTY, EMPTY_MEDIA_TYPE),
        "layers": [blobs.put(data, artifact_type)],
        "subject": subject,
        "annotations": {ANNOTATION_CREATED: created},
    }
    return blobs.put(
        _json(doc), MANIFEST_MEDIA_TYPE, artifactType=artifact_type, annotations=doc["annotations"]
    )


def _config(manifest: Manifest, layers: list[dict[str, Any]]) -> bytes:
    return _json(
        {
            "descriptor": {"name": manifest.name, "createdAt": manifest.created_at},
            "modelfs": {"type": "layers", "diffIds": [layer["digest"] for layer in layers]},
            "config": {},
        }
    )


def export_oci(vault: Vault, artifact_id: str, out: Path, tag: str = "latest") -> OciExport:
    """Write the artifact into a new OCI image layout ``out``, tagged ``tag`` (see module doc)."""
    if not _TAG.fullmatch(tag):
        raise InvalidInputError(f"invalid OCI tag {tag[:130]!r}")
    out = out.absolute()
    with vault.artifact_operation(
        "artifact.exported", artifact_id, {"output": vault.private(str(out)), "format": "oci"}
    ) as op:
        row = cold_release(vault, artifact_id)
        row, manifest, dek = vault.readable(row.id, op)
        try:
            statement = vault.store.get_bytes(vault.bucket(row.tier), statement_key(row.id))
            vault.logged_state(row.id).check(row.tier, statement=statement)
            signature = vault.oms_signature(row, manifest)
            with staged_output(out, vault.staging_registry) as staging:
                result = _write_layout(
                    vault, staging, row, manifest, dek, statement, signature, tag
                )
        finally:
            del dek
        op.details.update(files=len(manifest.model_files), manifest=result[0])
    return OciExport(out, tag, result[0], result[1], len(manifest.model_files))


def _write_layout(
    vault: Vault,
    root: Path,
    row: ArtifactRow,
    manifest: Manifest,
    dek: bytes,
    statement: bytes,
    signature: bytes | None,
    tag: str,
) -> tuple[str, tuple[str, ...]]:
    blobs = _Blobs(root)
    layers = []
    part = root / "blobs" / ".part"
    for entry in manifest.model_files:
        with part.open("wb") as fh:
            digest, size = vault.decrypt_file(row, entry, dek, fh)
        part.replace(blobs.dir / digest)
        media, untested = media_type(entry.path)
        metadata = {
            "name": entry.path,
            "mode": 0o644,
            "uid": 0,
            "gid": 0,
            "size": size,
            "mtime": manifest.created_at,
            "typeflag": ord("0"),
        }
        annotations = {
            ANNOTATION_FILEPATH: entry.path,
            ANNOTATION_FILE_METADATA: json.dumps(metadata, sort_keys=True),
            ANNOTATION_TITLE: entry.path,
        }
        if untested:
            annotations[ANNOTATION_UNTESTED] = "true"
        layers.append(
            {
                "mediaType": media,
                "digest": f"sha256:{digest}",
                "size": size,
                "annotations": annotations,
            }
        )
    annotations = {
        ANNOTATION_CREATED: manifest.created_at,
        ANNOTATION_ARTIFACT_ID: manifest.artifact_id,
        ANNOTATION_CONTENT_DIGEST: manifest.content_digest,
    }
    model = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": blobs.put(_config(manifest, layers), CONFIG_MEDIA_TYPE),
        "layers": layers,
        "annotations": annotations,
    }
    subject = blobs.put(_json(model), MANIFEST_MEDIA_TYPE, artifactType=ARTIFACT_TYPE)
    referrers = [_referrer(blobs, subject, IN_TOTO_ARTIFACT_TYPE, statement, manifest.created_at)]
    if signature is not None:
        referrers.append(
            _referrer(blobs, subject, SIGSTORE_BUNDLE_TYPE, signature, manifest.created_at)
        )
    # The referrers tag schema (OCI distribution 1.1) for registries without a referrers API.
    listing = blobs.put(
        _json({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": referrers}),
        INDEX_MEDIA_TYPE,
    )
    fallback = subject["digest"].replace(":", "-")
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [
            {**subject, "annotations": {ANNOTATION_REF_NAME: tag}},
            {**listing, "annotations": {ANNOTATION_REF_NAME: fallback}},
            *referrers,
        ],
    }
    (root / "oci-layout").write_bytes(_json({"imageLayoutVersion": "1.0.0"}))
    (root / "index.json").write_bytes(_json(index))
    return subject["digest"], tuple(r["digest"] for r in referrers)
