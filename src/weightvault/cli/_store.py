"""`weightvault store credentials|policy ROLE`: hand out a store role's credential, print
its IAM policy; `weightvault store env [ROLE]`: the same credential as aws-cli/mc
environment; `weightvault dvc-remote REPO`: a DVC remote with the dvc credential
(docs/store-credentials.md, docs/dvc.md)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightvault.cli._common import emit
from weightvault.config import Settings
from weightvault.errors import (
    InvalidInputError,
    StoreRoleError,
    StoreUnavailableError,
    UsageError,
)

if TYPE_CHECKING:
    from weightvault.store import Credentials


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The role argument and the secret's destinations of ``store credentials``."""
    parser.add_argument(
        "role",
        nargs="?",
        help="store role (credentials, policy, env): admin, ingester, reader, ...; env: "
        f"default {ENV_DEFAULT_ROLE}",
    )
    parser.add_argument(
        "--secret-file",
        type=Path,
        help="credentials: write the role's endpoint, access key and secret key to this new "
        "file (0600); env: the export lines with the secret, to source",
    )
    parser.add_argument(
        "--show-secret",
        action="store_true",
        help="credentials, env: print the secret key on the terminal (never with --json)",
    )
    parser.add_argument(
        "--nodes",
        type=int,
        metavar="N",
        help="up: the embedded store on N volume servers (default 1, weed mini; N >= 2: "
        "a cluster of master, N volume servers, filer and S3, replication 001)",
    )


def nodes_asked(args: argparse.Namespace, settings: Settings) -> int | None:
    """``--nodes`` of ``store up`` (None: unchanged); UsageError elsewhere or below 1."""
    nodes: int | None = getattr(args, "nodes", None)
    if nodes is None:
        return None
    if args.action != "up":
        raise UsageError(f"--nodes is for `store up`, not `store {args.action}`")
    if nodes < 1:
        raise UsageError(f"--nodes must be 1 or more volume servers, not {nodes}")
    if not settings.store.embedded:
        raise UsageError("--nodes is for the embedded store; this vault uses an external one")
    return nodes


ENV_DEFAULT_ROLE = "reader"


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``store credentials ROLE``, ``store policy ROLE`` or ``store env [ROLE]``."""
    from weightvault.store import role_named

    if args.action == "env":
        return _env(args, settings, role_named(args.role or ENV_DEFAULT_ROLE).name)
    if not args.role:
        raise UsageError(f"store {args.action} needs a ROLE")
    role = role_named(args.role)
    if args.action == "policy":
        from weightvault.store import iam_policy

        print(json.dumps(iam_policy(role, settings), indent=2))
        return 0
    return _credentials(args, settings, role.name)


def _role_credential(
    args: argparse.Namespace, settings: Settings, role: str
) -> tuple[Credentials, str]:
    """The embedded store's credential of ``role`` (registered as a secret) and its
    host:port ('' when neither running nor on a fixed port)."""
    from weightvault.logs import register_secret
    from weightvault.store import EmbeddedStore

    if args.show_secret and args.json:
        raise UsageError("--show-secret prints the secret for a person, never into --json output")
    if not settings.store.embedded:
        raise StoreRoleError(
            "an external store's credentials are made in that store: create a user with the "
            f"policy `weightvault store policy {role}` prints"
        )
    server = EmbeddedStore.of(settings)
    creds = server.credentials(role)
    register_secret(creds.secret_key)
    return creds, server.address()


def _env(args: argparse.Namespace, settings: Settings, role: str) -> int:
    """``store env``: export lines for aws-cli, boto3 and mc, the secret only when asked."""
    creds, endpoint = _role_credential(args, settings, role)
    if not endpoint:
        raise StoreUnavailableError(
            "the embedded store is not running and has no fixed port ([store] port = 0): "
            "run `weightvault store up`"
        )
    url = f"http://{endpoint}"
    lines = [
        f"export AWS_ENDPOINT_URL={shlex.quote(url)}",
        f"export AWS_REGION={shlex.quote(settings.store.region)}",
        f"export AWS_ACCESS_KEY_ID={shlex.quote(creds.access_key)}",
    ]
    secret = f"export AWS_SECRET_ACCESS_KEY={shlex.quote(creds.secret_key)}"
    mc = (
        'mc alias set weightvault "$AWS_ENDPOINT_URL" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"'
    )
    data: dict[str, object] = {
        "role": role,
        "endpoint_url": url,
        "region": settings.store.region,
        "access_key": creds.access_key,
    }
    if args.secret_file is not None:
        _write_new_private(args.secret_file, "\n".join([*lines, secret, ""]).encode())
        data["secret_file"] = str(args.secret_file)
        lines = [f". {shlex.quote(str(args.secret_file))}  # the {role} credential, 0600"]
    elif args.show_secret:
        lines.append(secret)
    else:
        lines.append(
            "# AWS_SECRET_ACCESS_KEY not shown: --secret-file PATH writes these lines with it "
            "(0600, then source it), --show-secret prints it"
        )
    lines.append(f"# then: {mc}")
    emit(args, "\n".join(lines), data)
    return 0


def _credentials(args: argparse.Namespace, settings: Settings, role: str) -> int:
    creds, endpoint = _role_credential(args, settings, role)
    endpoint = endpoint or "(store not running)"
    data: dict[str, object] = {"role": role, "endpoint": endpoint, "access_key": creds.access_key}
    lines = [f"role        {role}", f"endpoint    {endpoint}", f"access key  {creds.access_key}"]
    if args.secret_file is not None:
        _write_new_private(
            args.secret_file,
            json.dumps({**data, "secret_key": creds.secret_key}, indent=2).encode() + b"\n",
        )
        data["secret_file"] = str(args.secret_file)
        lines.append(f"secret key  written to {args.secret_file} (0600)")
    elif args.show_secret:
        lines.append(f"secret key  {creds.secret_key}")
    else:
        lines.append("secret key  not shown: --secret-file PATH writes it (0600), --show-secret")
    emit(args, "\n".join(lines), data)
    return 0


def _write_new_private(path: Path, data: bytes) -> None:
    """Create ``path`` 0600 with ``data``; an existing file or link is never written through."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise InvalidInputError(f"{path} exists: the secret goes only to a new file") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(data)


def _dvc_remote(args: argparse.Namespace) -> int:
    from weightvault.cli._common import settings_for
    from weightvault.logs import register_secret
    from weightvault.store import configure_dvc_remote, dvc_remote

    repo = Path(args.repo)
    if not (repo / ".dvc").is_dir():  # before any credential is looked up
        what = "does not exist" if not repo.exists() else "is not a DVC repository (no .dvc/)"
        raise InvalidInputError(f"{repo} {what}: run `dvc init` in a repository")
    remote = dvc_remote(settings_for(args))
    register_secret(remote.secret_key)
    written = configure_dvc_remote(repo, remote, name=args.name)
    emit(
        args,
        f"DVC remote {args.name!r} -> {remote.url} at {remote.endpoint_url} with the dvc "
        f"credential {remote.access_key} (secret in {written}, 0600)",
        {
            "remote": args.name,
            "url": remote.url,
            "endpoint": remote.endpoint_url,
            "access_key": remote.access_key,
            "config": str(written),
        },
    )
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``dvc-remote``."""
    p = sub.add_parser(
        "dvc-remote",
        parents=[common],
        help="point a DVC repo's default remote at the vault's DVC bucket (dvc credential)",
    )
    p.add_argument("repo", help="the DVC repository (a folder with .dvc/)")
    p.add_argument("--name", default="vault", help="remote name (default: vault)")
    p.set_defaults(func=_dvc_remote)
