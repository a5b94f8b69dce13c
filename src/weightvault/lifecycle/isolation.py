"""Tier isolation: a whole tier closed to reads and new writes during a tier-wide incident.

``weightvault tier isolate TIER --justification T`` logs ``tier.isolated`` (role
incident-responder); ``weightvault tier restore TIER --justification T`` logs
``tier.restored``. Nothing else is written: the state *is* the signed log. Every operation
that names an isolated tier (its event's tier, or the tier a promotion moves to) is
refused in :meth:`weightvault.artifacts.Vault.begin` by the authorization rule
``tier_isolated`` (exit 68, ``TierIsolatedError``), before any effect and logged, except
the operations containment and recovery need (``isolation_exempt`` in
``config/policies/authz.rego``; ``docs/containment.md``).

:meth:`~weightvault.artifacts.Vault.isolated_tiers` reads the state: the latest ok
isolation or restore of each tier, found through the catalog's index and proved included
in the signed checkpoint, so a forged index row cannot lift an isolation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from weightvault.artifacts import ISOLATABLE_TIERS, TIER_ISOLATED, TIER_RESTORED, Vault
from weightvault.errors import ConflictError, InvalidInputError

__all__ = ["TierState", "isolate_tier", "restore_tier", "tier_states"]


@dataclass(frozen=True)
class TierState:
    """A tier's isolation as the signed log records it."""

    tier: str
    isolated: bool
    #: the log index of the isolation in force (or None)
    log_index: int | None = None
    since: str | None = None
    by: str | None = None
    justification: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return dict(self.__dict__)


def _check(tier: str, justification: str) -> None:
    if tier not in ISOLATABLE_TIERS:
        raise InvalidInputError(f"cannot isolate tier {tier!r}: use hot, warm or cold")
    if not justification.strip():
        raise InvalidInputError("an isolation or restore needs a --justification")


def tier_states(vault: Vault) -> list[TierState]:
    """Each isolatable tier's state, from the signed log."""
    isolated = vault.isolated_tiers()
    out = []
    for tier in ISOLATABLE_TIERS:
        logged = isolated.get(tier)
        if logged is None:
            out.append(TierState(tier, False))
            continue
        event = logged.event
        out.append(
            TierState(
                tier,
                True,
                logged.index,
                event.ts,
                event.actor,
                str(event.details.get("justification", "")),
            )
        )
    return out


def isolate_tier(
    vault: Vault, tier: str, *, justification: str, incident: str | None = None
) -> int:
    """Isolate ``tier`` (one logged ``tier.isolated``); returns its log index.

    ConflictError (logged refused) when the log says it is isolated already.
    """
    _check(tier, justification)
    details: dict[str, Any] = {"justification": justification[:500]}
    if incident:
        details["incident"] = incident
    with vault.operation(TIER_ISOLATED, None, tier, details) as op:
        current = vault.isolated_tiers().get(tier)
        if current is not None:
            raise ConflictError(f"tier {tier} is already isolated (log entry {current.index})")
    return op.outcome_index


def restore_tier(
    vault: Vault, tier: str, *, justification: str, incident: str | None = None
) -> int:
    """Lift the isolation of ``tier`` (one logged ``tier.restored``); returns its log index.

    ConflictError (logged refused) when the log says it is not isolated.
    """
    _check(tier, justification)
    details: dict[str, Any] = {"justification": justification[:500]}
    if incident:
        details["incident"] = incident
    with vault.operation(TIER_RESTORED, None, tier, details) as op:
        current = vault.isolated_tiers().get(tier)
        if current is None:
            raise ConflictError(f"tier {tier} is not isolated")
        op.details["isolated_at"] = current.index
    return op.outcome_index
