"""Provenance.

Capture (git, DVC, environment), in-toto/SLSA statements, signing and verifying them, the trust
root, attestation chains.
"""

from weightvault.provenance._capture import Provenance, capture_provenance
from weightvault.provenance._chain import (
    Attestation,
    append_attestation,
    attestation_keys,
    find_attestation,
    verify_attestations,
    verify_chain,
)
from weightvault.provenance._intoto import parse_statement
from weightvault.provenance._statements import (
    SIGNING_KEY_ID,
    provenance_document,
    rotate_signing_key,
    sign_manifest,
    signing_key,
    trust_root,
    trusted_keys,
    verify_statement,
)

__all__ = [
    "SIGNING_KEY_ID",
    "Attestation",
    "Provenance",
    "append_attestation",
    "attestation_keys",
    "capture_provenance",
    "find_attestation",
    "parse_statement",
    "provenance_document",
    "rotate_signing_key",
    "sign_manifest",
    "signing_key",
    "trust_root",
    "trusted_keys",
    "verify_attestations",
    "verify_chain",
    "verify_statement",
]
