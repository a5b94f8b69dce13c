"""Identities: a principal's own hybrid (Ed25519 + ML-DSA-65) key, kept by that person.

An identity file (``weightvault.identity/v1``, RFC 8785 JSON, written 0600 in a
0700 directory, by default ``$XDG_CONFIG_HOME/weightvault/identities/NAME.key``)::

    {"type": "weightvault.identity/v1", "name": "alice", "keyid": "<hex>",
     "algorithm": "ed25519+ml-dsa-65",
     "public_key": <hybrid verify key>,
     "protection": "none" | "scrypt+aes-256-gcm",
     "private_key": "<base64 of the 70-byte private key>"            (protection none)
                  | {"kdf": "scrypt", "n": 32768, "r": 8, "p": 1,
                     "salt": "<base64>", "nonce": "<base64>",
                     "ciphertext": "<base64>"}}                      (protected)

An identity made since grants (``docs/grants.md``) also holds an HPKE
ML-KEM-768 + X25519 key, to receive secrets (a grant's DEK): the file then has
``"kem_public_key": "<base64 of the 1216-byte X-Wing public key>"`` and the
private bytes (plain or sealed) are the signing key's 70 bytes followed by the
KEM key's 32-byte seed. A file without ``kem_public_key`` loads as before; it
just cannot receive grants.

A protected file never holds the raw key: it is AES-256-GCM under a key
derived by scrypt from the passphrase, the additional data being the
canonical JSON of the file's type, name and keyid (so a ciphertext moved into
another identity's file does not open). Loading checks the private key
against the keyid and the public key the file names.

The vault never stores identities: it enrols their public keys (the trust
root's principals) and checks the signatures they make.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from weightvault._fs import make_private_dir
from weightvault._json import canonical_json, parse_canonical
from weightvault.config import environment, identity_dir
from weightvault.crypto import hpke
from weightvault.crypto.signing import ALGORITHM, HybridSigningKey, HybridVerifyKey
from weightvault.errors import IdentityError, IntegrityError, VaultError

IDENTITY_TYPE: Final = "weightvault.identity/v1"
PROTECTION_NONE: Final = "none"
PROTECTION_SCRYPT: Final = "scrypt+aes-256-gcm"
SUFFIX: Final = ".key"
NAME_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_SCRYPT_N: Final = 1 << 15
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
_MAX_FILE: Final = 64 * 1024
_FIELDS: Final = frozenset(
    {"type", "name", "keyid", "algorithm", "public_key", "protection", "private_key"}
)
KEM_FIELD: Final = "kem_public_key"
RECIPIENT_TYPE: Final = "weightvault.recipient/v1"

Passphrase = Callable[[str], bytes]


def check_name(name: str) -> str:
    """A principal name: 1-63 of lowercase letters, digits, ``.``, ``_``, ``-``."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise IdentityError(
            f"identity name {name!r:.70} must be 1-63 lowercase letters, digits, '.', '_' or '-'"
        )
    return name


@dataclass(frozen=True)
class Identity:
    """A loaded identity: its name, where it came from, and the signing key (never printed)."""

    name: str
    path: Path
    key: HybridSigningKey
    protected: bool
    kem: hpke.HpkePrivateKey | None = None

    @property
    def keyid(self) -> str:
        """Hex SHA-256 of the canonical public key."""
        return self.key.keyid

    def public_key(self) -> HybridVerifyKey:
        """The half to enrol."""
        return self.key.public_key()

    def sign(self, message: bytes) -> bytes:
        """A hybrid signature of ``message`` (both halves), as bytes."""
        return self.key.sign(message).to_bytes()

    def __repr__(self) -> str:
        return f"Identity({self.name!r}, keyid={self.keyid[:16]})"


@dataclass(frozen=True)
class PublicIdentity:
    """What an identity file says publicly: name, keyid, public key, protection."""

    name: str
    path: Path
    public_key: HybridVerifyKey
    protection: str
    kem_public: hpke.HpkePublicKey | None = None

    @property
    def keyid(self) -> str:
        """Hex SHA-256 of the canonical public key."""
        return self.public_key.keyid

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe facts (no private material)."""
        return {
            "name": self.name,
            "keyid": self.keyid,
            "fingerprint": fingerprint(self.public_key),
            "protection": self.protection,
            "path": str(self.path),
            "public_key": self.public_key.to_dict(),
            "kem_fingerprint": self.kem_public.fingerprint if self.kem_public else None,
        }

    def recipient(self) -> dict[str, Any]:
        """The public form a grant is made to (``identity export --recipient``)."""
        if self.kem_public is None:
            raise IdentityError(
                f"identity {self.name} has no KEM key and cannot receive grants: "
                "create a new identity"
            )
        return {
            "type": RECIPIENT_TYPE,
            "name": self.name,
            "keyid": self.keyid,
            "public_key": self.public_key.to_dict(),
            KEM_FIELD: _b64(self.kem_public.to_bytes()),
        }


@dataclass(frozen=True)
class Recipient:
    """Whom a grant is made to: a name, the signing key its receipts verify against, and
    the KEM key the DEK is sealed to."""

    name: str
    public_key: HybridVerifyKey
    kem_public: hpke.HpkePublicKey

    @property
    def keyid(self) -> str:
        """Hex SHA-256 of the canonical signing public key."""
        return self.public_key.keyid


def parse_recipient(data: bytes, what: str) -> Recipient:
    """A recipient from ``identity export --recipient`` (its JSON), else IdentityError."""
    try:
        doc: Any = parse_canonical(data.strip(), f"recipient {what}")
    except IntegrityError:
        raise IdentityError(f"{what} is not an exported recipient key") from None
    if not isinstance(doc, dict) or doc.get("type") != RECIPIENT_TYPE:
        raise IdentityError(
            f"{what} is not a recipient key: use `weightvault identity export --recipient`"
        )
    if set(doc) != {"type", "name", "keyid", "public_key", KEM_FIELD}:
        raise IdentityError(f"{what} is a malformed recipient key")
    try:
        public = HybridVerifyKey.from_dict(doc["public_key"])
        kem = hpke.load_public(base64.b64decode(str(doc[KEM_FIELD]), validate=True))
    except (binascii.Error, ValueError, VaultError):
        raise IdentityError(f"{what} is a malformed recipient key") from None
    if public.keyid != doc["keyid"]:
        raise IdentityError(f"{what} does not match its keyid")
    return Recipient(check_name(str(doc["name"])), public, kem)


def fingerprint(key: HybridVerifyKey) -> str:
    """The first 128 bits of the keyid in groups of four, to compare aloud."""
    head = key.keyid[:32]
    return ":".join(head[i : i + 4] for i in range(0, 32, 4))


def public_line(name: str, key: HybridVerifyKey) -> str:
    """The one-line public form: ``NAME+<keyid>+<base64 canonical public key>``."""
    return f"{name}+{key.keyid}+{base64.b64encode(key.public_bytes()).decode('ascii')}"


def parse_public_key(data: bytes, name: str) -> HybridVerifyKey:
    """A public key from ``identity export``: the JSON form, the one-line form, or a file."""
    text = data.decode("utf-8", "replace").strip()
    try:
        if text.startswith("{"):
            doc: Any = parse_canonical(text.encode(), f"public key {name}")
            if doc.get("type") in {IDENTITY_TYPE, RECIPIENT_TYPE}:
                doc = doc.get("public_key")
            return HybridVerifyKey.from_dict(doc)
        parts = text.split("+", 2)
        if len(parts) != 3:
            raise IdentityError(f"public key {name} is not an exported weightvault identity")
        raw = base64.b64decode(parts[2], validate=True)
        key = HybridVerifyKey.from_public_bytes(check_name(parts[0]), 1, raw)
    except (binascii.Error, ValueError, IntegrityError):
        raise IdentityError(f"public key {name} is not an exported weightvault identity") from None
    except IdentityError:
        raise
    except VaultError as exc:
        raise IdentityError(f"public key {name}: {exc.message}") from None
    if key.keyid != parts[1]:
        raise IdentityError(f"public key {name} does not match its keyid")
    return key


def identity_path(name_or_path: str | Path, directory: Path | None = None) -> Path:
    """The file of an identity: a path as given, or ``NAME.key`` under the identity directory."""
    text = str(name_or_path)
    if "/" in text or text.endswith(SUFFIX):
        return Path(text)
    return (directory or identity_dir()) / f"{check_name(text)}{SUFFIX}"


def default_identity() -> str:
    """The identity to act as: ``WEIGHTVAULT_IDENTITY``, else the login name."""
    chosen = environment().identity
    if chosen:
        return chosen
    import getpass

    try:
        login = getpass.getuser().lower()
    except (KeyError, OSError):
        login = ""
    if not NAME_PATTERN.match(login):
        raise IdentityError(
            "no identity to act as: set WEIGHTVAULT_IDENTITY or run `weightvault identity create`"
        )
    return login


def _aad(name: str, keyid: str, kem: str | None = None) -> bytes:
    fields = {"type": IDENTITY_TYPE, "name": name, "keyid": keyid}
    if kem is not None:
        fields[KEM_FIELD] = kem
    return canonical_json(fields)


def _derive(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def identity_file(
    key: HybridSigningKey,
    name: str,
    passphrase: bytes | None = None,
    kem_seed: bytes | None = None,
) -> bytes:
    """The bytes of an identity file for ``key`` (protected when ``passphrase`` is given),
    with the KEM key of ``kem_seed`` when given."""
    public = key.public_key()
    private: Any
    raw = key.private_bytes()
    kem: str | None = None
    if kem_seed is not None:
        kem = _b64(hpke.generate_keypair_from_seed(kem_seed)[1].to_bytes())
        raw += kem_seed
    if passphrase is None:
        protection, private = PROTECTION_NONE, _b64(raw)
    else:
        if not passphrase:
            raise IdentityError("an empty passphrase protects nothing")
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        kek = _derive(passphrase, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
        sealed = AESGCM(kek).encrypt(nonce, raw, _aad(name, key.keyid, kem))
        protection = PROTECTION_SCRYPT
        private = {
            "kdf": "scrypt",
            "n": _SCRYPT_N,
            "r": _SCRYPT_R,
            "p": _SCRYPT_P,
            "salt": _b64(salt),
            "nonce": _b64(nonce),
            "ciphertext": _b64(sealed),
        }
    doc = {
        "type": IDENTITY_TYPE,
        "name": name,
        "keyid": key.keyid,
        "algorithm": ALGORITHM,
        "public_key": public.to_dict(),
        "protection": protection,
        "private_key": private,
    }
    if kem is not None:
        doc[KEM_FIELD] = kem
    return canonical_json(doc)


def create_identity(
    name: str, *, directory: Path | None = None, passphrase: bytes | None = None
) -> PublicIdentity:
    """Make a new identity ``name``: a fresh hybrid key, written 0600 (never overwritten)."""
    check_name(name)
    path = identity_path(name, directory)
    key = HybridSigningKey.generate(name, 1)
    data = identity_file(key, name, passphrase, secrets.token_bytes(hpke.SEED_SIZE))
    make_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise IdentityError(f"identity {name} already exists ({path})") from None
    except OSError as exc:
        raise IdentityError(f"cannot write identity file {path} ({exc.strerror})") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    made = read_public(path)
    return PublicIdentity(name, path, key.public_key(), made.protection, made.kem_public)


def _read(path: Path) -> dict[str, Any]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise IdentityError(
            f"no identity file {path}: run `weightvault identity create NAME`"
        ) from None
    except OSError as exc:
        raise IdentityError(f"cannot read identity file {path} ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(_MAX_FILE + 1)
    if len(data) > _MAX_FILE:
        raise IdentityError(f"identity file {path} is too large")
    try:
        doc = parse_canonical(data, f"identity file {path}")
    except IntegrityError:
        raise IdentityError(f"{path} is not a weightvault identity file") from None
    if doc.get("type") != IDENTITY_TYPE or set(doc) - {KEM_FIELD} != _FIELDS:
        raise IdentityError(f"{path} is not a weightvault.identity/v1 file")
    return doc


def _public(doc: dict[str, Any], path: Path) -> PublicIdentity:
    name = check_name(str(doc["name"]))
    try:
        public = HybridVerifyKey.from_dict(doc["public_key"])
    except VaultError:
        raise IdentityError(f"identity file {path} has a malformed public key") from None
    if public.keyid != doc["keyid"] or doc["algorithm"] != ALGORITHM:
        raise IdentityError(f"identity file {path} does not match its keyid")
    if doc["protection"] not in {PROTECTION_NONE, PROTECTION_SCRYPT}:
        raise IdentityError(f"identity file {path} has an unknown protection")
    kem: hpke.HpkePublicKey | None = None
    if KEM_FIELD in doc:
        try:
            kem = hpke.load_public(base64.b64decode(str(doc[KEM_FIELD]), validate=True))
        except (binascii.Error, ValueError, VaultError):
            raise IdentityError(f"identity file {path} has a malformed KEM key") from None
    return PublicIdentity(name, path, public, str(doc["protection"]), kem)


def read_public(path: Path) -> PublicIdentity:
    """The public facts of an identity file (no passphrase needed)."""
    return _public(_read(path), path)


def _unseal(doc: dict[str, Any], public: PublicIdentity, passphrase: Passphrase | None) -> bytes:
    sealed = doc["private_key"]
    if public.protection == PROTECTION_NONE:
        if not isinstance(sealed, str):
            raise IdentityError(f"identity file {public.path} is malformed")
        return base64.b64decode(sealed, validate=True)
    if not isinstance(sealed, dict) or sealed.get("kdf") != "scrypt":
        raise IdentityError(f"identity file {public.path} is malformed")
    if passphrase is None:
        raise IdentityError(
            f"identity {public.name} is passphrase-protected: run on a terminal or set "
            "WEIGHTVAULT_IDENTITY_PASSPHRASE_FILE"
        )
    params = [sealed.get(k) for k in ("n", "r", "p")]
    n, r, p = (v if isinstance(v, int) and not isinstance(v, bool) else 0 for v in params)
    if not all(0 < v <= 1 << 20 for v in (n, r, p)):
        raise IdentityError(f"identity file {public.path} has bad scrypt parameters")
    salt = base64.b64decode(str(sealed.get("salt", "")), validate=True)
    nonce = base64.b64decode(str(sealed.get("nonce", "")), validate=True)
    body = base64.b64decode(str(sealed.get("ciphertext", "")), validate=True)
    kek = _derive(passphrase(public.name), salt, n, r, p)
    kem = _b64(public.kem_public.to_bytes()) if public.kem_public is not None else None
    try:
        return AESGCM(kek).decrypt(nonce, body, _aad(public.name, public.keyid, kem))
    except InvalidTag:
        raise IdentityError(f"wrong passphrase for identity {public.name}") from None


def load_identity(path: Path, passphrase: Passphrase | None = None) -> Identity:
    """Load an identity; ``passphrase(name)`` is asked only for a protected file."""
    doc = _read(path)
    public = _public(doc, path)
    kem: hpke.HpkePrivateKey | None = None
    try:
        raw = _unseal(doc, public, passphrase)
        if public.kem_public is not None:
            if len(raw) <= hpke.SEED_SIZE:
                raise IdentityError(f"identity file {path} is malformed")
            raw, seed = raw[: -hpke.SEED_SIZE], raw[-hpke.SEED_SIZE :]
            kem, kem_public = hpke.generate_keypair_from_seed(seed)
            if kem_public != public.kem_public:
                raise IdentityError(
                    f"identity file {path}: its KEM private key is not the key it names"
                )
        key = HybridSigningKey.from_private_bytes(public.name, 1, raw)
    except (binascii.Error, ValueError):
        raise IdentityError(f"identity file {path} is malformed") from None
    except IdentityError:
        raise
    except VaultError:
        raise IdentityError(f"identity file {path} holds no usable key") from None
    if key.keyid != public.keyid:
        raise IdentityError(f"identity file {path}: its private key is not the key it names")
    return Identity(public.name, path, key, public.protection != PROTECTION_NONE, kem)


def add_kem_key(path: Path, passphrase: Passphrase | None = None) -> PublicIdentity:
    """Give an identity made before grants its KEM key (same signing key, same protection,
    the same passphrase); IdentityError if it has one already. The file is replaced
    atomically."""
    from weightvault._fs import write_private

    public = read_public(path)
    if public.kem_public is not None:
        raise IdentityError(f"identity {public.name} has a KEM key already")
    secret: bytes | None = None
    if public.protection != PROTECTION_NONE:
        if passphrase is None:
            raise IdentityError(
                f"identity {public.name} is passphrase-protected: run on a terminal or set "
                "WEIGHTVAULT_IDENTITY_PASSPHRASE_FILE"
            )
        secret = passphrase(public.name)
        given = secret
        loaded = load_identity(path, lambda _name: given)
    else:
        loaded = load_identity(path)
    write_private(
        path, identity_file(loaded.key, public.name, secret, secrets.token_bytes(hpke.SEED_SIZE))
    )
    return read_public(path)


def list_identities(directory: Path | None = None) -> list[PublicIdentity]:
    """Every identity file under the identity directory, by name."""
    where = directory or identity_dir()
    if not where.is_dir():
        return []
    return [read_public(p) for p in sorted(where.glob(f"*{SUFFIX}")) if p.is_file()]


def read_passphrase_file(path: Path) -> bytes:
    """The first line of a passphrase file (the rest is ignored)."""
    try:
        with path.open("rb") as fh:
            line = fh.readline(4096)
    except OSError as exc:
        raise IdentityError(f"cannot read passphrase file {path} ({exc.strerror})") from None
    passphrase = line.rstrip(b"\r\n")
    if not passphrase:
        raise IdentityError(f"passphrase file {path} is empty")
    return passphrase


def default_passphrase() -> Passphrase | None:
    """Where a protected identity's passphrase comes from: a file named by the environment
    (``WEIGHTVAULT_IDENTITY_PASSPHRASE_FILE``), else a prompt on the terminal, else nowhere."""
    import sys

    named = environment().identity_passphrase_file
    if named is not None:
        path = named
        return lambda _name: read_passphrase_file(path)
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        return lambda name: getpass.getpass(f"passphrase for identity {name}: ").encode()
    return None
