"""The object store, through the ``minio`` SDK only.

Every SDK or transport failure is translated into the vault's errors:
unreachable endpoint -> StoreUnavailableError (naming the endpoint), rejected
credentials -> AuthenticationError, missing object -> NotFoundError, object
lock -> RetentionError. Nothing here depends on SeaweedFS; it works unchanged
against MinIO or AWS S3.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, Protocol, cast

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE, ENABLED, CopySource
from minio.credentials.providers import (
    AWSConfigProvider,
    ChainedProvider,
    EnvAWSProvider,
    IamAwsProvider,
    Provider,
)
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.helpers import genheaders
from minio.objectlockconfig import ObjectLockConfig
from minio.retention import Retention
from minio.versioningconfig import VersioningConfig

from weightvault.config import Settings
from weightvault.errors import (
    AuthenticationError,
    ConfigError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    RetentionError,
    SingleBucketError,
    StoreError,
    StoreFullError,
    StoreRoleDeniedError,
    StoreRoleError,
    StoreUnavailableError,
    VaultError,
)
from weightvault.store._roles import ADMIN_ROLE, BUCKET_ROLES, role_named
from weightvault.telemetry import store_span

_AUTH_CODES = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken"}
_MISSING_CODES = {
    "NoSuchKey",
    "NoSuchBucket",
    "NoSuchVersion",
    "NoSuchUpload",
    "NoSuchObjectLockConfiguration",
}
# A conditional write that lost (412), or lost a race with another one (409).
_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "BucketAlreadyOwnedByYou"}
_TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
    ServerError,
    InvalidResponseError,
)
_STORE_ERRORS: tuple[type[BaseException], ...] = (MinioException, *_TRANSIENT_ERRORS)
# What a credential provider raises when it finds nothing (ValueError) or cannot ask.
_CHAIN_ERRORS: tuple[type[BaseException], ...] = (ValueError, *_STORE_ERRORS)
# What S3 servers answer when they are out of space or over quota: MinIO's codes,
# WebDAV's 507 Insufficient Storage, and the words SeaweedFS and others put in an
# InternalError's message.
_FULL_CODES = {
    "XMinioStorageFull",
    "StorageFull",
    "InsufficientStorage",
    "QuotaExceeded",
    "XMinioAdminBucketQuotaExceeded",
}
_FULL_STATUS = 507
_FULL_WORDS = ("no space left", "disk full", "storage full", "not enough space", "no free volume")
# Below this, a 500 from a store on this machine is taken for a full disk (a write of
# one part, 16 MiB by default, no longer fits with room for the store's own files).
_LOCAL_FULL_BELOW = 64 << 20
_BUSY_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"}


def _at(bucket: str, key: str = "") -> tuple[str, str]:
    """The physical (bucket, key) of a vault bucket's object; with no key, the bucket
    and the key prefix of the vault bucket in it ('' in the bucket-per-role layout).

    In the single-bucket layout a vault bucket is ``<bucket>/<folder>`` (a key prefix
    of one existing bucket: :meth:`weightvault.config.StoreSettings.bucket`).
    """
    physical, _, folder = bucket.partition("/")
    return (physical, f"{folder}/{key}") if folder else (bucket, key)


def _status(exc: BaseException) -> int | None:
    if isinstance(exc, ServerError):
        return exc.status_code
    if isinstance(exc, InvalidResponseError):
        return getattr(exc, "_code", None)
    if isinstance(exc, S3Error) and exc.response is not None:
        return int(exc.response.status)
    return None


def is_store_full(exc: BaseException) -> bool:
    """Whether an SDK error says the store is out of space (or over quota)."""
    if _status(exc) == _FULL_STATUS:
        return True
    if isinstance(exc, S3Error):
        text = f"{exc.code} {exc.message}".lower()
        return exc.code in _FULL_CODES or any(word in text for word in _FULL_WORDS)
    return isinstance(exc, InvalidResponseError) and any(
        word in str(exc).lower() for word in _FULL_WORDS
    )


def _parse_time(text: str) -> datetime:
    """An ISO 8601 UTC time as S3 headers carry it (``Z``, with or without fractions)."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _whole_seconds(when: datetime) -> datetime:
    """S3 keeps retain-until dates to the second (some servers to the millisecond)."""
    return when.replace(microsecond=0)


def content_md5(body: bytes | None) -> str:
    """The base64 MD5 of a request body, as S3's ``Content-MD5`` header carries it.

    MD5 here is S3's transport checksum, not a security control: the payload's
    SHA-256 is signed separately, and ciphertext is authenticated by AES-GCM.
    """
    digest = hashlib.md5(body or b"", usedforsecurity=False).digest()
    return base64.b64encode(digest).decode()


class _ChecksummedMinio(Minio):
    """A Minio client whose every PUT carries ``Content-MD5``.

    AWS S3 refuses an upload into an Object Lock bucket without a checksum header
    (``MissingUploadObjectWithObjectLockHeaders``): single puts, multipart parts
    and copies with retention alike. Over plain HTTP the SDK sends only the signed
    payload SHA-256, which S3 does not accept for that rule, so the checksum is
    added here, on the one path every request takes.
    """

    def _execute(
        self,
        method: str,
        bucket_name: str | None = None,
        object_name: str | None = None,
        body: bytes | None = None,
        headers: dict[str, Any] | None = None,
        query_params: dict[str, Any] | None = None,
        preload_content: bool = True,
        no_body_trace: bool = False,
    ) -> Any:
        if method == "PUT" and object_name is not None:
            headers = dict(headers or {})
            if not any(name.lower() == "content-md5" for name in headers):
                headers["Content-MD5"] = content_md5(body)
        return super()._execute(
            method,
            bucket_name,
            object_name,
            body=body,
            headers=headers,
            query_params=query_params,
            preload_content=preload_content,
            no_body_trace=no_body_trace,
        )

    def put_conditional(
        self, bucket: str, key: str, data: bytes, content_type: str, condition: dict[str, str]
    ) -> tuple[str, str | None]:
        """PutObject of ``data`` with If-None-Match / If-Match; (etag, version id)."""
        headers = genheaders({"Content-Type": content_type}, None, None, None, False)
        headers.update(condition)
        result = self._put_object(bucket, key, data, headers)
        return result.etag or "", result.version_id


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
    delete_marker: bool = False


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


@dataclass(frozen=True)
class RangeRead:
    """What a ranged read returned: the bytes, and the object's total size if the
    store said (``Content-Range``)."""

    data: bytearray
    total: int | None


def _content_range_total(header: str | None) -> int | None:
    """The complete length in ``Content-Range: bytes a-b/total`` (None if absent or ``*``)."""
    if not header or "/" not in header:
        return None
    tail = header.rsplit("/", 1)[1].strip()
    return int(tail) if tail.isdigit() else None


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
        local_data: Path | None = None,
        role: str = ADMIN_ROLE,
        credentials: Provider | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.part_size = part_size
        # The store role the credentials are for: a denial names it (StoreRoleDeniedError).
        self.role = role
        # The data directory of a store on this machine (the embedded one), if known.
        self.local_data = local_data
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5.0, read=120.0),
            maxsize=16,
            retries=urllib3.Retry(
                total=retries,
                backoff_factor=0.2,
                status_forcelist=(500, 502, 503, 504),
                allowed_methods=None,
                # The last 5xx answer reaches the SDK, whose S3 error code says why
                # (a full store is not an unreachable one).
                raise_on_status=False,
            ),
        )
        # A provider (the AWS chain) instead of keys refreshes expiring credentials itself.
        self.client = _ChecksummedMinio(
            endpoint,
            access_key=None if credentials is not None else access_key,
            secret_key=None if credentials is not None else secret_key,
            secure=secure,
            region=region,
            http_client=http,
            credentials=credentials,
        )

    def __repr__(self) -> str:
        return f"ObjectStore(endpoint={self.endpoint!r})"

    # -- error translation -------------------------------------------------

    def _local_disk_full(self, exc: BaseException) -> bool:
        """A store on this machine answering 500 while its disk is (nearly) full.

        SeaweedFS answers a write on a full disk with a plain InternalError; only
        the free space of its data directory tells that apart from a hiccup.
        """
        if self.local_data is None or (_status(exc) or 0) < 500:
            return False
        try:
            return shutil.disk_usage(self.local_data).free < _LOCAL_FULL_BELOW
        except OSError:
            return False

    def _raise(self, exc: BaseException, what: str) -> NoReturn:
        if self._local_disk_full(exc):
            raise StoreFullError(
                f"object store at {self.endpoint} refused {what}: its disk "
                f"({self.local_data}) is out of space; free space there, then run the "
                "command again"
            ) from None
        if is_store_full(exc):
            raise StoreFullError(
                f"object store at {self.endpoint} refused {what}: it is out of space or over "
                "quota; free space in the store, then run the command again"
            ) from None
        if isinstance(exc, S3Error):
            if exc.code in _AUTH_CODES:
                raise AuthenticationError(
                    f"object store at {self.endpoint} rejected the credentials ({exc.code})"
                ) from None
            if exc.code in _MISSING_CODES:
                raise NotFoundError(f"{what}: not found in the object store") from None
            if exc.code == "AccessDenied" and "lock" in (exc.message or "").lower():
                raise RetentionError(f"{what}: refused by object lock") from None
            if exc.code == "AccessDenied" and self.role != ADMIN_ROLE:
                raise StoreRoleDeniedError(
                    f"object store at {self.endpoint} denied {what} to the {self.role} "
                    "credential: this needs a store role that may do it "
                    "(docs/store-credentials.md; WEIGHTVAULT_S3_ROLE)"
                ) from None
            if exc.code == "AccessDenied":
                raise AuthenticationError(
                    f"object store at {self.endpoint} denied access to {what}"
                ) from None
            if exc.code in _CONFLICT_CODES:
                raise ConflictError(f"{what}: {exc.code}") from None
            if exc.code in _BUSY_CODES or (_status(exc) or 0) >= 500:
                raise StoreUnavailableError(
                    f"object store at {self.endpoint} is unavailable ({exc.code})"
                ) from None
            raise StoreError(
                f"object store at {self.endpoint} refused {what}: {exc.code}"
            ) from None
        raise StoreUnavailableError(
            f"object store at {self.endpoint} is unavailable ({type(exc).__name__})"
        ) from None

    @contextlib.contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        words = what.split()
        target = next((w for w in reversed(words) if "/" in w), words[-1])
        bucket, _, key = target.partition("/")
        try:
            with store_span(words[0], bucket, key):
                yield
        except VaultError:
            raise
        except _STORE_ERRORS as exc:
            self._raise(exc, what)

    # -- buckets -----------------------------------------------------------

    def ensure_bucket(
        self, name: str, *, versioned: bool, object_lock: bool, upgrade_lock: bool = False
    ) -> None:
        """Create ``name`` if missing, with versioning and object lock as asked.

        With ``upgrade_lock`` a bucket that exists without object lock gets it
        (versioning first; S3 allows enabling object lock on a versioned bucket,
        never disabling it); a store that refuses raises StoreError. Without it
        such a bucket is left for the capability probe to report.
        """
        if "/" in name:
            # The single-bucket layout: that bucket is the operator's, checked, never made.
            self.require_single_bucket(name, versioned=versioned, object_lock=object_lock)
            return
        with self._translate(f"bucket {name}"):
            created = False
            if not self.client.bucket_exists(name):
                try:
                    self.client.make_bucket(name, object_lock=object_lock)
                    created = True
                except S3Error as exc:
                    if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                        raise
            if (versioned and not object_lock) or (upgrade_lock and not created):
                status = self.client.get_bucket_versioning(name).status
                if status != ENABLED:
                    self.client.set_bucket_versioning(name, VersioningConfig(ENABLED))
            if upgrade_lock and not created and not self.object_lock_enabled(name):
                self.client.set_object_lock_config(name, ObjectLockConfig(None, None, None))

    def require_single_bucket(self, name: str, *, versioned: bool, object_lock: bool) -> None:
        """Check the one existing bucket of the single-bucket layout; never change it.

        ``name`` is the bucket or any vault bucket in it (``<bucket>/<role>``). It must
        exist, be versioned (if ``versioned``), have Object Lock (if ``object_lock``) and
        no default retention (it would retain every role's objects; retention is set per
        object). SingleBucketError (one line naming the bucket and what is missing)
        otherwise.
        """
        physical, _ = _at(name)
        where = f"bucket {physical} ([store] bucket)"
        try:
            status = self.versioning(physical)
        except NotFoundError:
            raise SingleBucketError(
                f"{where} does not exist: the vault never creates it; create it with "
                "versioning and Object Lock"
            ) from None
        missing = []
        if versioned and status != ENABLED:
            missing.append(f"versioning (it is {status or 'off'})")
        locked = self.object_lock_enabled(physical) if object_lock else True
        if not locked:
            missing.append("Object Lock")
        if missing:
            raise SingleBucketError(
                f"{where} has no {' and no '.join(missing)}: the layout needs "
                f"{'both' if len(missing) > 1 else 'it'} (the envelopes and a locked cold "
                "tier are retained object by object); use a bucket created with Object Lock"
            )
        if not object_lock:
            return
        with self._translate(f"object lock of {physical}"):
            config = self.client.get_object_lock_config(physical)
        if config.mode is not None:
            raise SingleBucketError(
                f"{where} has a default retention ({config.mode}): it would retain every "
                "role's objects; remove it (the vault retains cold objects one by one)"
            )

    def versioning(self, bucket: str) -> str | None:
        """The bucket's versioning status ("Enabled", "Suspended") or None if never set."""
        bucket, _ = _at(bucket)
        with self._translate(f"versioning of {bucket}"):
            status = self.client.get_bucket_versioning(bucket).status
        return str(status) if status else None

    def object_lock_enabled(self, bucket: str) -> bool:
        """Whether the bucket was created with Object Lock."""
        bucket, _ = _at(bucket)
        with self._translate(f"object lock of {bucket}"):
            try:
                self.client.get_object_lock_config(bucket)
            except S3Error as exc:
                if exc.code in {"ObjectLockConfigurationNotFoundError", "InvalidRequest"}:
                    return False
                raise
        return True

    def presigned_get(
        self, bucket: str, key: str, expires: timedelta, *, request_date: datetime | None = None
    ) -> str:
        """A URL that reads one object without credentials until ``expires`` from now (or
        from ``request_date``, the signing time)."""
        return self.presigned("GET", bucket, key, expires, request_date=request_date)

    def presigned(
        self,
        method: str,
        bucket: str,
        key: str,
        expires: timedelta,
        *,
        request_date: datetime | None = None,
    ) -> str:
        """A URL for one ``method`` (GET, PUT, HEAD) on one object, signed by this store's
        credential, valid until ``request_date`` (default now) plus ``expires``."""
        with self._translate(f"presign {bucket}/{key}"):
            return str(
                self.client.get_presigned_url(
                    method, *_at(bucket, key), expires=expires, request_date=request_date
                )
            )

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
                *_at(bucket, key),
                cast(BinaryIO, stream),
                length,
                content_type=content_type,
                part_size=self.part_size,
                retention=retention,
                legal_hold=legal_hold,
            )
        if retain_until is not None or legal_hold:
            self._verify_lock(bucket, key, result.version_id, retain_until, legal_hold)
        return WriteResult(result.etag or "", result.version_id)

    def put_bytes(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        retain_until: datetime | None = None,
        content_type: str = "application/json",
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> WriteResult:
        """Upload a small object held in memory.

        ``if_none_match`` writes only if no object has the key yet; ``if_match``
        only if the current object's ETag is the one given (S3 conditional writes).
        A lost race raises ConflictError and writes nothing.
        """
        if if_none_match or if_match is not None:
            if retain_until is not None:
                raise ValueError("a conditional write carries no retention")
            condition = {"If-None-Match": "*"} if if_none_match else {}
            if if_match is not None:
                condition["If-Match"] = f'"{if_match.strip(chr(34))}"'
            with self._translate(f"put {bucket}/{key}"):
                etag, version = self.client.put_conditional(
                    *_at(bucket, key), data, content_type, condition
                )
            return WriteResult(etag, version)
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
            response = self.client.get_object(*_at(bucket, key), version_id=version_id)
        try:
            yield _GuardedStream(response, self)
        finally:
            with contextlib.suppress(Exception):
                response.close()
                response.release_conn()

    def read_range(
        self, bucket: str, key: str, offset: int, length: int, version_id: str | None = None
    ) -> RangeRead:
        """Bytes ``[offset, offset + length)`` of an object, with one ranged GET.

        ``length`` must be positive (S3 has no empty range). The answer holds what the
        store returned, which is shorter than ``length`` only when the object is; its
        ``total`` is the object's size from the response's ``Content-Range``. Errors are
        translated as for :meth:`open` (a range past the end: StoreError, InvalidRange).
        """
        if offset < 0 or length <= 0:
            raise InvalidInputError(f"ranged read of {bucket}/{key}: bad range {offset}+{length}")
        with self._translate(f"get {bucket}/{key}"):
            response = self.client.get_object(
                *_at(bucket, key), offset=offset, length=length, version_id=version_id
            )
        try:
            stream = _GuardedStream(response, self)
            buf = bytearray(length)
            view = memoryview(buf)
            filled = 0
            while filled < length:
                n = stream.readinto(view[filled:])
                if not n:
                    break
                filled += n
            total = _content_range_total(response.headers.get("content-range"))
        finally:
            with contextlib.suppress(Exception):
                response.close()
                response.release_conn()
        if filled < length:
            del view
            buf = buf[:filled]
        return RangeRead(buf, total)

    def get_bytes(self, bucket: str, key: str, *, limit: int = 64 * 1024 * 1024) -> bytes:
        """Read a small object whole, refusing anything above ``limit`` bytes."""
        with self.open(bucket, key) as stream:
            data = stream.read(limit + 1)
        if len(data) > limit:
            raise StoreError(f"{bucket}/{key} is larger than {limit} bytes")
        return data

    def get_with_etag(
        self, bucket: str, key: str, *, limit: int = 1024 * 1024
    ) -> tuple[bytes, str]:
        """A small object and the ETag of that same read, for a later ``if_match`` write."""
        with self.open(bucket, key) as stream:
            data = stream.read(limit + 1)
            etag = str(stream.etag)
        if len(data) > limit:
            raise StoreError(f"{bucket}/{key} is larger than {limit} bytes")
        return data, etag

    def stat(self, bucket: str, key: str) -> ObjectInfo:
        """Size, ETag and time of one object."""
        with self._translate(f"stat {bucket}/{key}"):
            st = self.client.stat_object(*_at(bucket, key))
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
        physical, folder = _at(bucket)
        with self._translate(f"list {bucket}/{prefix}"):
            for obj in self.client.list_objects(
                physical,
                prefix=folder + prefix,
                recursive=recursive or versions,
                include_version=versions,
                start_after=folder + start_after if start_after is not None else None,
            ):
                yield ObjectInfo(
                    bucket,
                    (obj.object_name or "").removeprefix(folder),
                    obj.size or 0,
                    obj.etag or "",
                    obj.last_modified,
                    obj.version_id,
                    bool(obj.is_delete_marker),
                )

    def remove(self, bucket: str, key: str, version_id: str | None = None) -> None:
        """Delete an object (or one version); object lock refusals raise RetentionError."""
        with self._translate(f"delete {bucket}/{key}"):
            try:
                self.client.remove_object(*_at(bucket, key), version_id=version_id)
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
        physical, folder = _at(bucket)
        while True:
            # minio 7.2 has no public call for ListMultipartUploads; the private one is
            # stable across 7.x. It drops NextUploadIdMarker, so page on the last upload.
            with self._translate(f"list uploads {bucket}/{prefix}"):
                result = self.client._list_multipart_uploads(  # noqa: SLF001 - see above
                    physical,
                    prefix=folder + prefix,
                    key_marker=key_marker,
                    upload_id_marker=upload_id_marker,
                )
            for upload in result.uploads:
                if upload.upload_id:
                    yield UploadInfo(
                        bucket,
                        upload.object_name.removeprefix(folder),
                        upload.upload_id,
                        upload.initiated_time,
                    )
            if not result.is_truncated or not result.uploads:
                return
            key_marker = result.uploads[-1].object_name
            upload_id_marker = result.uploads[-1].upload_id

    def abort_incomplete_upload(self, bucket: str, key: str, upload_id: str) -> None:
        """Abort a multipart upload, freeing its parts; NotFoundError if it is unknown."""
        with self._translate(f"abort upload of {bucket}/{key}"):
            # minio 7.2 has no public AbortMultipartUpload either.
            self.client._abort_multipart_upload(*_at(bucket, key), upload_id)  # noqa: SLF001

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
                *_at(dst_bucket, dst_key),
                CopySource(*_at(src_bucket, src_key)),
                retention=retention,
                legal_hold=legal_hold,
            )
        if retain_until is not None or legal_hold:
            self._verify_lock(dst_bucket, dst_key, result.version_id, retain_until, legal_hold)
        return WriteResult(result.etag or "", result.version_id)

    def retention(
        self, bucket: str, key: str, version_id: str | None = None
    ) -> tuple[str, datetime] | None:
        """(mode, retain-until) of an object, or None without retention.

        Read from HeadObject's ``x-amz-object-lock-*`` headers, which AWS S3,
        MinIO, Ceph RGW and SeaweedFS all return; GetObjectRetention is not
        implemented everywhere.
        """
        headers = self._lock_headers(bucket, key, version_id)
        mode = headers.get("x-amz-object-lock-mode")
        until = headers.get("x-amz-object-lock-retain-until-date")
        if not mode or not until:
            return None
        return mode.upper(), _parse_time(until)

    def _lock_headers(self, bucket: str, key: str, version_id: str | None) -> dict[str, str]:
        with self._translate(f"retention of {bucket}/{key}"):
            st = self.client.stat_object(*_at(bucket, key), version_id=version_id)
        return {str(k).lower(): str(v) for k, v in (st.metadata or {}).items()}

    def _verify_lock(
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        retain_until: datetime | None,
        legal_hold: bool,
    ) -> None:
        """Check that a write's retention and legal hold took; apply them if not.

        Some S3 implementations drop lock headers on multipart uploads or copies;
        an object the vault means to lock is never left unlocked silently.
        """
        if retain_until is not None:
            found = self.retention(bucket, key, version_id)
            if found is None or found[0] != COMPLIANCE or found[1] < _whole_seconds(retain_until):
                with self._translate(f"retention of {bucket}/{key}"):
                    self.client.set_object_retention(
                        *_at(bucket, key),
                        Retention(COMPLIANCE, retain_until),
                        version_id=version_id,
                    )
                found = self.retention(bucket, key, version_id)
                if found is None or found[1] < _whole_seconds(retain_until):
                    raise StoreError(
                        f"object store at {self.endpoint} did not apply COMPLIANCE retention"
                        f" to {bucket}/{key}"
                    )
        if legal_hold and not self._held(bucket, key, version_id):
            with self._translate(f"legal hold on {bucket}/{key}"):
                self.client.enable_object_legal_hold(*_at(bucket, key), version_id=version_id)
            if not self._held(bucket, key, version_id):
                raise StoreError(
                    f"object store at {self.endpoint} did not apply a legal hold to {bucket}/{key}"
                )

    def _held(self, bucket: str, key: str, version_id: str | None) -> bool:
        headers = self._lock_headers(bucket, key, version_id)
        return headers.get("x-amz-object-lock-legal-hold", "").upper() == "ON"

    def set_retention(self, bucket: str, key: str, retain_until: datetime) -> None:
        """Apply COMPLIANCE retention until ``retain_until``."""
        with self._translate(f"retention of {bucket}/{key}"):
            self.client.set_object_retention(*_at(bucket, key), Retention(COMPLIANCE, retain_until))

    def legal_hold(self, bucket: str, key: str, version_id: str | None = None) -> bool:
        """Whether an object (or one version) is under legal hold (HeadObject's lock headers)."""
        return self._held(bucket, key, version_id)

    def set_legal_hold(self, bucket: str, key: str, on: bool) -> None:
        """Turn an object's legal hold on or off."""
        with self._translate(f"legal hold on {bucket}/{key}"):
            if on:
                self.client.enable_object_legal_hold(*_at(bucket, key))
            else:
                self.client.disable_object_legal_hold(*_at(bucket, key))


class _GuardedStream(io.RawIOBase):
    """A response body whose transport errors surface as StoreUnavailableError."""

    def __init__(self, response: Any, store: ObjectStore) -> None:
        super().__init__()
        self._response = response
        self._store = store

    @property
    def etag(self) -> str:
        """The ETag the response carried, unquoted."""
        return str(self._response.headers.get("etag", "")).strip('"')

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
    return BUCKET_ROLES


def bucket_needs(settings: Settings) -> dict[str, tuple[bool, bool]]:
    """Each bucket role's (versioned, object lock): tiers as configured, the rest unlocked
    but envelopes.

    The envelopes bucket is versioned with object lock (and no default
    retention): a cold artifact's envelopes are retained as long as its
    ciphertext, while hot and warm envelopes stay deletable. An existing
    envelopes bucket gets versioning and object lock on the next init.
    """
    needs: dict[str, tuple[bool, bool]] = {}
    for role in bucket_roles():
        tier = settings.tiers.get(role)
        needs[role] = (
            tier.versioned if tier else role in {"audit", "envelopes"},
            tier.object_lock if tier else role == "envelopes",
        )
    return needs


def ensure_layout(store: ObjectStore, settings: Settings) -> None:
    """Create every bucket with the versioning and object lock :func:`bucket_needs` says.

    The envelopes bucket of a vault made before it was locked is upgraded in
    place; a tier bucket without the object lock it needs is left for the
    capability probe to refuse. In the single-bucket layout nothing is created: the
    one bucket is checked (:meth:`ObjectStore.require_single_bucket`).
    """
    needs = bucket_needs(settings)
    if settings.store.single_bucket:
        # One bucket holds every role: it needs what any role needs.
        store.require_single_bucket(
            settings.store.single_bucket,
            versioned=any(v for v, _ in needs.values()),
            object_lock=any(lock for _, lock in needs.values()),
        )
        return
    for role, (versioned, object_lock) in needs.items():
        store.ensure_bucket(
            settings.store.bucket(role),
            versioned=versioned,
            object_lock=object_lock,
            upgrade_lock=role == "envelopes",
        )


@dataclass(frozen=True)
class DvcRemote:
    """Where a DVC remote points and the credential it uses: the ``dvc`` role's, never the
    admin's."""

    url: str
    endpoint_url: str
    access_key: str
    secret_key: str = field(repr=False)


def dvc_remote(settings: Settings) -> DvcRemote:
    """The vault's DVC bucket and the ``dvc`` role credential for a DVC remote.

    The embedded store issues that credential (:meth:`EmbeddedStore.credentials`); an
    external store's is ``WEIGHTVAULT_DVC_ACCESS_KEY``/``_SECRET_KEY``, made there with
    the policy ``weightvault store policy dvc`` prints. Never the vault's own credential:
    StoreRoleError when none is configured, or when it is the vault's own key.
    """
    from weightvault.store._server import EmbeddedStore

    url = f"s3://{settings.store.bucket('dvc')}/"
    scheme = "https" if settings.store.secure else "http"
    if settings.store.embedded:
        server = EmbeddedStore.of(settings)
        creds = server.credentials("dvc")
        return DvcRemote(url, f"{scheme}://{server.endpoint()}", creds.access_key, creds.secret_key)
    store = settings.store
    if not (store.dvc_access_key and store.dvc_secret_key):
        raise StoreRoleError(
            "a DVC remote on an external store needs its own credential: create one with the "
            "policy `weightvault store policy dvc` prints and set WEIGHTVAULT_DVC_ACCESS_KEY and "
            "WEIGHTVAULT_DVC_SECRET_KEY"
        )
    if hmac.compare_digest(store.dvc_access_key, store.access_key):
        raise StoreRoleError(
            "WEIGHTVAULT_DVC_ACCESS_KEY is the vault's own store credential; a DVC remote gets "
            "the dvc role's credential only"
        )
    return DvcRemote(
        url, f"{scheme}://{store.endpoint}", store.dvc_access_key, store.dvc_secret_key
    )


def aws_credential_chain() -> Provider:
    """The AWS default credential chain through the minio SDK's providers, in AWS's order:
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``), the shared
    credentials file (``AWS_SHARED_CREDENTIALS_FILE``, profile ``AWS_PROFILE``), then
    IAM (web identity, ECS, EC2 instance metadata; asked briefly: off AWS it is absent).
    """
    metadata = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=1.0, read=2.0), retries=urllib3.Retry(total=1)
    )
    return ChainedProvider(
        [EnvAWSProvider(), AWSConfigProvider(), IamAwsProvider(http_client=metadata)]
    )


def _chain_credentials(endpoint: str) -> Provider:
    """The AWS chain, with a credential found now (ConfigError naming where it looked)."""
    from weightvault.logs import register_secret

    chain = aws_credential_chain()
    try:
        found = chain.retrieve()
    except _CHAIN_ERRORS:
        raise ConfigError(
            f"WEIGHTVAULT_S3_CREDENTIALS=aws: no AWS credential for {endpoint} in "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the shared credentials file "
            "(AWS_SHARED_CREDENTIALS_FILE, profile AWS_PROFILE) or IAM"
        ) from None
    register_secret(found.secret_key)
    if found.session_token:
        register_secret(found.session_token)
    return chain


def connect(settings: Settings) -> ObjectStore:
    """An ObjectStore for the configured endpoint, embedded or external."""
    from weightvault.store._server import EmbeddedStore

    role = role_named(settings.store.role).name
    chain: Provider | None = None
    if settings.store.embedded:
        embedded = EmbeddedStore.of(settings)
        endpoint = embedded.endpoint()
        creds = embedded.credentials(role)
        access, secret = creds.access_key, creds.secret_key
        local_data: Path | None = embedded.data_dir
    else:
        local_data = None
        endpoint, access, secret = (
            settings.store.endpoint,
            settings.store.access_key,
            settings.store.secret_key,
        )
        if settings.store.credentials == "aws":
            chain = _chain_credentials(endpoint)
    return ObjectStore(
        endpoint,
        access,
        secret,
        secure=settings.store.secure,
        region=settings.store.region,
        part_size=settings.store.part_size,
        local_data=local_data,
        role=role,
        credentials=chain,
    )
