"""Every S3 operation the vault relies on, against SeaweedFS and against moto's AWS-faithful server.

Each test runs once per implementation (the ``s3_peer`` fixture). moto enforces
AWS's rules that SeaweedFS lets pass, such as a checksum header on every upload
into an Object Lock bucket.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.retention import Retention

from tests.support.s3_peers import S3Peer
from weightvault.errors import ConflictError, RetentionError
from weightvault.store import EmbeddedStore, ObjectStore
from weightvault.store._objects import content_md5

PART = 5 * 1024 * 1024  # the smallest part AWS S3 accepts


@pytest.fixture
def store(s3_peer: S3Peer) -> ObjectStore:
    return ObjectStore(s3_peer.endpoint, s3_peer.access_key, s3_peer.secret_key, part_size=PART)


@pytest.fixture
def locked(store: ObjectStore) -> str:
    name = f"c{uuid.uuid4().hex[:12]}-cold"
    store.ensure_bucket(name, versioned=True, object_lock=True)
    return name


@pytest.fixture
def versioned(store: ObjectStore) -> str:
    name = f"c{uuid.uuid4().hex[:12]}-audit"
    store.ensure_bucket(name, versioned=True, object_lock=False)
    return name


def _until(days: int = 1) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


def _read(store: ObjectStore, bucket: str, key: str, version_id: str | None = None) -> bytes:
    with store.open(bucket, key, version_id) as stream:
        return stream.read()


def test_content_md5_is_the_s3_header_value() -> None:
    body = b"weightvault"
    assert content_md5(body) == base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324
    assert content_md5(None) == "1B2M2Y8AsgTpgAmY7PhCfg=="


def test_single_put_into_a_locked_bucket_is_retained_and_undeletable(
    store: ObjectStore, locked: str
) -> None:
    until = _until()
    written = store.put_bytes(locked, "artifacts/a/manifest.json", b"{}", retain_until=until)
    mode, retained = store.retention(locked, "artifacts/a/manifest.json") or ("", None)
    assert mode == "COMPLIANCE"
    assert retained is not None
    assert retained >= until
    with pytest.raises(RetentionError):
        store.remove(locked, "artifacts/a/manifest.json", version_id=written.version_id)
    assert _read(store, locked, "artifacts/a/manifest.json", written.version_id) == b"{}"


def test_multipart_put_checksums_every_part_and_is_retained(
    store: ObjectStore, locked: str
) -> None:
    data = os.urandom(2 * PART + 1234)
    until = _until()
    written = store.put_stream(locked, "big", io.BytesIO(data), len(data), retain_until=until)
    assert written.etag.endswith("-3")  # three parts, so it really was a multipart upload
    found = store.retention(locked, "big", written.version_id)
    assert found is not None
    assert found[0] == "COMPLIANCE"
    assert found[1] >= until
    with pytest.raises(RetentionError):
        store.remove(locked, "big", version_id=written.version_id)
    assert hashlib.sha256(_read(store, locked, "big")).digest() == hashlib.sha256(data).digest()


def test_server_side_copy_carries_retention_and_legal_hold(
    store: ObjectStore, versioned: str, locked: str
) -> None:
    store.put_bytes(versioned, "src", b"ciphertext")
    until = _until()
    copied = store.copy(versioned, "src", locked, "dst", retain_until=until, legal_hold=True)
    found = store.retention(locked, "dst", copied.version_id)
    assert found is not None
    assert found[0] == "COMPLIANCE"
    assert found[1] >= until
    assert store.legal_hold(locked, "dst")
    store.set_legal_hold(locked, "dst", False)
    assert not store.legal_hold(locked, "dst")
    assert _read(store, locked, "dst") == b"ciphertext"


def test_legal_hold_set_after_the_upload(store: ObjectStore, locked: str) -> None:
    store.put_bytes(locked, "held", b"x", retain_until=_until())
    assert not store.legal_hold(locked, "held")
    store.set_legal_hold(locked, "held", True)
    assert store.legal_hold(locked, "held")


def test_retention_can_be_extended(store: ObjectStore, locked: str) -> None:
    store.put_bytes(locked, "r", b"x", retain_until=_until(1))
    store.set_retention(locked, "r", _until(2))
    found = store.retention(locked, "r")
    assert found is not None
    assert found[1] >= _until(2) - timedelta(seconds=1)


def test_compliance_retention_cannot_be_shortened(s3_server: EmbeddedStore) -> None:
    # SeaweedFS only: moto 5.2 does not model this AWS rule (docs/s3-compatibility.md).
    creds = s3_server.credentials()
    store = ObjectStore(s3_server.endpoint(), creds.access_key, creds.secret_key)
    bucket = f"c{uuid.uuid4().hex[:12]}-cold"
    store.ensure_bucket(bucket, versioned=True, object_lock=True)
    store.put_bytes(bucket, "r", b"x", retain_until=_until(2))
    with pytest.raises(S3Error):
        store.client.set_object_retention(bucket, "r", Retention(COMPLIANCE, _until(1)))
    found = store.retention(bucket, "r")
    assert found is not None
    assert found[1] >= _until(2) - timedelta(seconds=1)


def test_plain_delete_leaves_a_marker_and_the_versions_stay_readable(
    store: ObjectStore, locked: str
) -> None:
    first = store.put_bytes(locked, "m", b"v1", retain_until=_until())
    second = store.put_bytes(locked, "m", b"v2", retain_until=_until())
    store.remove(locked, "m")  # allowed under COMPLIANCE: it only adds a delete marker
    assert not store.exists(locked, "m")
    listed = [o for o in store.list(locked, "m", versions=True) if o.key == "m"]
    markers = [o for o in listed if o.delete_marker]
    kept = {o.version_id for o in listed if not o.delete_marker}
    assert len(markers) == 1
    assert kept == {first.version_id, second.version_id}
    assert _read(store, locked, "m", first.version_id) == b"v1"
    assert _read(store, locked, "m", second.version_id) == b"v2"
    # Removing the marker (a delete of the marker's version) brings the object back.
    store.remove(locked, "m", version_id=markers[0].version_id)
    assert _read(store, locked, "m") == b"v2"


def test_versioned_bucket_keeps_every_version(store: ObjectStore, versioned: str) -> None:
    one = store.put_bytes(versioned, "k", b"one")
    store.put_bytes(versioned, "k", b"two")
    assert _read(store, versioned, "k") == b"two"
    assert _read(store, versioned, "k", one.version_id) == b"one"
    store.remove(versioned, "k", version_id=one.version_id)  # unlocked: really gone
    assert {o.version_id for o in store.list(versioned, "k", versions=True)} - {None} != set()
    assert one.version_id not in {o.version_id for o in store.list(versioned, "k", versions=True)}


def test_listing_starts_after_a_key(store: ObjectStore, versioned: str) -> None:
    # The keystore's version check: "any record newer than mine?" is one short listing.
    for n in (1, 2, 3, 10, 11):
        store.put_bytes(versioned, f"keystore/versions/{n:020d}.json", b"{}")
    store.put_bytes(versioned, "other/00000000000000000099.json", b"{}")
    after = store.list(
        versioned, "keystore/versions/", start_after=f"keystore/versions/{3:020d}.json"
    )
    assert [o.key for o in after] == [f"keystore/versions/{n:020d}.json" for n in (10, 11)]
    last = f"keystore/versions/{11:020d}.json"
    assert list(store.list(versioned, "keystore/versions/", start_after=last)) == []


def test_conditional_writes(store: ObjectStore, versioned: str) -> None:
    first = store.put_bytes(versioned, "log/0001", b"entry-1", if_none_match=True)
    with pytest.raises(ConflictError):
        store.put_bytes(versioned, "log/0001", b"forged", if_none_match=True)
    assert _read(store, versioned, "log/0001") == b"entry-1"
    with pytest.raises(ConflictError):
        store.put_bytes(versioned, "log/0001", b"stale", if_match="0" * 32)
    assert _read(store, versioned, "log/0001") == b"entry-1"
    swapped = store.put_bytes(versioned, "log/0001", b"entry-1b", if_match=first.etag)
    assert _read(store, versioned, "log/0001") == b"entry-1b"
    with pytest.raises(ConflictError):  # the ETag it was conditioned on is no longer current
        store.put_bytes(versioned, "log/0001", b"late", if_match=first.etag)
    assert swapped.etag != first.etag


def test_presigned_get_reads_without_credentials(store: ObjectStore, versioned: str) -> None:
    store.put_bytes(versioned, "share/blob", b"shared bytes")
    url = store.presigned_get(versioned, "share/blob", timedelta(minutes=5))
    assert "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - loopback
        assert resp.read() == b"shared bytes"
