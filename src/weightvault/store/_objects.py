"""The object store, through the ``minio`` SDK only.

Every SDK or transport failure is translated into the vault's errors:
unreachable endpoint -> StoreUnavailableError (naming the endpoint), rejected
credentials -> AuthenticationError, missing object -> NotFoundError, object
lock -> RetentionError. Nothing here depends on SeaweedFS; it works unchanged
against MinIO or AWS S3.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, NoReturn, Protocol, cast

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE, ENABLED, CopySource
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.retention import Retention
from minio.versioningconfig import VersioningConfig

from weightvault.config import Settings
from weightvault.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    RetentionError,
    StoreError,
    StoreUnavailableError,
    VaultError,
)

_AUTH_CODES = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken"}
_MISSING_CODES = {
    "NoSuchKey",
    "NoSuchBucket",
    "NoSuchVersion",
    "NoSuchUpload",
    "NoSuchObjectLockConfiguration",
}
_TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
    ServerError,
    InvalidResponseError,
)
_STORE_ERRORS: tuple[type[BaseException], ...] = (MinioException, *_TRANSIENT_ERRORS)


class Readable(Protocol):
    """Anything with ``read(size)``."""

    def read(self, size: int = -1, /) -> bytes:
        """Read up to ``size`` bytes."""
        ...


@dataclass(frozen=True)
class ObjectInfo:
    """One object as listed or stat'ed."""

    bucket: str
    key: str
    size: int
    etag: str
    last_modified: datetime | None
    version_id: str | None = None


@dataclass(frozen=True)
class UploadInfo:
    """A multipart upload that was started and neither completed nor aborted."""

    bucket: str
    key: str
    upload_id: str
    initiated: datetime | None


@dataclass(frozen=True)
class WriteResult:
    """What a put or copy returned."""

    etag: str
    version_id: str | None


class ObjectStore:
    """A thin, error-translating wrapper over :class:`minio.Minio`."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        *,
        secure: bool = False,
        region: str = "us-east-1",
        part_size: int = 16 * 1024 * 1024,
        retries: int = 2,
    ) -> None:
        self.endpoint = endpoint
        self.part_size = part_size
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5.0, read=120.0),
            maxsize=16,
            retries=urllib3.Retry(
                total=retries,
                backoff_factor=0.2,
                status_forcelist=(500, 502, 503, 504),
                allowed_methods=None,
            ),
        )
        self.client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )

    def __repr__(self) -> str:
        return f"ObjectStore(endpoint={self.endpoint!r})"

    # -- error translation -------------------------------------------------

    def _raise(self, exc: BaseException, what: str) -> NoReturn:
        if isinstance(exc, S3Error):
            if exc.code in _AUTH_CODES:
                raise AuthenticationError(
                    f"object store at {self.endpoint} rejected the credentials ({exc.code})"
                ) from None
            if exc.code in _MISSING_CODES:
                raise NotFoundError(f"{what}: not found in the object store") from None
            if exc.code == "AccessDenied" and "lock" in (exc.message or "").lower():
                raise RetentionError(f"{what}: refused by object lock") from None
            if exc.code == "AccessDenied":
                raise AuthenticationError(
                    f"object store at {self.endpoint} denied access to {what}"
                ) from None
            if exc.code in {"PreconditionFailed", "BucketAlreadyOwnedByYou"}:
                raise ConflictError(f"{what}: {exc.code}") from None
            raise StoreError(
                f"object store at {self.endpoint} refused {what}: {exc.code}"
            ) from None
        raise StoreUnavailableError(
            f"object store at {self.endpoint} is unavailable ({type(exc).__name__})"
        ) from None

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        try:
            yield
        except VaultError:
            raise
        except _STORE_ERRORS as exc:
            self._raise(exc, what)

    # -- buckets -----------------------------------------------------------

    def ensure_bucket(self, name: str, *, versioned: bool, object_lock: bool) -> None:
        """Create ``name`` if missing, with versioning and object lock as asked."""
        with self._translate(f"bucket {name}"):
            if not self.client.bucket_exists(name):
                try:
                    self.client.make_bucket(name, object_lock=object_lock)
                except S3Error as exc:
                    if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                        raise
            if versioned and not object_lock:
                status = self.client.get_bucket_versioning(name).status
                if status != ENABLED:
                    self.client.set_bucket_versioning(name, VersioningConfig(ENABLED))

    def ping(self) -> None:
        """Raise unless the endpoint answers and accepts the credentials."""
        with self._translate("list buckets"):
            self.client.list_buckets()

    # -- objects -----------------------------------------------------------

    def put_stream(
        self,
        bucket: str,
        key: str,
        stream: Readable,
        length: int,
        *,
        retain_until: datetime | None = None,
        legal_hold: bool = False,
        content_type: str = "application/octet-stream",
    ) -> WriteResult:
        """Upload ``length`` bytes from ``stream``; multipart above the part size."""
        retention = Retention(COMPLIANCE, retain_until) if retain_until else None
        with self._translate(f"put {bucket}/{key}"):
            result = self.client.put_object(
                bucket,
                key,
                cast(BinaryIO, stream),
                length,
                content_type=content_type,
                part_size=self.part_size,
                retention=retention,
                legal_hold=legal_hold,
            )
        return WriteResult(result.etag or "", result.version_id)

    def put_bytes(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        retain_until: datetime | None = None,
        content_type: str = "application/json",
    ) -> WriteResult:
        """Upload a small object held in memory."""
        return self.put_stream(
            bucket,
            key,
            io.BytesIO(data),
            len(data),
            retain_until=retain_until,
            content_type=content_type,
        )

    @contextlib.contextmanager
    def open(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> Iterator[_GuardedStream]:
        """Stream an object; transport failures while reading become StoreUnavailableError."""
        with self._translate(f"get {bucket}/{key}"):
            response = self.client.get_object(bucket, key, version_id=version_id)
        try:
            yield _GuardedStream(response, self)
        finally:
            with contextlib.suppress(Exception):
                response.close()
                response.release_conn()

    def get_bytes(self, bucket: str, key: str, *, limit: int = 64 * 1024 * 1024) -> bytes:
        """Read a small object whole, refusing anything above ``limit`` bytes."""
        with self.open(bucket, key) as stream:
            data = stream.read(limit + 1)
        if len(data) > limit:
            raise StoreError(f"{bucket}/{key} is larger than {limit} bytes")
        return data

    def stat(self, bucket: str, key: str) -> ObjectInfo:
        """Size, ETag and time of one object."""
        with self._translate(f"stat {bucket}/{key}"):
            st = self.client.stat_object(bucket, key)
        return ObjectInfo(bucket, key, st.size or 0, st.etag or "", st.last_modified, st.version_id)

    def exists(self, bucket: str, key: str) -> bool:
        """Whether the object exists."""
        try:
            self.stat(bucket, key)
        except NotFoundError:
            return False
        return True

    def list(
        self,
        bucket: str,
        prefix: str = "",
        *,
        recursive: bool = True,
        versions: bool = False,
        start_after: str | None = None,
    ) -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in key order; every version of each with ``versions``.

        ``start_after``: only keys that sort after it.
        """
        with self._translate(f"list {bucket}/{prefix}"):
            for obj in self.client.list_objects(
                bucket,
                prefix=prefix,
                recursive=recursive or versions,
                include_version=versions,
                start_after=start_after,
            ):
                yield ObjectInfo(
                    bucket,
                    obj.object_name or "",
                    obj.size or 0,
                    obj.etag or "",
                    obj.last_modified,
                    obj.version_id,
                )

    def remove(self, bucket: str, key: str, version_id: str | None = None) -> None:
        """Delete an object (or one version); object lock refusals raise RetentionError."""
        with self._translate(f"delete {bucket}/{key}"):
            try:
                self.client.remove_object(bucket, key, version_id=version_id)
            except S3Error as exc:
                if exc.code == "AccessDenied" and version_id is not None:
                    raise RetentionError(
                        f"delete {bucket}/{key}: refused by object lock retention"
                    ) from None
                raise

    def list_incomplete_uploads(self, bucket: str, prefix: str = "") -> Iterator[UploadInfo]:
        """Multipart uploads under ``prefix`` never completed nor aborted (e.g. a killed put)."""
        key_marker: str | None = None
        upload_id_marker: str | None = None
        while True:
            # minio 7.2 has no public call for ListMultipartUploads; the private one is
            # stable across 7.x. It drops NextUploadIdMarker, so page on the last upload.
            with self._translate(f"list uploads {bucket}/{prefix}"):
                result = self.client._list_multipart_uploads(  # noqa: SLF001 - see above
                    bucket,
                    prefix=prefix,
                    key_marker=key_marker,
                    upload_id_marker=upload_id_marker,
                )
            for upload in result.uploads:
                if upload.upload_id:
                    yield UploadInfo(
                        bucket, upload.object_name, upload.upload_id, upload.initiated_time
                    )
            if not result.is_truncated or not result.uploads:
                return
            key_marker = result.uploads[-1].object_name
            upload_id_marker = result.uploads[-1].upload_id

    def abort_incomplete_upload(self, bucket: str, key: str, upload_id: str) -> None:
        """Abort a multipart upload, freeing its parts; NotFoundError if it is unknown."""
        with self._translate(f"abort upload of {bucket}/{key}"):
            # minio 7.2 has no public AbortMultipartUpload either.
            self.client._abort_multipart_upload(bucket, key, upload_id)  # noqa: SLF001

    def copy(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        retain_until: datetime | None = None,
        legal_hold: bool = False,
    ) -> WriteResult:
        """Server-side copy; ciphertext never passes through the client."""
        retention = Retention(COMPLIANCE, retain_until) if retain_until else None
        with self._translate(f"copy {src_bucket}/{src_key} to {dst_bucket}/{dst_key}"):
            result = self.client.copy_object(
                dst_bucket,
                dst_key,
                CopySource(src_bucket, src_key),
                retention=retention,
                legal_hold=legal_hold,
            )
        return WriteResult(result.etag or "", result.version_id)

    def retention(self, bucket: str, key: str) -> tuple[str, datetime] | None:
        """(mode, retain-until) of an object, or None without retention."""
        with self._translate(f"retention of {bucket}/{key}"):
            try:
                ret = self.client.get_object_retention(bucket, key)
            except S3Error as exc:
                if exc.code in _MISSING_CODES | {"InvalidRequest"}:
                    return None
                raise
        if ret is None or ret.retain_until_date is None:
            return None
        return str(ret.mode), ret.retain_until_date

    def set_retention(self, bucket: str, key: str, retain_until: datetime) -> None:
        """Apply COMPLIANCE retention until ``retain_until``."""
        with self._translate(f"retention of {bucket}/{key}"):
            self.client.set_object_retention(bucket, key, Retention(COMPLIANCE, retain_until))

    def legal_hold(self, bucket: str, key: str) -> bool:
        """Whether an object is under legal hold."""
        with self._translate(f"legal hold of {bucket}/{key}"):
            try:
                return bool(self.client.is_object_legal_hold_enabled(bucket, key))
            except S3Error as exc:
                if exc.code in _MISSING_CODES | {"InvalidRequest", "NoSuchObjectLegalHold"}:
                    return False
                raise

    def set_legal_hold(self, bucket: str, key: str, on: bool) -> None:
        """Turn an object's legal hold on or off."""
        with self._translate(f"legal hold on {bucket}/{key}"):
            if on:
                self.client.enable_object_legal_hold(bucket, key)
            else:
                self.client.disable_object_legal_hold(bucket, key)


class _GuardedStream(io.RawIOBase):
    """A response body whose transport errors surface as StoreUnavailableError."""

    def __init__(self, response: Any, store: ObjectStore) -> None:
        super().__init__()
        self._response = response
        self._store = store

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            n: int = self._response.readinto(buffer)
        except _TRANSIENT_ERRORS as exc:
            self._store._raise(exc, "read")  # noqa: SLF001 - same module
        return n

    def read(self, size: int = -1, /) -> bytes:
        try:
            data: bytes = self._response.read(None if size < 0 else size)
        except _TRANSIENT_ERRORS as exc:
            self._store._raise(exc, "read")  # noqa: SLF001 - same module
        return data


def bucket_roles() -> tuple[str, ...]:
    """Every bucket the vault uses, by role."""
    return ("hot", "warm", "cold", "quarantine", "envelopes", "audit", "dvc")


def ensure_layout(store: ObjectStore, settings: Settings) -> None:
    """Create every bucket: tier buckets as configured, the rest unlocked."""
    for role in bucket_roles():
        tier = settings.tiers.get(role)
        store.ensure_bucket(
            settings.store.bucket(role),
            versioned=tier.versioned if tier else role == "audit",
            object_lock=tier.object_lock if tier else False,
        )


def connect(settings: Settings) -> ObjectStore:
    """An ObjectStore for the configured endpoint, embedded or external."""
    from weightvault.store._server import EmbeddedStore

    if settings.store.embedded:
        embedded = EmbeddedStore(settings.store_dir)
        endpoint = embedded.endpoint()
        creds = embedded.credentials()
        access, secret = creds.access_key, creds.secret_key
    else:
        endpoint, access, secret = (
            settings.store.endpoint,
            settings.store.access_key,
            settings.store.secret_key,
        )
    return ObjectStore(
        endpoint,
        access,
        secret,
        secure=settings.store.secure,
        region=settings.store.region,
        part_size=settings.store.part_size,
    )
