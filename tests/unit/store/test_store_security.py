"""The embedded store's security.toml: fresh keys, mutual TLS for every part, private files."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from weightvault.store._security import GRPC_COMPONENTS, write_security_config


def _config(path: Path) -> dict[str, dict[str, object]]:
    return tomllib.loads(path.read_text())


def _jwt_keys(config: dict) -> list[str]:  # type: ignore[type-arg]
    jwt = config["jwt"]
    return [
        jwt["signing"]["key"],
        jwt["signing"]["read"]["key"],
        jwt["filer_signing"]["key"],
        jwt["filer_signing"]["read"]["key"],
    ]


def test_every_part_gets_a_certificate_of_a_ca_whose_key_is_not_kept(tmp_path: Path) -> None:
    config = _config(write_security_config(tmp_path / "security"))
    ca = x509.load_pem_x509_certificate(Path(config["grpc"]["ca"]).read_bytes())
    ca_public = ca.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for component in GRPC_COMPONENTS:
        section = config["grpc"][component]
        cert = x509.load_pem_x509_certificate(Path(section["cert"]).read_bytes())
        cert.verify_directly_issued_by(ca)
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.CLIENT_AUTH in usages
        assert ExtendedKeyUsageOID.SERVER_AUTH in usages
        key = serialization.load_pem_private_key(Path(section["key"]).read_bytes(), None)
        assert key.public_key() == cert.public_key()
    for key_file in (tmp_path / "security" / "tls").glob("*.key"):
        key = serialization.load_pem_private_key(key_file.read_bytes(), None)
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert spki != ca_public, f"{key_file.name} is the CA's key"
    # The HTTP APIs want TLS with a client certificate too, and weed's own parts present one.
    for component in ("master", "volume", "filer", "admin"):
        assert config["https"][component]["ca"] == config["grpc"]["ca"]
    assert config["https"]["client"]["enabled"] is True
    assert config["access"]["ui"] is False
    assert config["filer"]["expose_directory_metadata"]["enabled"] is False


def test_each_write_makes_new_keys_in_private_files(tmp_path: Path) -> None:
    folder = tmp_path / "security"
    first = _config(write_security_config(folder))
    first_ca = Path(first["grpc"]["ca"]).read_bytes()
    second = _config(write_security_config(folder))
    keys = _jwt_keys(second)
    assert len(set(keys)) == 4
    assert set(keys).isdisjoint(_jwt_keys(first))
    assert Path(second["grpc"]["ca"]).read_bytes() != first_ca
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in [folder / "security.toml", *(folder / "tls").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((folder / "tls").stat().st_mode) == 0o700
