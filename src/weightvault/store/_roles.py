"""Store roles: which S3 credential may do what on which bucket, written once.

Each role is a list of grants: a bucket (by its role in the layout: a tier,
``envelopes``, ``audit``, ``dvc``), the object key prefixes of the layout it
reaches there, and the verbs it may use on them. :func:`iam_policy` turns a
role into an AWS IAM policy document for the configured bucket names; the
embedded SeaweedFS store enforces that very document (its ``-s3.config``
attaches it to the role's identity, see ``_server``), and
``weightvault store policy ROLE`` prints it for MinIO or AWS.

Verbs:

=========  =====================================================================
``get``    read objects (and a version, their retention and legal hold)
``put``    write objects (single or multipart; abort one's own upload)
``delete`` delete objects or versions (object lock still refuses retained ones)
``lock``   put retention and legal holds
``list``   list keys (and versions, and unfinished uploads) of the bucket;
           bucket-wide, since S3 lists by bucket
=========  =====================================================================

``admin`` is the one role with every action on every bucket of the prefix,
bucket setup included. docs/store-credentials.md says which operation needs
which role.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from weightvault.config import Settings
from weightvault.errors import StoreRoleError
from weightvault.store.layout import (
    ARTIFACTS_PREFIX,
    ATTESTATIONS_PREFIX,
    DATA_DOCS_PREFIX,
    ENVELOPES_PREFIX,
    GRANTS_PREFIX,
    KEYSTORE_BACKUPS_PREFIX,
    KEYSTORE_VERSIONS_PREFIX,
    LOG_PREFIX,
    QUARANTINE_MARKERS_PREFIX,
    STATEMENTS_PREFIX,
    VALIDATIONS_PREFIX,
    envelope_key,
)

__all__ = [
    "ADMIN_ROLE",
    "STORE_ROLES",
    "Grant",
    "StoreRole",
    "iam_policy",
    "role_named",
    "store_role_names",
]

VERBS = ("get", "put", "delete", "lock", "list")
_OBJECT_ACTIONS: dict[str, tuple[str, ...]] = {
    "get": (
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:GetObjectRetention",
        "s3:GetObjectLegalHold",
    ),
    "put": ("s3:PutObject", "s3:AbortMultipartUpload"),
    "delete": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "lock": ("s3:PutObjectRetention", "s3:PutObjectLegalHold"),
}
_BUCKET_ACTIONS: dict[str, tuple[str, ...]] = {
    "list": (
        "s3:ListBucket",
        "s3:ListBucketVersions",
        "s3:ListBucketMultipartUploads",
        "s3:GetBucketVersioning",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetBucketLocation",
    ),
}
# Artifact objects live in these; the quarantine bucket holds only markers.
TIER_BUCKETS = ("hot", "warm", "cold")
#: Every bucket of the layout, by role (a key prefix ``<role>/`` in the single-bucket one).
BUCKET_ROLES = ("hot", "warm", "cold", "quarantine", "envelopes", "audit", "dvc", "grants")
# The listings S3 scopes by the request's ``s3:prefix``; the other bucket reads have none.
_PREFIX_LISTINGS = frozenset({"s3:ListBucket", "s3:ListBucketVersions"})
ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class Grant:
    """``verbs`` on the objects under ``prefixes`` of the bucket of role ``bucket``."""

    bucket: str
    verbs: frozenset[str]
    prefixes: tuple[str, ...] = ("",)

    def __post_init__(self) -> None:
        unknown = self.verbs - set(VERBS)
        if unknown:
            raise ValueError(f"unknown verbs {sorted(unknown)}")


@dataclass(frozen=True)
class StoreRole:
    """A store credential's role: what it is for and what it may do."""

    name: str
    purpose: str
    grants: tuple[Grant, ...]

    def allows(self, verb: str, bucket: str, key: str = "") -> bool:
        """Whether this role may use ``verb`` on ``key`` of the bucket of role ``bucket``.

        ``list`` is a bucket verb: ``key`` is ignored for it. A prefix holding ``*`` is
        a pattern matched as IAM matches resources (``envelopes/*/hot.json``).
        """
        if self.name == ADMIN_ROLE:
            return True
        for grant in self.grants:
            if grant.bucket != bucket or verb not in grant.verbs:
                continue
            if verb == "list" or any(_matches(p, key) for p in grant.prefixes):
                return True
        return False


def key_pattern(prefix: str) -> str:
    """The IAM resource pattern of a grant's prefix: a prefix gets ``*``, a pattern stays."""
    return prefix if "*" in prefix else f"{prefix}*"


def _matches(prefix: str, key: str) -> bool:
    """IAM's resource matching: ``*`` is any run of characters, ``/`` included."""
    regex = ".*".join(re.escape(part) for part in key_pattern(prefix).split("*"))
    return re.fullmatch(regex, key, flags=re.DOTALL) is not None


def _g(bucket: str, verbs: str, *prefixes: str) -> Grant:
    return Grant(bucket, frozenset(verbs.split()), prefixes or ("",))


# What opening the vault and logging an operation need: the log (read, append, swap
# the checkpoint), the trust root and the keystore's version records (read).
_LOGS = _g("audit", "get put list", LOG_PREFIX)
_READS_AUDIT = _g("audit", "get list")
# A DEK wrap counts against its KEK: the keystore is saved, its version recorded.
_SAVES_KEYSTORE = _g("audit", "put", KEYSTORE_VERSIONS_PREFIX, KEYSTORE_BACKUPS_PREFIX)
_READS_TIERS = tuple(_g(tier, "get list", ARTIFACTS_PREFIX) for tier in TIER_BUCKETS)

STORE_ROLES: dict[str, StoreRole] = {
    role.name: role
    for role in (
        StoreRole(
            ADMIN_ROLE,
            "everything on the vault's buckets, bucket setup included (init, gc, rekey, "
            "rotation, delete, trust, dr)",
            (),
        ),
        StoreRole(
            "ingester",
            "put into the hot tier: its artifact objects and hot envelopes, the log; "
            "quarantine markers and statements of what its format scan finds unsafe; "
            "no delete, no reads of warm, cold or quarantine",
            (
                _g("hot", "get put list", ARTIFACTS_PREFIX),
                _g("envelopes", "get put list", envelope_key("*", "hot")),
                _g("quarantine", "get put list", QUARANTINE_MARKERS_PREFIX),
                _READS_AUDIT,
                _LOGS,
                _SAVES_KEYSTORE,
                _g("audit", "put", ATTESTATIONS_PREFIX, STATEMENTS_PREFIX),
            ),
        ),
        StoreRole(
            "reader",
            "get, verify and list every tier; appends to the log (every read is logged); "
            "no other write",
            (
                *_READS_TIERS,
                _g("quarantine", "get list", QUARANTINE_MARKERS_PREFIX),
                _g("envelopes", "get list", ENVELOPES_PREFIX),
                _READS_AUDIT,
                _LOGS,
            ),
        ),
        StoreRole(
            "validator",
            "validate artifacts: reads every tier, writes signed validation statements "
            "and attestations, appends to the log",
            (
                *_READS_TIERS,
                _g("quarantine", "get list", QUARANTINE_MARKERS_PREFIX),
                _g("envelopes", "get list", ENVELOPES_PREFIX),
                _READS_AUDIT,
                _LOGS,
                _g(
                    "audit",
                    "put",
                    STATEMENTS_PREFIX,
                    VALIDATIONS_PREFIX,
                    ATTESTATIONS_PREFIX,
                    DATA_DOCS_PREFIX,
                ),
            ),
        ),
        StoreRole(
            "promoter",
            "promote, quarantine and release: copy between tiers, retention and legal "
            "holds, remove the source copy; attestations and the log; grants",
            (
                *(_g(tier, "get put delete lock list", ARTIFACTS_PREFIX) for tier in TIER_BUCKETS),
                _g("quarantine", "get put delete list", QUARANTINE_MARKERS_PREFIX),
                _g("envelopes", "get put delete lock list", ENVELOPES_PREFIX),
                _READS_AUDIT,
                _LOGS,
                _SAVES_KEYSTORE,
                _g("audit", "put", STATEMENTS_PREFIX, ATTESTATIONS_PREFIX, VALIDATIONS_PREFIX),
                # Grants (docs/grants.md): copies, presigned URLs, receipts, revocation.
                _g("grants", "get put delete list", GRANTS_PREFIX),
            ),
        ),
        StoreRole(
            "auditor",
            "read-only on the audit bucket: the log, attestations, validations, the trust "
            "root and keystore records (audit verify from outside the vault)",
            (_READS_AUDIT,),
        ),
        StoreRole(
            "dvc",
            "the DVC remote only: dvc push, pull and status on the DVC bucket; nothing else",
            (_g("dvc", "get put list"),),
        ),
    )
}


def store_role_names() -> tuple[str, ...]:
    """Every store role, admin first."""
    return tuple(STORE_ROLES)


def role_named(name: str) -> StoreRole:
    """The role called ``name``; StoreRoleError naming the known ones otherwise."""
    try:
        return STORE_ROLES[name]
    except KeyError:
        raise StoreRoleError(
            f"unknown store role {name!r}; use one of {', '.join(STORE_ROLES)}"
        ) from None


def iam_policy(role: StoreRole | str, settings: Settings) -> dict[str, Any]:
    """The AWS IAM policy document (``Version 2012-10-17``) granting ``role`` its table rows
    on the buckets ``settings`` names; one statement per bucket and verb set.

    In the single-bucket layout (``[store] bucket``) a bucket role is the key prefix
    ``<role>/`` of that bucket: object statements name ``<bucket>/<role>/...``, and
    listing is allowed only under the role's prefix (``s3:prefix`` condition).
    """
    role = role_named(role) if isinstance(role, str) else role
    if role.name == ADMIN_ROLE:
        return {"Version": "2012-10-17", "Statement": _admin_statements(settings)}
    statements: list[dict[str, Any]] = []
    for grant in role.grants:
        bucket, root = _physical(settings, grant.bucket)
        sid = _sid(role.name, grant.bucket, len(statements))
        objects = sorted(a for v in grant.verbs if v in _OBJECT_ACTIONS for a in _OBJECT_ACTIONS[v])
        if objects:
            statements.append(
                {
                    "Sid": f"{sid}Objects",
                    "Effect": "Allow",
                    "Action": objects,
                    "Resource": [
                        f"arn:aws:s3:::{bucket}/{root}{key_pattern(p)}" for p in grant.prefixes
                    ],
                }
            )
        buckets = sorted(a for v in grant.verbs if v in _BUCKET_ACTIONS for a in _BUCKET_ACTIONS[v])
        if buckets:
            statements.extend(_bucket_statements(sid, bucket, root, buckets))
    return {"Version": "2012-10-17", "Statement": statements}


def _physical(settings: Settings, bucket_role: str) -> tuple[str, str]:
    """(bucket, key prefix) of a bucket role: ``(<prefix>-<role>, "")`` or ``(<bucket>,
    "<role>/")`` in the single-bucket layout."""
    single = settings.store.single_bucket
    return (single, f"{bucket_role}/") if single else (settings.store.bucket(bucket_role), "")


def _bucket_statements(
    sid: str, bucket: str, root: str, actions: list[str]
) -> list[dict[str, Any]]:
    """Bucket-level statements; under a key prefix, listing only lists that prefix."""
    if not root:
        return [
            {
                "Sid": f"{sid}Bucket",
                "Effect": "Allow",
                "Action": actions,
                "Resource": [f"arn:aws:s3:::{bucket}"],
            }
        ]
    listing = [a for a in actions if a in _PREFIX_LISTINGS]
    rest = [a for a in actions if a not in _PREFIX_LISTINGS]
    statements: list[dict[str, Any]] = []
    if listing:
        statements.append(
            {
                "Sid": f"{sid}List",
                "Effect": "Allow",
                "Action": listing,
                "Resource": [f"arn:aws:s3:::{bucket}"],
                "Condition": {"StringLike": {"s3:prefix": [f"{root}*"]}},
            }
        )
    if rest:
        statements.append(
            {
                "Sid": f"{sid}Bucket",
                "Effect": "Allow",
                "Action": rest,
                "Resource": [f"arn:aws:s3:::{bucket}"],
            }
        )
    return statements


def _admin_statements(settings: Settings) -> list[dict[str, Any]]:
    """Everything on the vault's buckets; in the single-bucket layout, on its prefixes only
    (the bucket's own configuration is read, never changed)."""
    single = settings.store.single_bucket
    if not single:
        prefix = settings.store.bucket_prefix
        return [
            {
                "Sid": "AdminVaultBuckets",
                "Effect": "Allow",
                "Action": ["s3:*"],
                "Resource": [f"arn:aws:s3:::{prefix}-*", f"arn:aws:s3:::{prefix}-*/*"],
            },
            {
                "Sid": "AdminListAllBuckets",
                "Effect": "Allow",
                "Action": ["s3:ListAllMyBuckets"],
                "Resource": ["*"],
            },
        ]
    roots = [f"{role}/" for role in BUCKET_ROLES]
    return [
        {
            "Sid": "AdminVaultPrefixes",
            "Effect": "Allow",
            "Action": ["s3:*"],
            "Resource": [f"arn:aws:s3:::{single}/{root}*" for root in roots],
        },
        {
            "Sid": "AdminVaultList",
            "Effect": "Allow",
            "Action": sorted(_PREFIX_LISTINGS),
            "Resource": [f"arn:aws:s3:::{single}"],
            "Condition": {"StringLike": {"s3:prefix": [f"{root}*" for root in roots]}},
        },
        {
            "Sid": "AdminVaultBucket",
            "Effect": "Allow",
            "Action": sorted(set(_BUCKET_ACTIONS["list"]) - _PREFIX_LISTINGS),
            "Resource": [f"arn:aws:s3:::{single}"],
        },
    ]


def _sid(role: str, bucket: str, index: int) -> str:
    """A statement id: IAM allows only ``[A-Za-z0-9]``."""
    words = f"{role} {bucket}".replace("-", " ").split()
    return "".join(w.capitalize() for w in words) + str(index)
