"""`weightvault approve|approvals`: signed approvals and what the log backs."""

from __future__ import annotations

import argparse
from typing import Any

# lifecycle.approvals.PURPOSES (not imported: the CLI imports engines lazily)
_PURPOSES = ["cold", "warm", "release", "break-glass"]


def _approve(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.approvals import approve

    approval = approve(open_vault(args), args.id, purpose=args.to, justification=args.justification)
    emit(
        args,
        f"{args.id}: {approval.approver} approved {approval.purpose}, valid until "
        f"{approval.expires_at} (statement {approval.statement})",
        approval.to_dict(),
    )
    return 0


def _approvals(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.approvals import check_approvals

    check = check_approvals(open_vault(args), args.id, args.purpose)
    lines = [
        f"{check.artifact_id} {check.purpose}: {len(check.approvers)} of {check.required} "
        f"approvals ({'met' if check.satisfied else 'not met'})"
    ]
    lines += [
        f"  ok       {a.approver} (log entry {a.index}, until {a.expires_at}): {a.justification}"
        for a in check.accepted
    ]
    lines += [f"  refused  log entry {i}: {why}" for i, why in check.rejected]
    emit(args, "\n".join(lines), check.to_dict())
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the approval commands."""
    p = sub.add_parser(
        "approve",
        help="sign, with your key, an approval (cold promotion, release, break-glass read)",
        parents=[common],
    )
    p.add_argument("id", help="artifact id, unique id prefix or NAME@ALIAS")
    p.add_argument("--to", required=True, choices=_PURPOSES, help="what the approval is for")
    p.add_argument(
        "--justification", required=True, help="why you approve (recorded in the signed statement)"
    )
    p.set_defaults(func=_approve)
    p = sub.add_parser(
        "approvals", help="the approvals of an artifact the signed log backs", parents=[common]
    )
    p.add_argument("id", help="artifact id, unique id prefix or NAME@ALIAS")
    p.add_argument(
        "--for",
        dest="purpose",
        default="cold",
        choices=_PURPOSES,
        help="the purpose to count approvals for (default cold)",
    )
    p.set_defaults(func=_approvals)
