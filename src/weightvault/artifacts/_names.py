"""Names, labels and aliases of artifacts, as the signed log records them.

The catalog holds none of this: it is folded from log entries (each signed by the
acting principal and proved included in the signed checkpoint), so a catalog
rebuild, which re-indexes the log, brings it all back.

- names: the name of the put that stored the content, then every ``artifact.named``
  (a put of the same content under another name);
- labels: the labels of that put, then every ``artifact.labeled`` amendment
  (``set`` then ``remove``), in log order;
- aliases: ``NAME@ALIAS`` points at the artifact of its latest ``alias.set``, until an
  ``alias.removed``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from weightvault.errors import InvalidInputError

INGESTED = "artifact.ingested"
NAMED = "artifact.named"
LABELED = "artifact.labeled"
ALIAS_SET = "alias.set"
ALIAS_REMOVED = "alias.removed"
NAME_KINDS = (INGESTED, NAMED, LABELED, ALIAS_SET, ALIAS_REMOVED)

_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,62}")
_ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_MAX_VALUE = 256


def check_label(key: str, value: str | None = None) -> None:
    """InvalidInputError unless ``key`` (and ``value``) make a valid label."""
    if not _LABEL_KEY.fullmatch(key):
        raise InvalidInputError(
            f"label key {key[:70]!r} must be 1-63 letters, digits, '.', '_', '/' or '-'"
        )
    if value is not None and (
        len(value) > _MAX_VALUE or not value.isprintable() or value != value.strip()
    ):
        raise InvalidInputError(
            f"label {key} value must be at most {_MAX_VALUE} printable characters "
            "without leading or trailing spaces"
        )


def parse_alias(ref: str) -> tuple[str, str]:
    """(name, alias) of ``NAME@ALIAS``; InvalidInputError if it is not one."""
    name, sep, alias = ref.strip().rpartition("@")
    if not sep or not name or not _ALIAS.fullmatch(alias):
        raise InvalidInputError(
            f"{ref[:100]!r} is not NAME@ALIAS (an alias is 1-63 letters, digits, '.', '_' or '-')"
        )
    return name, alias


def is_alias(ref: str) -> bool:
    """Whether ``ref`` names an alias (``NAME@ALIAS``) rather than an id or id prefix."""
    return "@" in ref


@dataclass
class ArtifactNames:
    """One artifact's names (the first is the put's), effective labels and aliases."""

    names: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for --json and reports."""
        return {"names": list(self.names), "labels": dict(self.labels), "aliases": self.aliases}


@dataclass(frozen=True)
class AliasTarget:
    """Where an alias points: the artifact, and the log entry that pointed it there."""

    alias: str
    artifact_id: str
    index: int
    by: str | None
    ts: str


@dataclass(frozen=True)
class NameIndex:
    """Everything the log says of names, labels and aliases."""

    artifacts: dict[str, ArtifactNames]
    aliases: dict[str, AliasTarget]

    def of(self, artifact_id: str, fallback_name: str | None = None) -> ArtifactNames:
        """The artifact's names; ``fallback_name`` when the log holds no put of it."""
        found = self.artifacts.get(artifact_id)
        if found is None:
            found = ArtifactNames(names=[fallback_name] if fallback_name else [])
        elif fallback_name and not found.names:
            found.names.append(fallback_name)
        return found


def apply_amendment(labels: Mapping[str, str], details: Mapping[str, Any]) -> dict[str, str]:
    """``labels`` after one ``artifact.labeled`` amendment (its ``set``, then its ``remove``)."""
    out = dict(labels)
    changes = details.get("set")
    if isinstance(changes, dict):
        out.update({str(k): str(v) for k, v in changes.items()})
    removed = details.get("remove")
    if isinstance(removed, list):
        for key in removed:
            out.pop(str(key), None)
    return dict(sorted(out.items()))


def _fold_names(item: ArtifactNames, kind: str, details: Mapping[str, Any]) -> None:
    name = details.get("name")
    if kind == INGESTED:
        if isinstance(name, str) and name not in item.names:
            item.names.insert(0, name)
        labels = details.get("labels")
        if isinstance(labels, dict):
            base = {str(k): str(v) for k, v in labels.items()}
            item.labels = dict(sorted((base | item.labels).items()))
    elif kind == NAMED:
        if isinstance(name, str) and name not in item.names:
            item.names.append(name)
    elif kind == LABELED:
        item.labels = apply_amendment(item.labels, details)


def fold(events: Iterable[tuple[int, Any]]) -> NameIndex:
    """The name index of (log index, Event) pairs in log order; only ok outcomes count."""
    artifacts: dict[str, ArtifactNames] = {}
    aliases: dict[str, AliasTarget] = {}
    for index, event in events:
        if event.phase != "outcome" or event.outcome != "ok" or not event.artifact_id:
            continue
        details = event.details if isinstance(event.details, dict) else {}
        if event.kind not in (ALIAS_SET, ALIAS_REMOVED):
            _fold_names(
                artifacts.setdefault(event.artifact_id, ArtifactNames()), event.kind, details
            )
            continue
        alias = details.get("alias")
        if not isinstance(alias, str):
            continue
        if event.kind == ALIAS_SET:
            aliases[alias] = AliasTarget(
                alias, event.artifact_id, index, event.actor, str(event.ts)
            )
        elif alias in aliases and aliases[alias].artifact_id == event.artifact_id:
            del aliases[alias]
    for target in aliases.values():
        artifacts.setdefault(target.artifact_id, ArtifactNames()).aliases.append(target.alias)
    for item in artifacts.values():
        item.aliases.sort()
    return NameIndex(artifacts, aliases)


def label_changes(
    pairs: Mapping[str, str], remove: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    """Checked (set, remove) of an amendment; InvalidInputError for a bad or empty one."""
    for key, value in pairs.items():
        check_label(key, value)
    for key in remove:
        check_label(key)
    both = sorted(set(pairs) & set(remove))
    if both:
        raise InvalidInputError(f"label {both[0]} is both set and removed")
    if not pairs and not remove:
        raise InvalidInputError("give labels to set (KEY=VALUE) or --remove KEY")
    return dict(sorted(pairs.items())), sorted(set(remove))


__all__ = [
    "ALIAS_REMOVED",
    "ALIAS_SET",
    "LABELED",
    "NAMED",
    "NAME_KINDS",
    "AliasTarget",
    "ArtifactNames",
    "NameIndex",
    "apply_amendment",
    "check_label",
    "fold",
    "is_alias",
    "label_changes",
    "parse_alias",
]
