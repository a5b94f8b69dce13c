"""Labels and aliases: amendments recorded (and signed) in the log, the only place they live.

``label`` amends an artifact's labels (``artifact.labeled``); ``set_alias`` points
``NAME@ALIAS`` at an artifact (``alias.set``), ``remove_alias`` ends it
(``alias.removed``). Each is one logged operation: the intent is recorded before
anything, the outcome entry is the amendment. What they produce is read back with
:meth:`Vault.logged_names` (docs/names-and-labels.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from weightvault.artifacts import (
    ALIAS_REMOVED,
    ALIAS_SET,
    LABELED,
    AliasTarget,
    Vault,
    label_changes,
    parse_alias,
)
from weightvault.errors import InvalidInputError, NotFoundError

__all__ = ["AliasMove", "aliases", "label", "remove_alias", "set_alias"]


@dataclass(frozen=True)
class AliasMove:
    """An alias set or removed: where it pointed before and where it points now."""

    alias: str
    artifact_id: str | None
    previous: str | None
    index: int


def label(
    vault: Vault, artifact_id: str, pairs: Mapping[str, str], remove: Sequence[str] = ()
) -> dict[str, str]:
    """Set and remove labels of an artifact (a logged amendment); returns its labels now."""
    changes, removed = label_changes(pairs, remove)
    details = {"set": changes, "remove": removed}
    with vault.artifact_operation(LABELED, artifact_id, details):
        row = vault.resolve(artifact_id)  # not found: recorded as the outcome
    return vault.logged_names().of(row.id, row.name).labels


def _alias_key(alias: str) -> str:
    name, short = parse_alias(alias)
    return f"{name}@{short}"


def set_alias(vault: Vault, alias: str, artifact_id: str) -> AliasMove:
    """Point ``NAME@ALIAS`` at an artifact that has NAME among its names (logged, signed)."""
    key = _alias_key(alias)
    name = key.rpartition("@")[0]
    with vault.artifact_operation(ALIAS_SET, artifact_id, {"alias": key}) as op:
        row = vault.resolve(artifact_id)
        index = vault.logged_names()
        names = index.of(row.id, row.name).names
        if name not in names:
            raise InvalidInputError(
                f"artifact {row.id} is not named {name} (its names: {', '.join(names)}): "
                f"an alias {key} points at an artifact of that name"
            )
        current = index.aliases.get(key)
        previous = current.artifact_id if current is not None else None
        op.details["previous"] = previous
    return AliasMove(key, row.id, previous, op.outcome_index)


def remove_alias(vault: Vault, alias: str) -> AliasMove:
    """End ``NAME@ALIAS`` (logged, signed); AliasNotFoundError if it points nowhere."""
    key = _alias_key(alias)
    target = vault.resolve_alias(key)
    try:
        tier: str | None = vault.catalog.artifact(target.artifact_id).tier
    except NotFoundError:  # deleted since: the alias can still be removed
        tier = None
    with vault.operation(ALIAS_REMOVED, target.artifact_id, tier, {"alias": key}) as op:
        pass
    return AliasMove(key, None, target.artifact_id, op.outcome_index)


def aliases(vault: Vault, name: str | None = None) -> list[AliasTarget]:
    """The aliases the log says are set (of one NAME, or all), sorted."""
    found = vault.logged_names().aliases.values()
    return sorted(
        (t for t in found if name is None or t.alias.rpartition("@")[0] == name),
        key=lambda t: t.alias,
    )
