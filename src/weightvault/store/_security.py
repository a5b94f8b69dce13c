"""SeaweedFS's own security for the embedded store: mutual TLS everywhere, signed tokens.

Every port ``weed mini`` opens is on 127.0.0.1, which every local user can reach,
and only the S3 gateway checks credentials. So before each start the store gets a
``security.toml`` (read through ``weed -config_dir``) with fresh keys:

- ``grpc.*``: every gRPC server (master, volume, filer, S3, admin, worker, ...)
  wants a client certificate issued by a CA made for this start alone, whose key
  is never stored: no other certificate can ever be issued under it;
- ``https.master|volume|filer|admin``: their HTTP APIs speak only TLS and want such
  a client certificate too (``https.client`` is what weed's own parts present).
  This matters most for the master, whose ``/dir/assign`` and ``/dir/lookup``
  hand out signed tokens and whose ``/col/delete`` drops a whole bucket's volumes:
  its guard has only an IP white list, useless when every user is 127.0.0.1;
- ``jwt.signing`` / ``jwt.signing.read``: the volume server takes a write or a
  read only with a token the master signed for that file id;
- ``jwt.filer_signing`` / ``jwt.filer_signing.read``: the filer's HTTP API takes
  writes and reads only with a token the S3 gateway signed;
- the volume UI and the filer's directory metadata are off.

The keys and certificates live in ``<store>/security`` (0700, files 0600) and are
never logged. ``tests/security/test_store_lockdown.py`` shows, as another user,
what each port refuses.
"""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

from weightvault._fs import write_private
from weightvault.crypto.tls import issue_mtls

__all__ = ["GRPC_COMPONENTS", "SECURITY_FILE", "write_security_config"]

SECURITY_FILE = "security.toml"
# Every [grpc.<component>] section weed 4.48 reads, and the client every tool uses.
GRPC_COMPONENTS = (
    "master",
    "volume",
    "filer",
    "s3",
    "admin",
    "worker",
    "msg_broker",
    "msg_agent",
    "mq",
    "client",
)
_JWT_SECTIONS = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
_TOKEN_SECONDS = 10


def _toml_value(value: str | bool | int) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    # A JSON string with ASCII escapes is a valid TOML basic string.
    return json.dumps(value, ensure_ascii=True)


def _render(sections: dict[str, dict[str, str | bool | int]]) -> str:
    lines = ["# Written by weightvault before each start of the embedded store. Do not edit."]
    for name, values in sections.items():
        lines.append(f"\n[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"


def write_security_config(config_dir: Path) -> Path:
    """Write ``security.toml`` and a fresh CA and certificates under ``config_dir``.

    Every call makes new keys: the server that reads them is the one about to
    start, and nothing stored depends on them. Returns the path of the file.
    """
    config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    config_dir.chmod(0o700)
    tls_dir = config_dir / "tls"
    if tls_dir.exists():
        shutil.rmtree(tls_dir)
    tls = issue_mtls(GRPC_COMPONENTS, name=f"weightvault store {secrets.token_hex(4)}")
    ca_path = tls_dir / "ca.pem"
    write_private(ca_path, tls.ca_pem)
    sections: dict[str, dict[str, str | bool | int]] = {}
    for name in _JWT_SECTIONS:
        sections[name] = {
            "key": secrets.token_urlsafe(32),
            "expires_after_seconds": _TOKEN_SECONDS,
        }
    sections["access"] = {"ui": False}
    sections["filer.expose_directory_metadata"] = {"enabled": False}
    sections["grpc"] = {"ca": str(ca_path)}
    for component, cert in tls.components.items():
        cert_path, key_path = tls_dir / f"{component}.pem", tls_dir / f"{component}.key"
        write_private(cert_path, cert.cert_pem)
        write_private(key_path, cert.key_pem)
        sections[f"grpc.{component}"] = {"cert": str(cert_path), "key": str(key_path)}
    client = sections["grpc.client"]
    sections["https.client"] = {
        "enabled": True,
        "cert": client["cert"],
        "key": client["key"],
        "ca": str(ca_path),
    }
    for component in ("master", "volume", "filer", "admin"):
        own = sections[f"grpc.{component}"]
        sections[f"https.{component}"] = {
            "cert": own["cert"],
            "key": own["key"],
            "ca": str(ca_path),
        }
    path = config_dir / SECURITY_FILE
    write_private(path, _render(sections).encode())
    return path
