"""`weightvault detect` and `weightvault incident ls|show|resolve`."""

from __future__ import annotations

import argparse
from typing import Any

from weightvault.errors import UsageError


def _detect(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.incidents import detect

    report = detect(open_vault(args))
    lines = [f"log entries {report.start}..{report.cursor - 1}: {len(report.opened)} incident(s)"]
    lines += [f"  {i.id} {i.severity:8} {i.summary}" for i in report.opened]
    emit(args, "\n".join(lines), report.to_dict())
    return 0


def _line(incident: Any) -> str:
    head = f"{incident.id} {incident.status:8} {incident.severity:8} {incident.opened_at}"
    return f"{head} {incident.summary}"


def _incident(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.contain import resolve
    from weightvault.lifecycle.incidents import list_incidents, load_incident

    vault = open_vault(args)
    if args.incident_action == "ls":
        found = list_incidents(vault, args.status)
        emit(
            args, "\n".join(_line(i) for i in found) or "no incidents", [i.to_dict() for i in found]
        )
        return 0
    if not args.incident:
        raise UsageError(f"incident {args.incident_action} needs an incident id")
    if args.incident_action == "show":
        detail = load_incident(vault, args.incident)
        incident = detail.incident
        lines = [
            _line(incident),
            f"  rule {incident.rule}; actions: {', '.join(incident.actions) or 'none'}",
            f"  artifacts: {', '.join(incident.artifacts) or '-'}; principals: "
            f"{', '.join(incident.principals) or '-'}; keys: {', '.join(incident.keys) or '-'}",
            f"  document statements/{detail.statement_sha256}.dsse.json (signed, logged at "
            f"entry {incident.log_index})",
        ]
        lines += [
            f"  evidence {event} log entry {index}: "
            + ("proof verifies" if ok else f"PROOF DOES NOT VERIFY: {why}")
            for event, (index, ok, why) in zip(incident.evidence, detail.proofs, strict=False)
        ]
        emit(args, "\n".join(lines), detail.to_dict())
        return 0
    if not args.justification:
        raise UsageError("incident resolve needs --justification")
    # The containment is lifted first (release approvals needed), then the incident resolved.
    resolved = resolve(vault, args.incident, args.justification)
    emit(args, f"{resolved.id} resolved at {resolved.resolved_at}", resolved.to_dict())
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the detection and incident commands."""
    p = sub.add_parser(
        "detect",
        help="run the detection rules on the log's new entries; open incidents",
        parents=[common],
    )
    p.set_defaults(func=_detect)
    p = sub.add_parser("incident", help="list, show or resolve incidents", parents=[common])
    p.add_argument("incident_action", choices=["ls", "show", "resolve"], metavar="ACTION")
    p.add_argument("incident", nargs="?", metavar="ID")
    p.add_argument("--status", choices=["open", "resolved"])
    p.add_argument("--justification")
    p.set_defaults(func=_incident)
