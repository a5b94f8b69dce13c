"""`weightvault trust init|show|rotate|enrol|revoke-principal|pin|export`: the signed trust root."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightvault.errors import InvalidInputError, UsageError

if TYPE_CHECKING:
    from weightvault.artifacts import Vault
    from weightvault.provenance import Root


def _group(fingerprint: str) -> str:
    """The first 64 bits of a fingerprint in groups of four, for reading aloud."""
    head = fingerprint[:16]
    return " ".join(head[i : i + 4] for i in range(0, 16, 4))


def describe(root: Root) -> str:
    """One line naming a root: version, root-key fingerprint, threshold, expiry."""
    return (
        f"trust root v{root.version} (root keys fingerprint {_group(root.fingerprint)}, "
        f"{root.threshold} of {len(root.root_keys)}, expires {root.summary()['expires']})"
    )


def _show_lines(root: Root, custody: dict[str, str]) -> list[str]:
    summary = root.summary()
    lines = [
        describe(root),
        f"  digest {root.digest}",
        f"  root keys (threshold {root.threshold}):",
    ]
    lines += [
        f"    {k['label']}  {k['keyid']}  {custody.get(k['keyid'], 'offline')}"
        for k in summary["root_keys"]
    ]
    lines.append("  signing keys:")
    for entry in summary["signing"]:
        since = f" since {entry['compromised_at']}" if entry["compromised_at"] else ""
        lines.append(f"    {entry['key']}  {entry['keyid'][:16]}  {entry['state']}{since}")
    if not root.oms:
        lines.append("  OMS keys: none (model.sig uses the signing key's Ed25519 half)")
    else:
        lines.append("  OMS keys (ECDSA-P256, for `model_signing verify key`):")
    for entry in summary["oms"]:
        since = f" since {entry['compromised_at']}" if entry["compromised_at"] else ""
        lines.append(f"    {entry['key']}  {entry['keyid'][:16]}  {entry['state']}{since}")
    for role in ("log", "witness"):
        keys = summary[role]
        lines.append(f"  {role} keys: " + (", ".join(k.split("+", 2)[0] for k in keys) or "none"))
    lines.append("  principals:" if root.principals else "  principals: none (bootstrap enrolment)")
    lines += [
        f"    {p['name']}  {p['keyid'][:16]}  {','.join(p['roles'])}" for p in summary["principals"]
    ]
    return lines


def _custody(vault: Vault, root: Root) -> dict[str, str]:
    from weightvault.lifecycle.trust import keystore_root_keys

    online = {k.keyid for k in keystore_root_keys(vault)}
    return {k.keyid: "keystore" if k.keyid in online else "offline" for k in root.root_keys}


def _init(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.trust import init_root

    change = init_root(
        open_vault(args),
        keys=args.keys,
        threshold=args.threshold,
        export=Path(args.export) if args.export else None,
        expires_days=args.expires_days,
        log_keys=args.log_vkey,
        witness_keys=args.witness_vkey,
    )
    where = (
        f"root keys written to {len(change.key_files)} files in {args.export} (keep them offline)"
        if change.key_files
        else "root keys kept in the keystore"
    )
    emit(args, f"published {describe(change.root)}; {where}", change.to_dict())
    return 0


def _show(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.errors import NoTrustRootError
    from weightvault.lifecycle.trust import current_root

    vault = open_vault(args)
    root = current_root(vault, check_expiry=False)
    if root is None:
        raise NoTrustRootError("the vault has no signed trust root: run `weightvault trust init`")
    if args.signing_key_pem is not None:
        return _signing_key_pem(args, root)
    custody = _custody(vault, root)
    data: dict[str, Any] = root.summary()
    data["expired"] = root.expired(vault.clock())
    for key in data["root_keys"]:
        key["custody"] = custody[key["keyid"]]
    lines = _show_lines(root, custody)
    if data["expired"]:
        lines.insert(1, "  EXPIRED: run `weightvault trust rotate` to renew it")
    emit(args, "\n".join(lines), data)
    return 0


def _signing_key_pem(args: argparse.Namespace, root: Root) -> int:
    """Print the public key (PEM) that verifies ``model.sig`` (OpenSSF model signing).

    Without a key id prefix: the active ECDSA P-256 OMS key the signed root lists
    (what ``model_signing verify key`` takes); a root that lists none yet (a vault
    made before that key, until ``trust rotate``) gives the active signing key's
    Ed25519 half, which signed its artifacts. With KEYID: the OMS key or signing
    key whose key id starts with it (for artifacts signed by an older version).
    """
    from weightvault.cli._common import emit
    from weightvault.errors import NotFoundError

    prefix = args.signing_key_pem
    found: list[tuple[str, str, str, bytes]] = [
        (e.ref, e.keyid, "ECDSA-P256", e.public_pem)
        for e in root.oms
        if e.public_pem is not None
        and (e.keyid.startswith(prefix) if prefix else e.state == "active")
    ]
    if not found and (prefix or not root.oms):
        found = [
            (e.ref, e.keyid, "Ed25519", e.public_key.ed25519_public_pem())
            for e in root.signing
            if e.public_key is not None
            and (e.keyid.startswith(prefix) if prefix else e.state == "active")
        ]
    if len(found) != 1:
        what = f"key id {prefix!r}" if prefix else "the active state"
        raise NotFoundError(f"trust root v{root.version} lists no single OMS key by {what}")
    ref, keyid, algorithm, raw = found[0]
    pem = raw.decode("ascii")
    emit(
        args,
        pem.rstrip("\n"),
        {"key": ref, "keyid": keyid, "algorithm": algorithm, "public_key_pem": pem},
    )
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.trust import rotate_root

    change = rotate_root(
        open_vault(args),
        key_files=[Path(p) for p in args.root_key],
        add_root_keys=args.add_root_keys,
        remove_root_keys=args.remove_root_key,
        threshold=args.threshold,
        log_keys=args.log_vkey,
        witness_keys=args.witness_vkey,
        remove_vkeys=args.remove_vkey,
        expires_days=args.expires_days,
        export=Path(args.export) if args.export else None,
    )
    previous = change.previous.version if change.previous else 0
    emit(
        args,
        f"published {describe(change.root)}, signed by {len(change.signed_by)} root key(s), "
        f"after v{previous}",
        change.to_dict(),
    )
    return 0


def _enrol(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.keys import parse_public_key
    from weightvault.lifecycle.trust import enrol_principal

    path = Path(args.key)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read public key {path} ({exc.strerror})") from None
    key = parse_public_key(data, str(path))
    change = enrol_principal(
        open_vault(args),
        args.name,
        key,
        args.role.split(","),
        key_files=[Path(p) for p in args.root_key],
    )
    emit(
        args,
        f"enrolled {args.name} (key {key.keyid[:16]}) as {args.role}: "
        f"published {describe(change.root)}",
        change.to_dict(),
    )
    return 0


def _revoke_principal(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.trust import revoke_principal

    change = revoke_principal(
        open_vault(args), args.name, key_files=[Path(p) for p in args.root_key]
    )
    emit(args, f"revoked {args.name}: published {describe(change.root)}", change.to_dict())
    return 0


def _pin(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit, open_vault, settings_for
    from weightvault.lifecycle.trust import current_root, load_root_file, pin_root

    if bool(args.file) == bool(args.from_store):
        raise UsageError("trust pin: give a root FILE or --from-store, not both")
    if args.from_store:
        vault = open_vault(args)
        root = current_root(vault)
        if root is None:
            raise InvalidInputError("the vault has no signed trust root to pin")
        home, now = vault.settings.home, vault.clock()
    else:
        from weightvault._time import utcnow

        root = load_root_file(Path(args.file))
        home, now = settings_for(args).home, utcnow()
    old = pin_root(home, root, now)
    replaced = f" (replacing v{old.version})" if old is not None else ""
    emit(
        args,
        f"pinned {describe(root)}{replaced}",
        {**root.summary(), "replaced_version": old.version if old else None},
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    from weightvault._fs import write_private
    from weightvault.cli._common import emit, open_vault
    from weightvault.lifecycle.trust import current_root

    root = current_root(open_vault(args))
    if root is None:
        raise InvalidInputError("the vault has no signed trust root to export")
    out = Path(args.file)
    write_private(out, root.to_bytes())
    out.chmod(0o644)
    emit(args, f"wrote {describe(root)} to {out}", {**root.summary(), "file": str(out)})
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``trust`` command group."""
    from weightvault.lifecycle.root_defaults import (
        DEFAULT_EXPIRES_DAYS,
        DEFAULT_ROOT_KEYS,
        DEFAULT_THRESHOLD,
    )

    trust = sub.add_parser("trust", help="the signed trust root", parents=[common])
    actions = trust.add_subparsers(dest="trust_action", metavar="ACTION", parser_class=type(trust))
    actions.required = True

    def signing_root_keys(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--root-key",
            action="append",
            default=[],
            metavar="FILE",
            help="a root key file that signs (repeatable; default: the keystore's)",
        )

    def roles(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--log-vkey", action="append", default=[], help="a transparency-log note vkey"
        )
        p.add_argument(
            "--witness-vkey", action="append", default=[], help="a required witness's vkey"
        )
        p.add_argument(
            "--expires-days",
            type=int,
            default=DEFAULT_EXPIRES_DAYS,
            help="days until the new version expires",
        )

    p = actions.add_parser(
        "init", help="make the root keys and publish version 1", parents=[common]
    )
    p.add_argument("--keys", type=int, default=DEFAULT_ROOT_KEYS, help="root keys to make")
    p.add_argument(
        "--threshold",
        type=int,
        default=DEFAULT_THRESHOLD,
        help="root-key signatures a new version needs",
    )
    p.add_argument("--export", metavar="DIR", help="write root keys to 0600 files, not keystore")
    roles(p)
    p.set_defaults(func=_init)
    p = actions.add_parser(
        "show", help="the current root: versions, keys, states", parents=[common]
    )
    p.add_argument(
        "--signing-key-pem",
        nargs="?",
        const="",
        default=None,
        metavar="KEYID",
        help="print the public key (PEM) that verifies model.sig with `model_signing verify "
        "key`: the active ECDSA P-256 OMS key, or the key whose key id starts with KEYID",
    )
    p.set_defaults(func=_show)
    p = actions.add_parser(
        "rotate", help="publish the next version (old and new thresholds sign)", parents=[common]
    )
    signing_root_keys(p)
    p.add_argument("--add-root-keys", type=int, default=0, metavar="N", help="make N new root keys")
    p.add_argument(
        "--remove-root-key",
        action="append",
        default=[],
        metavar="LABEL",
        help="a root key to drop, by label (repeatable)",
    )
    p.add_argument(
        "--threshold", type=int, default=None, help="the new threshold (default: unchanged)"
    )
    p.add_argument(
        "--remove-vkey",
        action="append",
        default=[],
        metavar="NAME",
        help="a log or witness vkey to drop, by name (repeatable)",
    )
    p.add_argument("--export", metavar="DIR", help="write new root keys to 0600 files")
    roles(p)
    p.set_defaults(func=_rotate)
    from weightvault.config import ROLES

    p = actions.add_parser(
        "enrol", help="enrol a principal's public key with roles (a new version)", parents=[common]
    )
    p.add_argument("name", help="the principal's name")
    p.add_argument("--key", required=True, metavar="PUBFILE", help="`identity export` output")
    p.add_argument("--role", required=True, metavar="ROLE[,ROLE]", help=", ".join(ROLES))
    signing_root_keys(p)
    p.set_defaults(func=_enrol)
    p = actions.add_parser(
        "revoke-principal", help="remove a principal (a new version)", parents=[common]
    )
    p.add_argument("name", help="the principal's name")
    signing_root_keys(p)
    p.set_defaults(func=_revoke_principal)
    p = actions.add_parser(
        "pin", help="pin the root this host trusts for offline verification", parents=[common]
    )
    p.add_argument("file", nargs="?", help="a root file got out of band")
    p.add_argument(
        "--from-store",
        action="store_true",
        help="pin the root the store holds (trust on first use)",
    )
    p.set_defaults(func=_pin)
    p = actions.add_parser("export", help="write the current root document", parents=[common])
    p.add_argument("file", help="where to write it")
    p.set_defaults(func=_export)
