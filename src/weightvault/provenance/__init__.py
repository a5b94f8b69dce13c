"""Provenance.

Capture (git, DVC, environment), in-toto/SLSA statements, signing and verifying them, the trust
root, attestation chains.
"""

from weightvault.config import ROLES
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
from weightvault.provenance._oms import (
    OMS_SIGNATURE_NAME,
    Ed25519Verifier,
    sign_oms,
    verify_model,
    verify_oms_signature,
)
from weightvault.provenance._signed import (
    build_signed_statement,
    open_signed_statement,
    predicate_type,
)
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
from weightvault.provenance._trust_root import (
    PRINCIPAL_TYPE,
    ROOT_KEY_PURPOSE,
    ROOT_TYPE,
    Principal,
    Root,
    SigningEntry,
    TrustedKeys,
    build_root,
    check_roles,
    check_signed_at,
    generate_root_key,
    load_root_key_file,
    parse_root,
    root_key_file,
    root_key_from_record,
    root_key_label,
    same_content,
    sign_root,
    signing_entries,
    verify_root,
    verify_successor,
    walk_chain,
)

__all__ = [
    "OMS_SIGNATURE_NAME",
    "PRINCIPAL_TYPE",
    "ROLES",
    "ROOT_KEY_PURPOSE",
    "ROOT_TYPE",
    "SIGNING_KEY_ID",
    "Attestation",
    "Ed25519Verifier",
    "Principal",
    "Provenance",
    "Root",
    "SigningEntry",
    "TrustedKeys",
    "append_attestation",
    "attestation_keys",
    "build_root",
    "build_signed_statement",
    "capture_provenance",
    "check_roles",
    "check_signed_at",
    "find_attestation",
    "generate_root_key",
    "load_root_key_file",
    "open_signed_statement",
    "parse_root",
    "parse_statement",
    "predicate_type",
    "provenance_document",
    "root_key_file",
    "root_key_from_record",
    "root_key_label",
    "rotate_signing_key",
    "same_content",
    "sign_manifest",
    "sign_oms",
    "sign_root",
    "signing_entries",
    "signing_key",
    "trust_root",
    "trusted_keys",
    "verify_attestations",
    "verify_chain",
    "verify_model",
    "verify_oms_signature",
    "verify_root",
    "verify_statement",
    "verify_successor",
    "walk_chain",
]
