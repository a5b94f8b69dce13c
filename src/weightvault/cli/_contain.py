"""`weightvault tier isolate|restore|status`, `contain`, `verify-incident-bundle`.

Containment of an incident (``docs/containment.md``): the tier isolation the signed log
records, the contain playbook for an incident file, and the offline check of the
incident bundle it writes.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from weightvault.errors import UsageError


def _tier(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, emit_table, open_vault
    from weightvault.lifecycle import isolation

    vault = open_vault(args)
    if args.tier_action == "status":
        states = [s.to_dict() for s in isolation.tier_states(vault)]
        rows = [
            [
                s["tier"],
                "isolated" if s["isolated"] else "open",
                s["log_index"] or "-",
                s["by"] or "-",
            ]
            for s in states
        ]
        emit_table(args, ("tier", "state", "log entry", "by"), rows, states)
        return 0
    if not args.tier or not args.justification:
        raise UsageError(f"tier {args.tier_action} needs TIER and --justification")
    if args.tier_action == "isolate":
        index = isolation.isolate_tier(vault, args.tier, justification=args.justification)
        human = f"tier {args.tier} isolated (log entry {index}): reads and new writes refused"
    else:
        index = isolation.restore_tier(vault, args.tier, justification=args.justification)
        human = f"tier {args.tier} restored (log entry {index})"
    emit(args, human, {"tier": args.tier, "action": args.tier_action, "log_index": index})
    return 0


def _plan(args: argparse.Namespace) -> Any:
    from weightvault.lifecycle.contain import ContainmentPlan

    if args.incident_file:
        return ContainmentPlan.load(Path(args.incident_file))
    if not (args.incident or args.rule or args.severity or args.lift):
        return None  # the open incidents the signed log shows not yet contained
    if not (args.incident and args.rule and args.severity):
        raise UsageError("contain needs --incident-file F.json, or --incident, --rule, --severity")
    return ContainmentPlan.from_incident(
        {
            "incident_id": args.incident,
            "rule": args.rule,
            "severity": args.severity,
            "artifacts": args.artifact or [],
            "principals": args.principal or [],
            "keys": args.key or [],
            "tiers": args.tier or [],
            "actions": args.action or [],
            "evidence": args.evidence or [],
        }
    )


def _contain(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, emit_report, open_vault
    from weightvault.lifecycle.contain import (
        contain,
        find_incidents,
        lift_containment,
        raise_if_failed,
    )

    vault = open_vault(args)
    plan = _plan(args)
    if plan is None:
        # No explicit incident: a detection run, then every open incident not yet contained.
        results = [
            contain(vault, p, Path(args.out) if args.out else None)
            for p in find_incidents(vault, None)
        ]
        report = "\n".join(r.report for r in results) or "no open incident to contain\n"
        emit_report(args, report, {"incidents": [r.to_dict() for r in results]})
        for result in results:
            raise_if_failed(result)
        return 0
    if args.lift:
        if not args.justification:
            raise UsageError("contain --lift needs --justification")
        lifted = lift_containment(vault, plan, args.justification)
        emit(
            args,
            f"incident {plan.incident_id}: released {', '.join(lifted.released) or 'nothing'}, "
            f"restored {', '.join(lifted.restored) or 'no tier'} (log entry {lifted.log_index})",
            lifted.to_dict(),
        )
        return 0
    result = contain(vault, plan, Path(args.out) if args.out else None)
    emit_report(args, result.report, result.to_dict())
    raise_if_failed(result)
    return 0


def _verify_bundle(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit
    from weightvault.lifecycle.contain import verify_incident_bundle
    from weightvault.lifecycle.trust import load_root_file

    report = verify_incident_bundle(Path(args.bundle), load_root_file(Path(args.root)))
    emit(
        args,
        f"incident {report.incident_id}: {report.entries} log entries ({report.evidence} "
        f"evidence) proved under checkpoint size {report.log_size}, trust root "
        f"v{report.root_version}; index sha256 {report.sha256}",
        report.to_dict(),
    )
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the containment commands."""
    p = sub.add_parser("tier", help="isolate or restore a whole tier", parents=[common])
    p.add_argument(
        "tier_action",
        choices=["isolate", "restore", "status"],
        metavar="ACTION",
        help="isolate, restore or status",
    )
    p.add_argument(
        "tier", nargs="?", choices=["hot", "warm", "cold"], help="the tier (all tiers for status)"
    )
    p.add_argument("--justification", help="why (recorded in the log)")
    p.set_defaults(func=_tier)
    p = sub.add_parser(
        "contain",
        help="run the contain playbook for an incident (none named: detect, then every open "
        "incident not yet contained)",
        parents=[common],
    )
    p.add_argument("--incident-file", metavar="F.json", help="the incident (detector's JSON)")
    p.add_argument("--incident", help="the incident id (without a file)")
    p.add_argument("--rule", help="the detection rule of an incident given by hand")
    p.add_argument("--severity", choices=["low", "medium", "high", "critical"], help="its severity")
    p.add_argument(
        "--artifact", action="append", metavar="ID", help="an artifact it names (repeatable)"
    )
    p.add_argument(
        "--principal", action="append", metavar="NAME", help="a principal it names (repeatable)"
    )
    p.add_argument(
        "--key", action="append", metavar="KEY@vN", help="a key version it names (repeatable)"
    )
    p.add_argument(
        "--tier",
        action="append",
        choices=["hot", "warm", "cold"],
        help="a tier it names (repeatable)",
    )
    p.add_argument(
        "--action",
        action="append",
        choices=sorted(
            {"quarantine", "revoke_grants", "isolate_tier", "compromise_keys", "recover", "rekey"}
        ),
        help="a containment action to take (repeatable; default: the rule's)",
    )
    p.add_argument(
        "--evidence",
        action="append",
        metavar="EVENT_ID",
        help="a log entry id that is evidence (repeatable)",
    )
    p.add_argument("--out", metavar="DIR", help="bundle and report (default <home>/incidents/ID)")
    p.add_argument("--lift", action="store_true", help="lift the containment instead")
    p.add_argument("--justification", help="--lift: why (recorded in the log)")
    p.set_defaults(func=_contain)
    p = sub.add_parser(
        "verify-incident-bundle", help="check an incident bundle offline", parents=[common]
    )
    p.add_argument("bundle", metavar="DIR", help="the incident bundle directory")
    p.add_argument("--root", required=True, metavar="FILE", help="the trust root you pinned")
    p.set_defaults(func=_verify_bundle)
