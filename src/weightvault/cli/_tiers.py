"""`weightvault promote|quarantine|release|delete|export|offline-verify`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _promote(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.promote import promote

    result = promote(
        open_vault(args),
        args.id,
        args.to,
        justification=args.justification,
        legal_hold=args.legal_hold,
    )
    emit(
        args,
        f"{result.artifact_id}: {result.source} -> {result.target}, "
        f"attestation {result.attestation}"
        + (f", retained until {result.retain_until}" if result.retain_until else "")
        + (f"; {line}" if (line := result.certificate_line()) else ""),
        {**result.__dict__, "gates": [g.to_dict() for g in result.gates]},
    )
    return 0


def _quarantine(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.quarantine import quarantine

    marker = quarantine(open_vault(args), args.id, reason=args.reason)
    emit(args, f"{marker['artifact_id']} quarantined (was {marker['origin']})", marker)
    return 0


def _release(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.quarantine import release

    tier = release(open_vault(args), args.id, justification=args.justification)
    emit(args, f"{args.id} released to {tier}", {"tier": tier})
    return 0


def _delete(args: argparse.Namespace) -> int:
    from weightvault.cli._common import confirm, emit, human_size, open_vault
    from weightvault.lifecycle.promote import delete_artifact

    vault = open_vault(args)
    row = vault.resolve(args.id)
    if not args.yes:
        confirm(
            f"delete artifact {row.id} ({row.name}, {human_size(row.total_size)}, "
            f"tier {row.tier})?",
            refused=f"delete of {row.id} not confirmed: nothing was deleted",
            no_tty=f"delete of {row.id} needs confirmation: run it on a terminal or pass --yes",
        )
    removed = delete_artifact(vault, row.id)
    emit(args, f"deleted {row.id} ({removed} objects)", {"artifact_id": row.id, "removed": removed})
    return 0


def _export(args: argparse.Namespace) -> int:
    from weightvault.cli._common import check_output_parent, emit, open_vault
    from weightvault.errors import UsageError
    from weightvault.lifecycle.export import export_bundle

    if (args.to is None) == (args.oci is None):
        raise UsageError("export needs one of --to DIR (a bundle) or --oci DIR (an OCI layout)")
    if args.oci is not None:
        from weightvault.lifecycle.oci import export_oci

        check_output_parent(Path(args.oci), "--oci")
        done = export_oci(open_vault(args), args.id, Path(args.oci), args.tag)
        emit(
            args,
            f"OCI layout written to {done.out} (tag {done.tag}, manifest {done.manifest_digest}, "
            f"{done.layers} layers, {len(done.referrers)} referrers)",
            done.to_dict(),
        )
        return 0
    check_output_parent(Path(args.to), "--to")
    out = export_bundle(open_vault(args), args.id, Path(args.to))
    emit(args, f"bundle written to {out}", {"bundle": str(out)})
    return 0


def _host_pin(args: argparse.Namespace) -> tuple[Path | None, Any]:
    """This host's pinned root (``trust pin``), if the vault home has one."""
    from weightvault.cli._common import settings_for
    from weightvault.errors import ConfigError
    from weightvault.lifecycle.trust import read_pinned

    try:
        home = settings_for(args).home
    except ConfigError:
        return None, None
    return home, read_pinned(home)


def _offline_verify(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit
    from weightvault.cli._trust import describe
    from weightvault.lifecycle.export import bundle_roots, verify_bundle
    from weightvault.lifecycle.trust import advance_pin, load_root_file

    home = None
    if args.trust_root:
        pinned = load_root_file(Path(args.trust_root))
        source = f"--trust-root {args.trust_root}"
    else:
        home, pinned = _host_pin(args)
        source = "this host's pin"
    tofu = pinned is None and args.trust_on_first_use
    if tofu:
        first = bundle_roots(Path(args.dir))[0]
        print(
            "weightvault: WARNING: trusting on first use the bundle's own "
            f"{describe(first)}, digest {first.digest}: nothing proves this root is the "
            "vault's; compare the fingerprint out of band, then pin it",
            file=sys.stderr,
        )
    report = verify_bundle(Path(args.dir), pinned, trust_on_first_use=args.trust_on_first_use)
    if home is not None and pinned is not None:
        # The walk verified the bundle's newest root from the pin: the pin moves up to it.
        advance_pin(home, max(bundle_roots(Path(args.dir)), key=lambda r: r.version))
    via = "trusted on first use" if tofu else f"from {source} v{report.pinned_version}"
    emit(
        args,
        f"{report.artifact_id} ({report.name}): bundle OK, {report.files} files, "
        f"{report.attestations} attestations, {report.log_entries} log entries proved at "
        f"size {report.log_size}, {report.content_digest}; trust root "
        f"v{report.root_version} ({via})",
        report.__dict__,
    )
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the tier commands."""
    p = sub.add_parser(
        "promote", help="promote hot->warm or warm->cold through the gates", parents=[common]
    )
    p.add_argument("id", help="artifact id, unique id prefix or NAME@ALIAS")
    p.add_argument("--to", required=True, choices=["warm", "cold"], help="the tier to promote into")
    p.add_argument(
        "--justification", required=True, help="why (recorded in the log and the attestation)"
    )
    p.add_argument("--legal-hold", action="store_true", help="cold only: place a legal hold")
    p.set_defaults(func=_promote)
    p = sub.add_parser("quarantine", help="isolate an artifact: no reads", parents=[common])
    p.add_argument("id", help="artifact id, unique id prefix or NAME@ALIAS")
    p.add_argument("--reason", required=True, help="why (recorded in the log)")
    p.set_defaults(func=_quarantine)
    p = sub.add_parser(
        "release",
        help="release a quarantined artifact (needs signed approvals: `approve ID --to release`)",
        parents=[common],
    )
    p.add_argument("id", help="artifact id, unique id prefix or NAME@ALIAS")
    p.add_argument("--justification", required=True, help="why (recorded in the log)")
    p.set_defaults(func=_release)
    p = sub.add_parser(
        "delete", help="delete an artifact (refused under retention)", parents=[common]
    )
    p.add_argument("id", help="artifact id, unique id prefix or NAME@ALIAS")
    p.add_argument(
        "--yes", action="store_true", help="do not ask for confirmation (needed without a terminal)"
    )
    p.set_defaults(func=_delete)
    p = sub.add_parser(
        "export", help="write an air-gapped bundle, or an OCI (ModelPack) layout", parents=[common]
    )
    p.add_argument("id", help="artifact id, unique id prefix or NAME@ALIAS")
    p.add_argument("--to", metavar="DIR", help="the bundle directory to create")
    p.add_argument("--oci", metavar="DIR", help="an OCI image layout to create (plaintext)")
    p.add_argument("--tag", default="latest", help="the layout's tag (with --oci)")
    p.set_defaults(func=_export)
    p = sub.add_parser(
        "offline-verify", help="verify a bundle with no store or network", parents=[common]
    )
    p.add_argument("dir", help="the bundle directory")
    p.add_argument(
        "--trust-root", metavar="FILE", help="a root file got out of band (`trust export`)"
    )
    p.add_argument(
        "--trust-on-first-use",
        action="store_true",
        help="no pinned root: trust the bundle's own version 1 (printed loudly)",
    )
    p.set_defaults(func=_offline_verify)
