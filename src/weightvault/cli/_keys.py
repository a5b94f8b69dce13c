"""`weightvault keys plan|inventory|rotate|compromise`, `weightvault escrow split|recover|decrypt`.

These commands run the core directly (no Prefect): ``keys rotate`` runs the
steps of :func:`weightvault.lifecycle.rotation.rotate` in a row, the same steps
the scheduled ``rotate-keys`` flow runs as tasks, and ``keys compromise
--rekey`` those of :func:`weightvault.lifecycle.rekey.respond`, as the ``rekey``
flow does. Where a flow fails, the command fails too, with the one-line error
and exit code of the same :class:`~weightvault.errors.VaultError` (a response
that leaves envelopes on the key: IncompleteError).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from weightvault.cli._common import human_size, show_shares_one_at_a_time
from weightvault.errors import InvalidInputError, UsageError, VaultError


def _now() -> datetime:
    return datetime.now(UTC)


def _parse_time(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"{what} {value!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- keys ----------------------------------------------------------------------


def _plan(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.keys import explain_plan, is_due, plan_matrix
    from weightvault.lifecycle.rotation import KEY_TYPES, load_policy, plan_rows, policy_tier

    vault = open_vault(args)
    now = _now()
    policy = load_policy(vault)
    blocks: list[str] = []
    data: list[dict[str, Any]] = []
    for rec, text in plan_rows(vault, now):
        if args.key and rec.key_id != args.key:
            continue
        due = is_due(
            policy,
            KEY_TYPES[rec.purpose],
            policy_tier(rec.tier),
            rec.created_at,
            now,
            algorithm=rec.algorithm,
        )
        expires = rec.expires_at.isoformat() if rec.expires_at else "-"
        head = (
            f"{rec.ref} ({rec.algorithm}, created {rec.created_at.isoformat()}, "
            f"expires {expires}, rotation due: {'yes' if due else 'no'})"
        )
        blocks.append(head + "\n" + text)
        data.append({**rec.public_view(), "due": due, "explanation": text})
    if args.matrix:
        for plan in plan_matrix(policy, now):
            text = explain_plan(plan)
            blocks.append(text)
            data.append({"key_type": plan.key_type, "tier": plan.tier, "explanation": text})
    if args.key and not data:
        raise InvalidInputError(f"no active key {args.key!r} with a lifetime plan")
    emit(args, "\n\n".join(blocks) or "no keys", data)
    return 0


def _inventory(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, emit_table, open_vault
    from weightvault.keys import (
        CYCLONEDX_SPEC_VERSION,
        build_cbom,
        cbom_json,
        render_inventory_table,
    )
    from weightvault.lifecycle.rotation import inventory_rows

    vault = open_vault(args)
    now = _now()
    rows = inventory_rows(vault, now)
    data = [
        {
            **r.__dict__,
            "created": r.created.isoformat(),
            "expires": r.expires.isoformat() if r.expires else None,
        }
        for r in rows
    ]
    written = ""
    if args.cbom:
        bom = build_cbom(rows, now)
        path = Path(args.cbom)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(cbom_json(bom) + "\n")
        written = f"CycloneDX {CYCLONEDX_SPEC_VERSION} CBOM written to {path}"
    if args.json or not sys.stdout.isatty():
        emit(args, render_inventory_table(rows) + (f"\n\n{written}" if written else ""), data)
        return 0
    columns = ("KEY", "ALGORITHM", "TIER", "STATE", "EXPIRES", "QUANTUM", "PROTECTS", "WRAPS")
    cells = [
        (
            f"{r.key_id}@v{r.version}",
            r.algorithm,
            r.tier,
            r.state,
            r.expires.isoformat() if r.expires else "-",
            r.quantum_status,
            r.artifacts_protected,
            r.wraps,
        )
        for r in rows
    ]
    emit_table(args, columns, cells, data, empty="no keys")
    if written:
        print(written)
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, emit_report, open_vault
    from weightvault.cli._progress import counting
    from weightvault.lifecycle.rotation import find_due, render_report, rotate

    vault = open_vault(args)
    now = _now()
    if args.dry_run:
        due = find_due(vault, now, force_tiers=args.tier, force_signing=args.signing)
        lines = [f"{d.key_id}@v{d.version}: {d.reason}" for d in due] or ["nothing is due"]
        emit(args, "\n".join(lines), [d.to_dict() for d in due])
        return 0
    with counting(args) as bars:
        current: list[str] = []

        def planned(tier: str, total: int) -> None:
            current[:] = [f"rewrap {tier}"]
            bars.plan(current[0], total)

        report = rotate(
            vault,
            now,
            force_tiers=args.tier,
            force_signing=args.signing,
            batch_size=args.batch_size,
            workers=args.workers,
            verify=args.verify,
            on_plan=planned,
            on_batch=lambda s: bars.done(
                current[0], s.rewrapped + s.already + s.missing + s.skipped
            ),
        )
    emit_report(args, render_report(report.to_dict()), report.to_dict())
    return 0


def _compromise(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault

    vault = open_vault(args)
    since = _parse_time(args.since, "--since")
    if args.rekey:
        from weightvault.cli._progress import counting
        from weightvault.lifecycle.rekey import respond

        with counting(args) as bars:

            def reencrypted(done: int, total: int, _artifact_id: str) -> None:
                if done <= 1:
                    bars.plan("re-encrypt", total)
                bars.done("re-encrypt", done)

            result = respond(
                vault,
                args.key,
                since=since,
                exposed=args.exposed,
                all_exposed=args.all_exposed,
                progress=reencrypted,
            ).to_dict()
    else:
        from weightvault.lifecycle.compromise import compromise_key

        result = compromise_key(
            vault, args.key, since=since, exposed=args.exposed, all_exposed=args.all_exposed
        ).to_dict()
    lines = [
        f"{result['key']} is compromised"
        + ("" if result["newly_marked"] else " (already marked)")
        + (f"; new wraps go to {result['replacement']}" if result["replacement"] else ""),
        f"protects {len(result['protected'])} artifact(s): "
        f"{result['re_encrypt']} to re-encrypt, {result['rewrap']} to rewrap",
    ]
    lines += [
        f"  {p['artifact_id']}  {p['tier']}  {p['action']}  ({p['why']})"
        for p in result["protected"]
    ]
    if args.rekey:
        lines.append(
            f"re-encrypted {len(result['reencrypted'])}, rewrapped "
            f"{result['rewrapped']['rewrapped']}, still on the key: {result['remaining']}"
        )
    elif result["protected"]:
        lines.append("run `weightvault keys compromise ... --rekey` or the rekey flow to remediate")
    emit(args, "\n".join(lines), result)
    return 0


# -- escrow --------------------------------------------------------------------


def _split(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.escrow import escrow_all_cold, split_escrow_key, write_share_files

    if not args.out_dir and (args.json or not (sys.stdin.isatty() and sys.stdout.isatty())):
        # All n shares in one stream would let whoever sees it recover the key alone.
        raise UsageError(
            "without --out-dir, escrow split shows the shares one at a time on a terminal "
            "(not piped, not with --json); pass --out-dir DIR to write one 0600 file per custodian"
        )
    vault = open_vault(args)
    if args.out_dir:
        out = Path(args.out_dir)
        if out.exists() and any(out.iterdir()):
            raise InvalidInputError(f"--out-dir {out} exists and is not empty")
        _check_writable(out)
    with vault.operation(
        "key.escrow_split",
        details={"threshold": args.threshold, "shares": args.shares, "replace": args.replace},
    ) as op:
        split = split_escrow_key(
            vault.keys, threshold=args.threshold, shares=args.shares, replace=args.replace
        )
        op.uses(split.key_ref)
        escrowed = escrow_all_cold(vault)
        op.details.update(
            key=split.key_ref,
            fingerprint=split.fingerprint,
            shares=len(split.shares),
            cold_escrowed=escrowed["written"],
        )
    data: dict[str, Any] = {
        "key": split.key_ref,
        "fingerprint": split.fingerprint,
        "threshold": split.threshold,
        "shares": len(split.shares),
        "cold_escrowed": escrowed["written"],
    }
    head = (
        f"escrow key {split.key_ref} (fingerprint {split.fingerprint[:16]}...), "
        f"{split.threshold} of {len(split.shares)} shares recover it; "
        f"{escrowed['written']} cold artifact(s) escrowed"
    )
    if args.out_dir:
        paths = write_share_files(split, Path(args.out_dir))
        data["files"] = [str(p) for p in paths]
        emit(args, head + "\nshare files (mode 0600):\n" + "\n".join(map(str, paths)), data)
    else:
        emit(args, head, data)
        show_shares_one_at_a_time(split.shares, again="weightvault escrow split --replace")
    return 0


def _check_writable(out: Path) -> None:
    """Make ``out`` (0700) and write a probe there: a split never makes shares it cannot save."""
    import tempfile

    from weightvault._fs import local_write_error

    try:
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise local_write_error(exc, out) from None


def _shares(args: argparse.Namespace) -> list[str]:
    from weightvault.lifecycle.escrow import read_share_files

    return read_share_files([Path(p) for p in args.share])


def _recover(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, settings_for
    from weightvault.lifecycle.escrow import (
        ESCROW_KEY_ID,
        recover_escrow_key,
    )

    private = recover_escrow_key(_shares(args))
    fingerprint = private.public_key().fingerprint
    data: dict[str, Any] = {"fingerprint": fingerprint, "matches": None}
    human = f"recovered escrow key {fingerprint[:16]}..."
    try:
        from weightvault.artifacts import open_keystore

        keys = open_keystore(settings_for(args), None)
        match = [
            r.ref for r in keys.versions(ESCROW_KEY_ID) if r.meta.get("fingerprint") == fingerprint
        ]
    except VaultError:  # the keystore may be lost: that is what escrow is for
        match = None
    if match is not None:
        data["matches"] = match
        human += (
            f"; matches {', '.join(match)}" if match else "; matches no escrow key in the keystore"
        )
    if args.artifact:
        from weightvault.lifecycle.escrow import _load_escrow_document, unwrap_escrowed_dek
        from weightvault.store import connect

        settings = settings_for(args)
        doc = _load_escrow_document(
            connect(settings), settings.store.bucket("envelopes"), args.artifact
        )
        dek = unwrap_escrowed_dek(doc, args.artifact, private)
        del dek
        data["unwraps"] = args.artifact
        human += f"; unwraps the escrow envelope of {args.artifact}"
    emit(args, human, data)
    return 0


def _decrypt(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, settings_for
    from weightvault.lifecycle.escrow import escrow_decrypt
    from weightvault.records import check_artifact_id

    restored = escrow_decrypt(
        settings_for(args), check_artifact_id(args.id), _shares(args), Path(args.out)
    )
    emit(
        args,
        f"{restored.artifact_id}: {restored.files} files, {human_size(restored.bytes)} decrypted "
        f"with escrow shares and verified ({restored.content_digest}) into {restored.out}",
        restored.__dict__,
    )
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``keys`` and ``escrow`` command groups."""
    keys = sub.add_parser(
        "keys", help="key lifetimes, inventory, rotation, compromise", parents=[common]
    )
    ksub = keys.add_subparsers(dest="keys_command", metavar="ACTION", parser_class=type(keys))
    ksub.required = True
    p = ksub.add_parser(
        "plan", help="why each key has its lifetime and algorithms", parents=[common]
    )
    p.add_argument("--key", help="only this key id (e.g. kek-hot)")
    p.add_argument("--matrix", action="store_true", help="also every key type x tier of the policy")
    p.set_defaults(func=_plan)
    p = ksub.add_parser(
        "inventory", help="every key version, and a CycloneDX 1.6 CBOM", parents=[common]
    )
    p.add_argument("--cbom", metavar="FILE", help="write the CBOM JSON here")
    p.set_defaults(func=_inventory)
    p = ksub.add_parser(
        "rotate", help="rotate due keys now (what the schedule runs)", parents=[common]
    )
    p.add_argument(
        "--tier",
        action="append",
        default=[],
        choices=["hot", "warm", "cold", "quarantine"],
        help="rotate this tier's KEK even if not due (repeatable)",
    )
    p.add_argument("--signing", action="store_true", help="rotate the signing key too")
    p.add_argument(
        "--batch-size",
        type=int,
        default=500,
        help="envelopes rewrapped per logged batch (default 500)",
    )
    p.add_argument("--workers", type=int, default=16, help="parallel rewraps (default 16)")
    p.add_argument("--verify", type=int, default=3, help="artifacts to verify per tier")
    p.add_argument("--dry-run", action="store_true", help="only list what is due")
    p.set_defaults(func=_rotate)
    p = ksub.add_parser(
        "compromise",
        help="mark a key version compromised and list what it protects",
        parents=[common],
    )
    p.add_argument(
        "key", metavar="KEY_ID[@vN]", help="the key, e.g. kek-hot@v1 (no version: every version)"
    )
    p.add_argument("--since", help="start of the exposure window (ISO 8601)")
    p.add_argument(
        "--exposed",
        action="append",
        default=[],
        metavar="ID",
        help="an artifact whose DEK may have been exposed (repeatable)",
    )
    p.add_argument(
        "--all-exposed", action="store_true", help="every DEK may be exposed: re-encrypt all"
    )
    p.add_argument("--rekey", action="store_true", help="re-encrypt / rewrap now")
    p.set_defaults(func=_compromise)

    escrow = sub.add_parser(
        "escrow", help="cold-tier escrow key: split, recover, decrypt", parents=[common]
    )
    esub = escrow.add_subparsers(dest="escrow_command", metavar="ACTION", parser_class=type(escrow))
    esub.required = True
    p = esub.add_parser(
        "split", help="make the escrow key and its k-of-n SLIP-39 shares", parents=[common]
    )
    p.add_argument(
        "--threshold",
        type=int,
        default=3,
        help="how many shares recover the escrow key (default 3)",
    )
    p.add_argument("--shares", type=int, default=5, help="how many shares to make (default 5)")
    p.add_argument("--out-dir", help="write one 0600 share file per custodian here")
    p.add_argument("--replace", action="store_true", help="replace an existing escrow key")
    p.set_defaults(func=_split)
    p = esub.add_parser(
        "recover", help="rebuild the escrow private key from k shares", parents=[common]
    )
    p.add_argument(
        "--share",
        action="append",
        required=True,
        metavar="FILE",
        help="a share file (repeatable, as many as the threshold)",
    )
    p.add_argument("--artifact", help="also check it unwraps this artifact's escrow envelope")
    p.set_defaults(func=_recover)
    p = esub.add_parser(
        "decrypt",
        help="decrypt a cold artifact with the store and k shares only",
        parents=[common],
    )
    p.add_argument("id", help="artifact id, unique id prefix or NAME@ALIAS")
    p.add_argument(
        "--share",
        action="append",
        required=True,
        metavar="FILE",
        help="a share file (repeatable, as many as the threshold)",
    )
    p.add_argument("--out", required=True, help="directory to create (must not hold files)")
    p.set_defaults(func=_decrypt)
