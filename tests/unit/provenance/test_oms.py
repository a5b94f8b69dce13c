"""OMS signatures built from upload digests verify with model_signing's own verifier.

Each test runs for the vault's ECDSA P-256 OMS key (model_signing's own EC signer
and verifier, and the stock `model_signing verify key` command) and for the
Ed25519 half of the hybrid signing key (signatures made before the vault had an
OMS key, checked by :class:`Ed25519Verifier`)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from model_signing import hashing as oms_hashing
from model_signing._signing import sign_ec_key
from model_signing._signing import sign_sigstore_pb as sigstore_pb

from tests.conftest import make_tree
from weightvault._time import utcnow
from weightvault.crypto.signing import HybridSigningKey
from weightvault.errors import IntegrityError, InvalidInputError
from weightvault.provenance import (
    OMS_KEY_ID,
    OMS_SIGNATURE_NAME,
    Ed25519Verifier,
    OmsEntry,
    OmsSigningKey,
    oms_verify_pem,
    sign_oms,
    verify_model,
    verify_oms_signature,
)
from weightvault.provenance._oms import parse_oms_entry

KEY = HybridSigningKey.generate("vault-signing", 1)
ED25519_PEM = KEY.public_key().ed25519_public_pem()
OMS = OmsSigningKey(OMS_KEY_ID, 1, OmsSigningKey.generate_material())
STOCK_CLI = Path(sys.executable).parent / "model_signing"


def digests(root: Path) -> list[tuple[str, str]]:
    return [
        (p.relative_to(root).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]


@pytest.fixture(params=["p256", "ed25519"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def pem(kind: str) -> bytes:
    return OMS.public_pem() if kind == "p256" else ED25519_PEM


@pytest.fixture
def model(tmp_path: Path, kind: str) -> Path:
    root = make_tree(
        tmp_path / "tiny",
        {
            "model.safetensors": b"\x00" * 4096,
            "config.json": b'{"layers": 2}',
            "tokenizer/vocab.txt": b"a\nb\n",
            ".gitattributes": b"*.safetensors filter=lfs\n",
        },
    )
    key = OMS if kind == "p256" else KEY
    (root / OMS_SIGNATURE_NAME).write_bytes(sign_oms(key, "tiny", digests(root)))
    return root


def test_the_signature_from_digests_is_what_model_signing_verifies(
    model: Path, kind: str, pem: bytes
) -> None:
    verify_model(model, model / OMS_SIGNATURE_NAME, pem)
    # The library's own hashing of the directory gives the manifest that was signed.
    signature = sigstore_pb.Signature.read(model / OMS_SIGNATURE_NAME)
    if kind == "p256":
        signed = sign_ec_key.Verifier(write_pem(model.parent, pem)).verify(signature)
    else:
        signed = Ed25519Verifier(pem).verify(signature)
    library = oms_hashing.Config().set_ignored_paths(paths=[OMS_SIGNATURE_NAME])
    assert signed == library.hash(model)
    names = [d.identifier for d in signed.resource_descriptors()]
    assert names == ["config.json", "model.safetensors", "tokenizer/vocab.txt"]
    assert signed.serialization_type["method"] == "files"
    assert signed.serialization_type["hash_type"] == "sha256"


def write_pem(where: Path, pem: bytes) -> Path:
    path = where / "oms.pub"
    path.write_bytes(pem)
    return path


def stock_verify(model: Path, pem: bytes) -> subprocess.CompletedProcess[str]:
    """The stock `model_signing verify key` command of model-signing, as a user runs it."""
    key = write_pem(model.parent, pem)
    return subprocess.run(
        [
            *(str(STOCK_CLI), "verify", "key", "--signature", str(model / OMS_SIGNATURE_NAME)),
            *("--public_key", str(key), str(model)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_stock_cli_verifies_the_p256_signature_and_not_a_changed_byte(tmp_path: Path) -> None:
    model = make_tree(tmp_path / "m", {"model.safetensors": b"\x01" * 2048, "a/b.json": b"{}"})
    (model / OMS_SIGNATURE_NAME).write_bytes(sign_oms(OMS, "m", digests(model)))
    proc = stock_verify(model, OMS.public_pem())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Verification succeeded" in proc.stdout
    data = bytearray((model / "model.safetensors").read_bytes())
    data[1000] ^= 0x01
    (model / "model.safetensors").write_bytes(bytes(data))
    proc = stock_verify(model, OMS.public_pem())
    assert proc.returncode != 0
    assert "Hash mismatch for 'model.safetensors'" in proc.stdout + proc.stderr
    # Nor does the Ed25519 half verify with the stock command: why the vault has the key.
    (model / OMS_SIGNATURE_NAME).write_bytes(sign_oms(KEY, "m", digests(model)))
    proc = stock_verify(model, ED25519_PEM)
    assert proc.returncode != 0


def test_the_key_never_shows_its_material_and_is_p256() -> None:
    material = OmsSigningKey.generate_material()
    key = OmsSigningKey(OMS_KEY_ID, 3, material)
    assert material.hex() not in repr(key)
    assert "PRIVATE" not in repr(key)
    assert key.public_pem().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert key.keyid == hashlib.sha256(key.public_pem()).hexdigest()
    with pytest.raises(InvalidInputError, match="not a PKCS#8") as caught:
        OmsSigningKey(OMS_KEY_ID, 1, b"\x00" * 32)
    assert "00000000" not in str(caught.value)


def test_a_root_entry_round_trips_and_a_mismatched_one_is_refused() -> None:
    entry = OmsEntry(OMS_KEY_ID, 1, OMS.keyid, "active", None, OMS.public_pem())
    assert parse_oms_entry(entry.to_dict(), 0) == entry
    other = OmsSigningKey(OMS_KEY_ID, 2, OmsSigningKey.generate_material())
    swapped = {**entry.to_dict(), "public_key": other.public_pem().decode()}
    with pytest.raises(ValueError, match="does not match its public key"):
        parse_oms_entry(swapped, 0)
    ed = {**entry.to_dict(), "public_key": ED25519_PEM.decode()}
    with pytest.raises(ValueError, match="not an ECDSA P-256 key"):
        parse_oms_entry(ed, 0)
    with pytest.raises(ValueError, match="compromise time"):
        parse_oms_entry({**entry.to_dict(), "state": "compromised"}, 0)


def test_the_key_a_put_names_must_be_trusted_when_it_was_logged() -> None:
    now = utcnow()
    active = OmsEntry(OMS_KEY_ID, 1, OMS.keyid, "active", None, OMS.public_pem())
    hybrid = {KEY.keyid: KEY.public_key()}
    assert oms_verify_pem(OMS.keyid, now, hybrid, {}, [active], "t") == OMS.public_pem()
    # An older signature by the signing key's Ed25519 half still finds its key.
    assert oms_verify_pem(KEY.keyid, now, hybrid, {}, [active], "t") == ED25519_PEM
    burnt = OmsEntry(OMS_KEY_ID, 1, OMS.keyid, "compromised", now, OMS.public_pem())
    before = now - timedelta(seconds=1)
    assert oms_verify_pem(OMS.keyid, before, hybrid, {}, [burnt], "t") == OMS.public_pem()
    with pytest.raises(IntegrityError, match="not trusted: compromised since"):
        oms_verify_pem(OMS.keyid, now, hybrid, {}, [burnt], "t")
    with pytest.raises(IntegrityError, match="not trusted: compromised since"):
        oms_verify_pem(KEY.keyid, now, hybrid, {KEY.keyid: before}, [], "t")
    destroyed = OmsEntry(OMS_KEY_ID, 1, OMS.keyid, "destroyed", None, None)
    with pytest.raises(IntegrityError, match="not trusted"):
        oms_verify_pem(OMS.keyid, now, hybrid, {}, [destroyed], "t")
    with pytest.raises(IntegrityError, match="not trusted"):
        oms_verify_pem("ab" * 32, now, hybrid, {}, [active], "t")


def test_a_changed_added_or_removed_file_fails(model: Path, pem: bytes) -> None:
    PEM = pem  # noqa: N806
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


def test_another_key_or_an_edited_signature_fails(model: Path, kind: str, pem: bytes) -> None:
    PEM = pem  # noqa: N806
    if kind == "p256":
        other = OmsSigningKey(OMS_KEY_ID, 2, OmsSigningKey.generate_material()).public_pem()
    else:
        other = HybridSigningKey.generate("vault-signing", 2).public_key().ed25519_public_pem()
    with pytest.raises(ValueError, match=r"another public key|Key mismatch"):
        verify_model(model, model / OMS_SIGNATURE_NAME, other)
    doc = json.loads((model / OMS_SIGNATURE_NAME).read_text())
    sig = doc["dsseEnvelope"]["signatures"][0]["sig"]
    doc["dsseEnvelope"]["signatures"][0]["sig"] = ("B" if sig[0] == "A" else "A") + sig[1:]
    (model / OMS_SIGNATURE_NAME).write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="does not verify"):
        verify_model(model, model / OMS_SIGNATURE_NAME, PEM)


def test_the_vault_check_needs_exactly_the_manifest_files(model: Path, pem: bytes) -> None:
    PEM = pem  # noqa: N806
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
