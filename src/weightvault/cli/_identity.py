"""`weightvault identity create|show|list|export|add-kem`: a principal's own key, kept by
that person.

Identities live under ``WEIGHTVAULT_IDENTITY_DIR`` (default
``$XDG_CONFIG_HOME/weightvault/identities``), one 0600 file each; ``--dir``
overrides. A passphrase comes from ``--passphrase-file FILE`` or
``--passphrase-fd N`` (its first line), or a terminal prompt with
``--passphrase``: never from the command line or the environment.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from weightvault.errors import IdentityError, UsageError


def _dir(args: argparse.Namespace) -> Path | None:
    return Path(args.dir) if args.dir else None


def _passphrase(args: argparse.Namespace) -> bytes | None:
    from weightvault.keys import read_passphrase_file

    given = [bool(args.passphrase_file), args.passphrase_fd is not None, args.passphrase]
    if sum(given) > 1:
        raise UsageError("give one of --passphrase-file, --passphrase-fd, --passphrase")
    if args.passphrase_file:
        return read_passphrase_file(Path(args.passphrase_file))
    if args.passphrase_fd is not None:
        with os.fdopen(args.passphrase_fd, "rb", closefd=False) as fh:
            line = fh.readline(4096).rstrip(b"\r\n")
        if not line:
            raise IdentityError(f"no passphrase on file descriptor {args.passphrase_fd}")
        return line
    if not args.passphrase:
        return None
    import getpass

    first = getpass.getpass("passphrase for the new identity: ").encode()
    if first != getpass.getpass("the same passphrase again: ").encode():
        raise IdentityError("the two passphrases differ: nothing created")
    return first


def _create(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit
    from weightvault.keys import create_identity

    made = create_identity(args.name, directory=_dir(args), passphrase=_passphrase(args))
    data = made.to_dict()
    emit(
        args,
        f"created identity {made.name} at {made.path} ({made.protection})\n"
        f"  keyid {made.keyid}\n  fingerprint {data['fingerprint']}\n"
        f"give `weightvault identity export {made.name}` to a key-admin to be enrolled",
        data,
    )
    return 0


def _find(args: argparse.Namespace) -> Any:
    from weightvault.keys import default_identity, identity_path, read_public

    return read_public(identity_path(args.name or default_identity(), _dir(args)))


def _show(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit

    found = _find(args)
    data = found.to_dict()
    emit(
        args,
        f"identity {found.name} ({found.protection}) at {found.path}\n"
        f"  keyid {found.keyid}\n  fingerprint {data['fingerprint']}",
        data,
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit_table
    from weightvault.keys import fingerprint, list_identities

    found = list_identities(_dir(args))
    rows = [[p.name, fingerprint(p.public_key), p.protection, str(p.path)] for p in found]
    data = [{k: v for k, v in p.to_dict().items() if k != "public_key"} for p in found]
    emit_table(
        args, ("name", "fingerprint", "protection", "path"), rows, data, empty="no identities"
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    from weightvault._json import canonical_json
    from weightvault.keys import public_line

    found = _find(args)
    if args.line and args.recipient:
        raise UsageError("give one of --line, --recipient")
    if args.recipient:
        text = canonical_json(found.recipient()).decode()
    elif args.line:
        text = public_line(found.name, found.public_key)
    else:
        text = canonical_json(found.public_key.to_dict()).decode()
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"wrote the public key of {found.name} to {args.out}")
    else:
        print(text)
    return 0


def _add_kem(args: argparse.Namespace) -> int:
    from weightvault.cli._common import emit
    from weightvault.keys import (
        add_kem_key,
        default_identity,
        default_passphrase,
        identity_path,
        read_passphrase_file,
    )

    path = identity_path(args.name or default_identity(), _dir(args))
    passphrase = default_passphrase()
    if args.passphrase_file:
        secret = read_passphrase_file(Path(args.passphrase_file))
        passphrase = lambda _name: secret  # noqa: E731 - the Passphrase callable
    made = add_kem_key(path, passphrase)
    data = made.to_dict()
    emit(
        args,
        f"identity {made.name} can now receive grants (KEM key {data['kem_fingerprint'][:16]})",
        data,
    )
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``identity`` command group."""
    identity = sub.add_parser("identity", help="your own signing identity", parents=[common])
    actions = identity.add_subparsers(
        dest="identity_action", metavar="ACTION", parser_class=type(identity)
    )
    actions.required = True

    def where(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dir", help="identity directory (default WEIGHTVAULT_IDENTITY_DIR)")

    p = actions.add_parser("create", help="make a new hybrid key pair", parents=[common])
    p.add_argument("name", help="the identity's name (its key file is NAME.key)")
    p.add_argument("--passphrase", action="store_true", help="protect it (asked on a terminal)")
    p.add_argument("--passphrase-file", metavar="FILE", help="protect it: first line of FILE")
    p.add_argument("--passphrase-fd", type=int, metavar="N", help="protect it: read from fd N")
    where(p)
    p.set_defaults(func=_create)
    for name, func, text in (
        ("show", _show, "name, keyid and fingerprint of an identity"),
        ("export", _export, "print the public key, to be enrolled"),
    ):
        p = actions.add_parser(name, help=text, parents=[common])
        p.add_argument("name", nargs="?", help="default: the identity you act as")
        where(p)
        if name == "export":
            p.add_argument("--out", metavar="FILE", help="write it to FILE")
            p.add_argument("--line", action="store_true", help="the one-line form")
            p.add_argument(
                "--recipient",
                action="store_true",
                help="signing and KEM public keys: what `weightvault grant --to` takes",
            )
        p.set_defaults(func=func)
    p = actions.add_parser(
        "add-kem", help="give an older identity the KEM key grants need", parents=[common]
    )
    p.add_argument("name", nargs="?", help="default: the identity you act as")
    p.add_argument("--passphrase-file", metavar="FILE", help="its passphrase: first line of FILE")
    where(p)
    p.set_defaults(func=_add_kem)
    p = actions.add_parser("list", help="your identities", parents=[common])
    where(p)
    p.set_defaults(func=_list)
