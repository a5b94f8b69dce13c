"""OMS signatures built from upload digests verify with model_signing's own verifier."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from model_signing import hashing as oms_hashing
from model_signing._signing import sign_sigstore_pb as sigstore_pb

from tests.conftest import make_tree
from weightvault.crypto.signing import HybridSigningKey
from weightvault.errors import IntegrityError, InvalidInputError
from weightvault.provenance import (
    OMS_SIGNATURE_NAME,
    Ed25519Verifier,
    sign_oms,
    verify_model,
    verify_oms_signature,
)

KEY = HybridSigningKey.generate("vault-signing", 1)
PEM = KEY.public_key().ed25519_public_pem()


def digests(root: Path) -> list[tuple[str, str]]:
    return [
        (p.relative_to(root).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = make_tree(
        tmp_path / "tiny",
        {
            "model.safetensors": b"\x00" * 4096,
            "config.json": b'{"layers": 2}',
            "tokenizer/vocab.txt": b"a\nb\n",
            ".gitattributes": b"*.safetensors filter=lfs\n",
        },
    )
    (root / OMS_SIGNATURE_NAME).write_bytes(sign_oms(KEY, "tiny", digests(root)))
    return root


def test_the_signature_from_digests_is_what_model_signing_verifies(model: Path) -> None:
    verify_model(model, model / OMS_SIGNATURE_NAME, PEM)
    # The library's own hashing of the directory gives the manifest that was signed.
    signature = sigstore_pb.Signature.read(model / OMS_SIGNATURE_NAME)
    signed = Ed25519Verifier(PEM).verify(signature)
    library = oms_hashing.Config().set_ignored_paths(paths=[OMS_SIGNATURE_NAME])
    assert signed == library.hash(model)
    names = [d.identifier for d in signed.resource_descriptors()]
    assert names == ["config.json", "model.safetensors", "tokenizer/vocab.txt"]
    assert signed.serialization_type["method"] == "files"
    assert signed.serialization_type["hash_type"] == "sha256"


def test_a_changed_added_or_removed_file_fails(model: Path) -> None:
    (model / "config.json").write_bytes(b'{"layers": 3}')
    with pytest.raises(ValueError, match=r"Hash mismatch for 'config\.json'"):
        verify_model(model, model / OMS_SIGNATURE_NAME, PEM)
    (model / "config.json").write_bytes(b'{"layers": 2}')
    (model / "extra.bin").write_bytes(b"planted")
    with pytest.raises(ValueError, match="Extra files"):
        verify_model(model, model / OMS_SIGNATURE_NAME, PEM)
    (model / "extra.bin").unlink()
    (model / "tokenizer" / "vocab.txt").unlink()
    with pytest.raises(ValueError, match="Missing files"):
        verify_model(model, model / OMS_SIGNATURE_NAME, PEM)


def test_another_key_or_an_edited_signature_fails(model: Path) -> None:
    other = HybridSigningKey.generate("vault-signing", 2).public_key().ed25519_public_pem()
    with pytest.raises(ValueError, match="another public key"):
        verify_model(model, model / OMS_SIGNATURE_NAME, other)
    doc = json.loads((model / OMS_SIGNATURE_NAME).read_text())
    sig = doc["dsseEnvelope"]["signatures"][0]["sig"]
    doc["dsseEnvelope"]["signatures"][0]["sig"] = ("B" if sig[0] == "A" else "A") + sig[1:]
    (model / OMS_SIGNATURE_NAME).write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="does not verify"):
        verify_model(model, model / OMS_SIGNATURE_NAME, PEM)


def test_the_vault_check_needs_exactly_the_manifest_files(model: Path) -> None:
    data = (model / OMS_SIGNATURE_NAME).read_bytes()
    files = digests(model)
    verify_oms_signature(data, PEM, files, "t")
    with pytest.raises(IntegrityError, match="other files"):
        verify_oms_signature(data, PEM, [*files, ("more.bin", "00" * 32)], "t")
    with pytest.raises(IntegrityError, match="does not verify"):
        verify_oms_signature(b"[]", PEM, files, "t")


def test_the_ed25519_half_alone_signs_only_dsse_encodings() -> None:
    with pytest.raises(InvalidInputError):
        KEY.sign_dsse_ed25519(b"weightvault/v1/hybrid-signature\x00anything")
    # Nor is an OMS signature ever a valid classical half of a hybrid signature:
    # the halves sign a domain-separated message that never starts "DSSEv1 ".
    pae = b"DSSEv1 28 application/vnd.in-toto+json 2 {}"
    alone = KEY.sign_dsse_ed25519(pae)
    hybrid = KEY.sign(pae)
    assert alone != hybrid.ed25519
