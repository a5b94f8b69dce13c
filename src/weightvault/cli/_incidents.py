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


def contained_line(incident: Any, trigger: str | None = None) -> str:
    """Who contained the incident, as the log's latest ok ``incident.contained`` records it:
    the Prefect flow run (and, when Prefect still knows it, the trigger that started it:
    the automation, or ``backstop``) or the process that ran the playbook by hand."""
    by = incident.contained_by
    if incident.contained_at is None or not by:
        return "  not contained (no ok incident.contained in the log)"
    who = f"principal {by.get('principal') or '-'}, log entry {by.get('log_index')}"
    if by.get("flow_run"):
        run = f"flow run {by['flow_run']}"
        if trigger:
            run += f" (trigger {trigger})"
        return f"  contained {incident.contained_at} by {run}; {who}"
    return f"  contained {incident.contained_at} by hand ({by.get('process') or '-'}); {who}"


def _trigger_of(vault: Any, flow_run: str | None) -> str | None:
    """The ``trigger`` parameter of the flow run on the vault's Prefect server, if it answers.

    A hint for the operator (which automation fired), not evidence: only the flow run id
    comes from the signed log.
    """
    import json
    import urllib.parse
    import urllib.request

    from weightvault import telemetry

    url = telemetry.prefect_api_url(vault.settings.events_api_url)
    if not flow_run or not url:
        return None
    target = f"{url.rstrip('/')}/flow_runs/{urllib.parse.quote(str(flow_run), safe='')}"
    try:
        with urllib.request.urlopen(target, timeout=2) as resp:  # noqa: S310 - configured API
            params = json.loads(resp.read()).get("parameters") or {}
    except (OSError, ValueError, AttributeError):
        return None
    trigger = params.get("trigger") if isinstance(params, dict) else None
    return str(trigger)[:60] if trigger else None


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
            contained_line(
                incident,
                _trigger_of(vault, (incident.contained_by or {}).get("flow_run")),
            ),
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
    p.add_argument(
        "incident_action",
        choices=["ls", "show", "resolve"],
        metavar="ACTION",
        help="ls, show or resolve",
    )
    p.add_argument("incident", nargs="?", metavar="ID", help="the incident id (show, resolve)")
    p.add_argument(
        "--status", choices=["open", "resolved"], help="ls: only incidents in this state"
    )
    p.add_argument("--justification", help="resolve: why (recorded in the log)")
    p.set_defaults(func=_incident)
