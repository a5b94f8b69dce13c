"""Signed statements: in-toto Statement v1 in a DSSE envelope, signed with the vault's key.

One format for every piece of evidence the vault keeps besides the log itself
(validation reports, quarantine and release, key records, recovery
certificates; promotion attestations are the same statements, chained per
artifact by :mod:`weightvault.provenance._chain`). The predicate type is
``https://weightvault.dev/attestations/<kind>/v1``; the subject names what the
statement is about (an artifact's content digest, a key reference, a backup).

Signing and checking only: where a statement is stored and how the log binds
it is :mod:`weightvault.artifacts` (``write_statement``, ``trusted_statement``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from weightvault._json import canonical_json, parse_canonical
from weightvault.crypto import dsse
from weightvault.crypto.signing import HybridSigningKey
from weightvault.errors import IntegrityError, KeyStateError, StatementError
from weightvault.provenance._statements import SecretStore, signing_key
from weightvault.provenance._trust_root import TrustedKeys, check_signed_at

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_PREFIX = "https://weightvault.dev/attestations/"


def predicate_type(kind: str) -> str:
    """The predicate type URI of a statement kind."""
    return f"{PREDICATE_PREFIX}{kind}/v1"


def build_signed_statement(
    keys: SecretStore,
    *,
    kind: str,
    subject_name: str,
    subject_sha256: str,
    predicate: Mapping[str, Any],
    signer: HybridSigningKey | None = None,
) -> tuple[bytes, str]:
    """The canonical DSSE envelope bytes of a new statement, and its signer's ``key@vN``.

    Signed with the vault's signing key, or with ``signer`` (a principal's own key).
    """
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": subject_name, "digest": {"sha256": subject_sha256.removeprefix("sha256:")}}
        ],
        "predicateType": predicate_type(kind),
        "predicate": dict(predicate),
    }
    key = signer if signer is not None else signing_key(keys)
    envelope = dsse.sign_envelope(canonical_json(statement), dsse.IN_TOTO_PAYLOAD_TYPE, key)
    return canonical_json(envelope), f"{key.key_id}@v{key.version}"


def open_signed_statement(
    data: bytes,
    trusted: TrustedKeys,
    *,
    kind: str,
    signed_at: datetime | None,
    what: str,
) -> dict[str, Any]:
    """Verify a statement's signature (trusted keys, their compromise times) and type.

    ``signed_at`` is when the statement was signed (the time the log recorded
    it): a key compromised before then does not vouch for it. Returns the
    statement; StatementError names ``what`` and why it is not trusted.
    """
    try:
        envelope = parse_canonical(data, what)
        payload = dsse.verify_envelope(envelope, trusted)
        check_signed_at(trusted, envelope, signed_at, what)
        statement = parse_canonical(payload, f"{what} payload")
    except KeyStateError as exc:
        raise StatementError(f"{what} is not signed by a trusted key: {exc.message}") from None
    except IntegrityError as exc:
        raise StatementError(f"{what} is not signed by a trusted key: {exc.message}") from None
    if (
        statement.get("_type") != STATEMENT_TYPE
        or statement.get("predicateType") != predicate_type(kind)
        or not isinstance(statement.get("predicate"), dict)
        or not isinstance(statement.get("subject"), list)
        or len(statement["subject"]) != 1
    ):
        raise StatementError(f"{what} is not a {kind} statement")
    return statement
