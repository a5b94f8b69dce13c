"""in-toto Statement v1 with a SLSA provenance v1 predicate for one artifact version.

The statement's subject is the artifact version: its name and the sha256 of
its canonical manifest. The predicate records how it was made, in SLSA terms:

``buildDefinition.buildType``
    :data:`BUILD_TYPE`.
``buildDefinition.externalParameters``
    what the user chose: ``artifact`` (``name`` and the full ``manifest``:
    every file's path, size, sha256 and ciphertext size), ``source`` (git
    ``repository``, ``commit``, ``dirty``) and, when given, ``trainingRunId``,
    ``creator``, ``parent`` and ``extra``.
``buildDefinition.internalParameters``
    what the platform fixed: ``environment`` (Python, platform, lock-file hash,
    installed package set hash, ...).
``buildDefinition.resolvedDependencies``
    ResourceDescriptors: the git commit (``digest.gitCommit``), each dataset
    (``digest.sha256`` and, when known, DVC's ``digest.md5``) and the parent
    artifact for a fine-tune (``digest.sha256``).
``runDetails``
    ``builder.id`` and ``metadata`` (``invocationId``, ``startedOn``,
    ``finishedOn`` as RFC 3339 UTC timestamps).

The provenance mapping given to :func:`build_statement` has these keys
(anything else is refused, so a misspelt key cannot silently drop provenance)::

    git              {"commit": hex (40 or 64), "dirty": bool, "repository": str?}
    environment      JSON-safe mapping
    invocation_id    str
    started_on       timezone-aware datetime or RFC 3339 string
    finished_on      same, not before started_on
    datasets         optional list of {"name": str, "sha256": hex, "md5": hex?, "uri": str?}
    training_run_id  optional str
    creator          optional str
    parent           optional {"name": str, "sha256": hex}
    builder_id       optional URI, default BUILDER_ID
    extra            optional JSON-safe mapping

:func:`canonical_json` is the byte encoding that is hashed and signed: sorted
keys, no whitespace, UTF-8 without escaping, no NaN/Infinity. Keys sort by
code point (Python's order), which is not RFC 8785 (UTF-16 order) for
characters outside the BMP.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from weightvault._json import canonical_json
from weightvault.errors import IntegrityError, InvalidInputError

__all__ = [
    "BUILDER_ID",
    "BUILD_TYPE",
    "SLSA_PROVENANCE_V1",
    "STATEMENT_TYPE",
    "build_statement",
    "canonical_json",
    "parse_statement",
]

STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1: Final = "https://slsa.dev/provenance/v1"
BUILD_TYPE: Final = "https://weightvault.dev/buildtypes/model-artifact/v1"  # project URI namespace
BUILDER_ID: Final = "https://weightvault.dev/builders/weightvault@v1"
MAX_STATEMENT_BYTES: Final = 64 * 1024 * 1024

_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")
_MD5_RE: Final = re.compile(r"[0-9a-f]{32}(\.dir)?")
_GIT_RE: Final = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_PROVENANCE_KEYS: Final = frozenset(
    {
        "git",
        "environment",
        "invocation_id",
        "started_on",
        "finished_on",
        "datasets",
        "training_run_id",
        "creator",
        "parent",
        "builder_id",
        "extra",
    }
)


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{what} must be a non-empty string")
    return value


def _opt_str(value: Any, what: str) -> str | None:
    return None if value is None else _str(value, what)


def _hex(value: Any, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidInputError(f"{what} must be lowercase hex of the right length")
    return value


def _json_mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{what} must be a mapping")
    # Round-trip through canonical JSON: refuses anything that could not be
    # signed and makes a deep copy that no later change by the caller affects.
    result: dict[str, Any] = json.loads(canonical_json(dict(value)))
    return result


def _timestamp(value: Any, what: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInputError(f"{what} is not an RFC 3339 timestamp") from None
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{what} must be a datetime or an RFC 3339 string")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(f"{what} must carry a timezone")
    return value.astimezone(UTC)


def _rfc3339(moment: datetime) -> str:
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def _datasets(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise InvalidInputError("provenance datasets must be a list")
    result: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        what = f"provenance dataset {index}"
        if not isinstance(item, Mapping):
            raise InvalidInputError(f"{what} must be a mapping")
        unknown = sorted(set(item) - {"name", "sha256", "md5", "uri"})
        if unknown:
            raise InvalidInputError(f"{what} has unknown field {unknown[0]!r}")
        digest = {"sha256": _hex(item.get("sha256"), _SHA256_RE, f"{what} sha256")}
        if item.get("md5") is not None:
            digest["md5"] = _hex(item["md5"], _MD5_RE, f"{what} md5")
        descriptor: dict[str, Any] = {
            "name": _str(item.get("name"), f"{what} name"),
            "digest": digest,
            "annotations": {"kind": "dataset"},
        }
        uri = _opt_str(item.get("uri"), f"{what} uri")
        if uri is not None:
            descriptor["uri"] = uri
        result.append(descriptor)
    return result


def _git_source(git: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``source`` parameter and its dependency; provenance without git has neither."""
    if git is None:
        # Provenance recorded as incomplete has no git source; policy refuses it later.
        return {"missing": True}, []
    if not isinstance(git, Mapping):
        raise InvalidInputError("provenance git must be a mapping with commit and dirty")
    unknown = sorted(set(git) - {"commit", "dirty", "repository"})
    if unknown:
        raise InvalidInputError(f"provenance git has unknown field {unknown[0]!r}")
    commit = _hex(git.get("commit"), _GIT_RE, "provenance git commit")
    dirty = git.get("dirty")
    if not isinstance(dirty, bool):
        raise InvalidInputError("provenance git dirty must be true or false")
    repository = _opt_str(git.get("repository"), "provenance git repository")
    source: dict[str, Any] = {"commit": commit, "dirty": dirty}
    dep: dict[str, Any] = {
        "name": "source",
        "digest": {"gitCommit": commit},
        "annotations": {"kind": "source", "dirty": dirty},
    }
    if repository is not None:
        source["repository"] = repository
        dep["uri"] = f"git+{repository}@{commit}"
    return source, [dep]


def build_statement(
    subject_name: str,
    subject_sha256: str,
    manifest: Mapping[str, Any],
    provenance: Mapping[str, Any],
) -> dict[str, Any]:
    """Build the in-toto Statement v1 (SLSA provenance v1) of one artifact version.

    ``subject_sha256`` is the digest of the artifact's canonical manifest;
    ``manifest`` and ``provenance`` are plain JSON-safe mappings (the layout
    of ``provenance`` is in the module docstring). Raises InvalidInputError
    naming the first field that is missing or malformed.
    """
    name = _str(subject_name, "subject name")
    digest = _hex(subject_sha256, _SHA256_RE, "subject sha256")
    manifest_doc = _json_mapping(manifest, "manifest")
    if not isinstance(provenance, Mapping):
        raise InvalidInputError("provenance must be a mapping")
    unknown = sorted(set(provenance) - _PROVENANCE_KEYS)
    if unknown:
        raise InvalidInputError(f"provenance has unknown field {unknown[0]!r}")

    source, source_deps = _git_source(provenance.get("git"))
    environment = _json_mapping(provenance.get("environment"), "provenance environment")
    invocation_id = _str(provenance.get("invocation_id"), "provenance invocation_id")
    started = _timestamp(provenance.get("started_on"), "provenance started_on")
    finished = _timestamp(provenance.get("finished_on"), "provenance finished_on")
    if finished < started:
        raise InvalidInputError("provenance finished_on is before started_on")
    builder_id = _str(provenance.get("builder_id", BUILDER_ID), "provenance builder_id")

    external: dict[str, Any] = {
        "artifact": {"name": name, "manifest": manifest_doc},
        "source": source,
    }
    dependencies: list[dict[str, Any]] = [*source_deps, *_datasets(provenance.get("datasets"))]

    for key, field in (("training_run_id", "trainingRunId"), ("creator", "creator")):
        value = _opt_str(provenance.get(key), f"provenance {key}")
        if value is not None:
            external[field] = value
    parent = provenance.get("parent")
    if parent is not None:
        if not isinstance(parent, Mapping) or set(parent) != {"name", "sha256"}:
            raise InvalidInputError("provenance parent must have exactly name and sha256")
        parent_doc = {
            "name": _str(parent["name"], "provenance parent name"),
            "digest": {"sha256": _hex(parent["sha256"], _SHA256_RE, "provenance parent sha256")},
        }
        external["parent"] = parent_doc
        dependencies.append({**parent_doc, "annotations": {"kind": "parent-artifact"}})
    if provenance.get("extra") is not None:
        external["extra"] = _json_mapping(provenance["extra"], "provenance extra")

    statement: dict[str, Any] = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest}}],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {"environment": environment},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": builder_id},
                "metadata": {
                    "invocationId": invocation_id,
                    "startedOn": _rfc3339(started),
                    "finishedOn": _rfc3339(finished),
                },
            },
        },
    }
    canonical_json(statement)
    return statement


def _reject_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate JSON object key")
        result[key] = value
    return result


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise IntegrityError(f"malformed in-toto statement: {what}")


def _check_descriptor(value: Any, what: str, *, need_digest: bool) -> None:
    _require(isinstance(value, dict), f"{what} is not an object")
    _require(isinstance(value.get("name", ""), str), f"{what} name is not a string")
    digest = value.get("digest")
    if digest is None:
        _require(not need_digest, f"{what} has no digest")
        _require("uri" in value, f"{what} has neither digest nor uri")
        return
    _require(isinstance(digest, dict) and bool(digest), f"{what} digest is not an object")
    _require(
        all(isinstance(k, str) and isinstance(v, str) and v for k, v in digest.items()),
        f"{what} digest values are not strings",
    )
    if "sha256" in digest:
        _require(bool(_SHA256_RE.fullmatch(digest["sha256"])), f"{what} sha256 is not hex")


def parse_statement(payload: bytes, *, build_type: str | None = BUILD_TYPE) -> dict[str, Any]:
    """Parse and check a Statement v1 with a SLSA provenance v1 predicate.

    Refuses (IntegrityError) non-UTF-8 or non-JSON bytes, duplicate keys,
    NaN, a wrong ``_type`` or ``predicateType``, a subject without a sha256,
    a missing ``buildDefinition``/``runDetails`` part and, unless
    ``build_type`` is None, another build type.
    """
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise IntegrityError("in-toto statement must be bytes")
    if len(payload) > MAX_STATEMENT_BYTES:
        raise IntegrityError("in-toto statement is too large")
    try:
        statement = json.loads(
            bytes(payload).decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise IntegrityError("in-toto statement is not valid UTF-8 JSON") from None

    _require(isinstance(statement, dict), "not a JSON object")
    _require(statement.get("_type") == STATEMENT_TYPE, f"_type is not {STATEMENT_TYPE}")
    _require(
        statement.get("predicateType") == SLSA_PROVENANCE_V1,
        f"predicateType is not {SLSA_PROVENANCE_V1}",
    )
    subjects = statement.get("subject")
    _require(isinstance(subjects, list) and bool(subjects), "subject is not a non-empty list")
    for index, subject in enumerate(subjects):
        _check_descriptor(subject, f"subject {index}", need_digest=True)
        _require("sha256" in subject["digest"], f"subject {index} has no sha256 digest")

    predicate = statement.get("predicate")
    _require(isinstance(predicate, dict), "predicate is not an object")
    definition = predicate.get("buildDefinition")
    _require(isinstance(definition, dict), "buildDefinition is not an object")
    kind = definition.get("buildType")
    _require(isinstance(kind, str) and bool(kind), "buildType is not a string")
    if build_type is not None:
        _require(kind == build_type, f"buildType is not {build_type}")
    _require(
        isinstance(definition.get("externalParameters"), dict),
        "externalParameters is not an object",
    )
    _require(
        isinstance(definition.get("internalParameters", {}), dict),
        "internalParameters is not an object",
    )
    dependencies = definition.get("resolvedDependencies", [])
    _require(isinstance(dependencies, list), "resolvedDependencies is not a list")
    for index, dependency in enumerate(dependencies):
        _check_descriptor(dependency, f"resolvedDependencies {index}", need_digest=False)

    run = predicate.get("runDetails")
    _require(isinstance(run, dict), "runDetails is not an object")
    builder = run.get("builder")
    _require(
        isinstance(builder, dict) and isinstance(builder.get("id"), str) and bool(builder["id"]),
        "runDetails.builder.id is not a string",
    )
    metadata = run.get("metadata", {})
    _require(isinstance(metadata, dict), "runDetails.metadata is not an object")
    for field in ("invocationId", "startedOn", "finishedOn"):
        if field in metadata:
            _require(
                isinstance(metadata[field], str), f"runDetails.metadata.{field} is not a string"
            )
    for field in ("startedOn", "finishedOn"):
        if field in metadata:
            try:
                _timestamp(metadata[field], field)
            except InvalidInputError:
                raise IntegrityError(
                    f"malformed in-toto statement: runDetails.metadata.{field} is not RFC 3339"
                ) from None
    result: dict[str, Any] = statement
    return result
