"""Point a DVC repository's remote at the vault's DVC bucket, with the dvc role's credential.

The remote is written with DVC's own config API into ``.dvc/config.local`` (never
the committed ``.dvc/config``), which is 0600 before the secret is written: the
secret never passes through a command line that other local users could read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from weightvault.errors import InvalidInputError
from weightvault.store._objects import DvcRemote

__all__ = ["configure_dvc_remote"]

_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def _private_file(path: Path) -> None:
    """``path`` exists as a regular 0600 file of ours (a link is refused, never followed)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise InvalidInputError(f"cannot open {path}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidInputError(f"{path} is not a regular file")
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def configure_dvc_remote(repo: Path, remote: DvcRemote, *, name: str = "vault") -> Path:
    """Make ``name`` the repo's default DVC remote on ``remote``; returns the file written.

    ``remote`` is :func:`weightvault.store.dvc_remote`. InvalidInputError when ``repo``
    is no DVC repository or the name is unusable.
    """
    from dvc.config import Config, ConfigError

    if not name or not set(name) <= _NAME_OK:
        raise InvalidInputError(f"remote name {name!r}: use lower-case letters, digits, - and _")
    dvc_dir = repo / ".dvc"
    if not dvc_dir.is_dir():
        raise InvalidInputError(f"{repo} is not a DVC repository (no .dvc/): run `dvc init`")
    local = dvc_dir / "config.local"
    _private_file(local)
    try:
        config = Config(dvc_dir=str(dvc_dir))
        with config.edit("local") as conf:
            # No endpoint: a local directory remote (the DR drill's scratch copy), no credential.
            conf["remote"][name] = (
                {
                    "url": remote.url,
                    "endpointurl": remote.endpoint_url,
                    "access_key_id": remote.access_key,
                    "secret_access_key": remote.secret_key,
                }
                if remote.endpoint_url
                else {"url": remote.url}
            )
            conf["core"]["remote"] = name
    except ConfigError as exc:
        shown = str(exc).replace(remote.secret_key, "<redacted>") if remote.secret_key else str(exc)
        raise InvalidInputError(f"DVC refused the remote for {repo}: {shown}") from None
    _private_file(local)
    return local
