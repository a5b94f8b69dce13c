"""Point a DVC repository's remote at the vault's DVC bucket, with the dvc role's credential.

The remote is written with DVC's own config API into ``.dvc/config.local`` (never
the committed ``.dvc/config``). DVC edits a private copy (0600, beside it, so relative
paths mean the same), which then replaces ``config.local`` atomically: the file is
never readable by others, never half written, and the secret never passes through a
command line that other local users could read. Running it again updates the remote.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from functools import cached_property
from pathlib import Path
from typing import Any

from weightvault._fs import write_private
from weightvault.errors import InvalidInputError
from weightvault.store._objects import DvcRemote

__all__ = ["configure_dvc_remote"]

_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def _read_own(path: Path) -> bytes:
    """``path``'s bytes ('' when missing); a link or a non-regular file is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise InvalidInputError(f"cannot open {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise InvalidInputError(f"{path} is not a regular file")
        return fh.read()


def _staged_copy(local: Path) -> Path:
    """A new 0600 file beside ``local`` holding its current content."""
    staged = local.with_name(f".{local.name}.{secrets.token_hex(4)}.tmp")
    data = _read_own(local)
    try:
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise InvalidInputError(f"cannot write in {local.parent}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return staged


def _config_editing(staged: Path, dvc_dir: Path) -> Any:
    """DVC's Config of ``dvc_dir`` whose ``local`` level is the ``staged`` file."""
    from dvc.config import Config

    class _StagedConfig(Config):  # type: ignore[misc]
        @cached_property
        def files(self) -> dict[str, str]:
            return {**super().files, "local": str(staged)}

    return _StagedConfig(dvc_dir=str(dvc_dir))


def configure_dvc_remote(repo: Path, remote: DvcRemote, *, name: str = "vault") -> Path:
    """Make ``name`` the repo's default DVC remote on ``remote``; returns the file written.

    ``remote`` is :func:`weightvault.store.dvc_remote`. A remote of that name is
    replaced, other settings of ``config.local`` are kept. InvalidInputError when
    ``repo`` is no DVC repository, the name is unusable or ``config.local`` is a link.
    """
    from dvc.config import ConfigError

    if not name or not set(name) <= _NAME_OK:
        raise InvalidInputError(f"remote name {name!r}: use lower-case letters, digits, - and _")
    dvc_dir = repo / ".dvc"
    if not dvc_dir.is_dir():
        raise InvalidInputError(f"{repo} is not a DVC repository (no .dvc/): run `dvc init`")
    local = dvc_dir / "config.local"
    staged = _staged_copy(local)
    try:
        config = _config_editing(staged, dvc_dir)
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
        write_private(local, _read_own(staged))
    except ConfigError as exc:
        shown = str(exc).replace(remote.secret_key, "<redacted>") if remote.secret_key else str(exc)
        raise InvalidInputError(f"DVC refused the remote for {repo}: {shown}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()
    return local
