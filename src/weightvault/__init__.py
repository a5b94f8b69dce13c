"""weightvault: an encrypted, provenance-first vault for AI model artifacts.

A training job stores what it made at its end::

    import weightvault

    vault = weightvault.open()
    art = vault.push("out/", name="digits-classifier", model_repo=".", run_id="run-42")
    vault.verify(art.id)
    vault.pull(art.id, "restored/")

Errors are :class:`VaultError` subclasses with a one-line message (see
:mod:`weightvault.errors`). The names below load on first use, so importing a
submodule such as :mod:`weightvault.crypto.chunked` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from weightvault.errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PolicyError,
    QuarantinedError,
    StoreUnavailableError,
    VaultError,
)

if TYPE_CHECKING:
    from weightvault._api import Artifact, Vault, VerifyReport
    from weightvault._api import open_vault as open

__all__ = [
    "Artifact",
    "IntegrityError",
    "InvalidInputError",
    "NotFoundError",
    "PolicyError",
    "QuarantinedError",
    "StoreUnavailableError",
    "Vault",
    "VaultError",
    "VerifyReport",
    "open",
]

_LAZY = {
    "Artifact": "Artifact",
    "Vault": "Vault",
    "VerifyReport": "VerifyReport",
    "open": "open_vault",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from weightvault import _api

        return getattr(_api, _LAZY[name])
    raise AttributeError(f"module 'weightvault' has no attribute {name!r}")
