"""Who may act: the principals enrolled in the signed trust root, read from the store.

The trust root's versions live in the audit bucket at ``trust/root/<20 digits>.json``;
:func:`current_root` walks them from this host's cache (``<home>/trust/root.json``,
the newest version it verified) or from version 1, and refuses a rollback, a fork
or a version that does not verify. :mod:`weightvault.lifecycle.trust` publishes
versions; this module only reads them, so that :class:`~weightvault.artifacts.Vault`
can name the acting principal before any operation.

The enrolment in force is the current root's principals. A vault that has no
root yet, or whose root was made before principals existed (it lists none),
uses the **bootstrap enrolment**: principals recorded in the sealed keystore
(purpose ``principal``) by ``weightvault init``, which enrols the first
identity there, and only while nobody is enrolled. ``trust init`` and every
later version copy the bootstrap enrolment into the root when the root lists
none; from then on only the root counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from weightvault._fs import make_private_dir, write_private
from weightvault.config import Settings
from weightvault.crypto.signing import ALGORITHM, HybridVerifyKey
from weightvault.errors import InvalidInputError, TrustRootError
from weightvault.keys import KeyProvider, KeyState
from weightvault.provenance import Principal, Root, check_roles, parse_root, verify_root, walk_chain
from weightvault.store import ObjectStore
from weightvault.store.layout import TRUST_ROOT_PREFIX, parse_trust_root_key

BOOTSTRAP_PURPOSE = "principal"
_BOOTSTRAP_PREFIX = "principal-"
_MAX_ROOT_BYTES = 4 * 1024 * 1024


def cache_path(home: Path) -> Path:
    """The newest root this host verified from the store."""
    return home / "trust" / "root.json"


def read_root_file(path: Path) -> Root | None:
    """A root document from a file (parsed, not verified); None when there is none."""
    try:
        if path.stat().st_size > _MAX_ROOT_BYTES:
            raise InvalidInputError(f"trust root file {path} is too large")
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InvalidInputError(f"cannot read trust root file {path} ({exc.strerror})") from None
    return parse_root(data)


def write_root(path: Path, root: Root) -> None:
    """Write a root document 0600 in a 0700 directory."""
    make_private_dir(path.parent)
    write_private(path, root.to_bytes())


def stored_roots(settings: Settings, store: ObjectStore) -> list[Root]:
    """Every root version in the store, oldest first (parsed, not yet verified)."""
    bucket = settings.store.bucket("audit")
    out = []
    for obj in store.list(bucket, TRUST_ROOT_PREFIX):
        version = parse_trust_root_key(obj.key)
        if version is None:
            continue
        root = parse_root(store.get_bytes(bucket, obj.key, limit=_MAX_ROOT_BYTES))
        if root.version != version:
            raise TrustRootError(
                f"{obj.key} holds trust root v{root.version}: a version was moved or replaced"
            )
        out.append(root)
    return sorted(out, key=lambda r: r.version)


def current_root(settings: Settings, store: ObjectStore, now: datetime | None) -> Root | None:
    """The newest stored root, verified from this host's cache (or from version 1).

    None when the vault has no trust root yet. ``now`` None: expiry not checked.
    Raises TrustRootError when the store offers less than this host already
    saw (rollback, deletion) or another chain (fork), or a version that does
    not verify.
    """
    chain = stored_roots(settings, store)
    cached = read_root_file(cache_path(settings.home))
    if not chain:
        if cached is not None:
            raise TrustRootError(
                f"the store holds no trust root but this host verified v{cached.version}: "
                "the roots were deleted, or this is another store"
            )
        return None
    first = chain[0]
    if first.version != 1:
        raise TrustRootError(f"the store's trust root chain starts at v{first.version}, not v1")
    anchor = cached
    if anchor is None:
        verify_root(first)
        anchor = first
    final = walk_chain(anchor, chain, now)
    if cached is None or final.version > cached.version:
        write_root(cache_path(settings.home), final)
    return final


# -- the bootstrap enrolment ------------------------------------------------------------


def bootstrap_principals(keys: KeyProvider) -> tuple[Principal, ...]:
    """The principals the keystore enrols (before the signed root lists any)."""
    out = []
    for record in keys.records():
        if record.purpose != BOOTSTRAP_PURPOSE or record.state != KeyState.ACTIVE:
            continue
        name = record.key_id.removeprefix(_BOOTSTRAP_PREFIX)
        key = HybridVerifyKey.from_public_bytes(name, 1, record.material)
        roles = tuple(r for r in record.meta.get("roles", "").split(",") if r)
        out.append(Principal(name, key, roles))
    return tuple(sorted(out, key=lambda p: p.name))


def enrol_bootstrap(
    keys: KeyProvider, name: str, key: HybridVerifyKey, roles: Sequence[str]
) -> bool:
    """Enrol the first principal in the keystore; False (nothing done) if any is enrolled."""
    if bootstrap_principals(keys):
        return False
    keys.put_secret(
        f"{_BOOTSTRAP_PREFIX}{name}",
        BOOTSTRAP_PURPOSE,
        ALGORITHM,
        key.public_bytes(),
        meta={"keyid": key.keyid, "roles": ",".join(check_roles(roles))},
    )
    return True


def enrolled(root: Root | None, keys: KeyProvider) -> tuple[Principal, ...]:
    """The enrolment in force: the root's principals, else the bootstrap enrolment."""
    if root is not None and root.principals:
        return root.principals
    return bootstrap_principals(keys)
