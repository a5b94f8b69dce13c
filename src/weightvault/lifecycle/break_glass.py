"""Break-glass reads: a quarantined artifact read under the two-person rule.

A quarantined artifact cannot be read (``Vault.get`` refuses). In an incident
someone may have to look at it anyway; ``weightvault get ID --out DIR
--break-glass --justification TEXT`` reads it when the signed log records,
**after the quarantine in force**, approvals for the purpose ``break-glass``
(``weightvault approve ID --to break-glass``) that meet the same rule as a
cold promotion or a release (:func:`weightvault.lifecycle.approvals.check_approvals`:
``[approvals] required`` distinct enrolled approvers, not the creator, within
the window). An approval given before that quarantine does not count, and no
name typed anywhere can stand in for one.

The read is its own logged operation, ``artifact.break_glass_read``: the
intent (with the justification) is in the log before the approvals are
checked; the outcome names the quarantine entry, the approvers and their log
entries, or is ``refused`` with the reasons (BreakGlassError, exit 48). The
artifact stays quarantined.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from weightvault.artifacts import BREAK_GLASS_READ, LoggedEvent, TransferProgress, Vault
from weightvault.errors import BreakGlassError, InvalidInputError
from weightvault.lifecycle.approvals import check_approvals
from weightvault.records import Manifest

__all__ = ["BREAK_GLASS", "BREAK_GLASS_READ", "break_glass_get"]

#: the approval purpose a break-glass read counts
BREAK_GLASS = "break-glass"


def break_glass_get(
    vault: Vault,
    artifact_id: str,
    out: Path,
    *,
    justification: str,
    progress: TransferProgress | None = None,
) -> Manifest:
    """Read quarantined ``artifact_id`` into ``out`` when the log's approvals allow it."""
    text = justification.strip()
    if not text or len(text) > 2000:
        raise InvalidInputError("a break-glass read needs a justification of 1-2000 characters")

    def authorize(quarantine: LoggedEvent) -> dict[str, Any]:
        check = check_approvals(
            vault, quarantine.event.artifact_id or "", BREAK_GLASS, after_index=quarantine.index
        )
        if not check.satisfied:
            raise BreakGlassError(
                f"break-glass read of {check.artifact_id} refused: " + "; ".join(check.reasons())
            )
        return {
            "approvers": list(check.approvers),
            "approvals": [a.index for a in check.accepted],
        }

    return vault.get_quarantined(
        artifact_id, out, authorize, {"justification": text}, progress=progress
    )
