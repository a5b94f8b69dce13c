"""Store roles in the single-bucket layout, enforced by the real embedded SeaweedFS.

The store of the module runs with the role identities whose IAM policies
:func:`weightvault.store.iam_policy` makes for ``[store] bucket``: every role
reaches only its prefixes ``<role>/...`` of that one bucket, lists only under
them, and nothing of the bucket owner's objects outside them. Through the vault
the ingester puts and the reader verifies with their own credentials.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from minio import Minio

from tests.conftest import REPO, make_tree
from tests.support.s3_peers import denied as _denied
from tests.support.services import service_timeout
from weightvault.artifacts import Vault
from weightvault.config import Settings, load_settings
from weightvault.lifecycle import ingest
from weightvault.lifecycle.bootstrap import init_vault
from weightvault.store import EmbeddedStore, iam_policy
from weightvault.store.layout import manifest_key

OUTSIDE = "outside/keep.txt"


@dataclass(frozen=True)
class OneBucketStore:
    settings: Settings
    server: EmbeddedStore
    bucket: str
    put_id: str

    def client(self, role: str) -> Minio:
        creds = self.server.credentials(role)
        return Minio(self.server.endpoint(), creds.access_key, creds.secret_key, secure=False)

    def as_role(self, role: str) -> Settings:
        return replace(self.settings, store=replace(self.settings.store, role=role))


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OneBucketStore]:
    root = tmp_path_factory.mktemp("single-bucket-roles")
    bucket = f"one-{uuid.uuid4().hex[:12]}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WEIGHTVAULT_STORE_BUCKET", bucket)
        mp.setenv("WEIGHTVAULT_CERTIFICATE_TIERS", "none")
        settings = load_settings(REPO / "config", home=root / "home")
        server = EmbeddedStore.of(settings)
        try:
            server.up(timeout=service_timeout())
            owner = server.credentials()
            raw = Minio(server.endpoint(), owner.access_key, owner.secret_key, secure=False)
            raw.make_bucket(bucket, object_lock=True)
            raw.put_object(bucket, OUTSIDE, io.BytesIO(b"owner's"), 7)
            init_vault(settings)
            ingester = Vault.open(replace(settings, store=replace(settings.store, role="ingester")))
            put = ingest.put(ingester, make_tree(root / "m", {"w.bin": b"w" * 4096}), "m1")
            yield OneBucketStore(settings, server, bucket, put.artifact_id)
        finally:
            server.down()


def _body() -> tuple[io.BytesIO, int]:
    return io.BytesIO(b"forged"), 6


def test_the_policies_name_only_the_vault_prefixes_of_the_one_bucket(one: OneBucketStore) -> None:
    for role in ("admin", "ingester", "reader", "promoter", "auditor", "dvc"):
        for statement in iam_policy(role, one.settings)["Statement"]:
            for resource in statement["Resource"]:
                assert resource.startswith(f"arn:aws:s3:::{one.bucket}"), resource
                if "/" in resource.removeprefix("arn:aws:s3:::"):
                    key = resource.split("/", 1)[1]
                    assert key.split("/", 1)[0] in {
                        "hot",
                        "warm",
                        "cold",
                        "quarantine",
                        "envelopes",
                        "audit",
                        "dvc",
                        "grants",
                    }, resource
                elif {"s3:ListBucket", "s3:ListBucketVersions"} & set(statement["Action"]):
                    prefixes = statement["Condition"]["StringLike"]["s3:prefix"]
                    assert all(p.endswith("/*") for p in prefixes), statement


def test_the_ingester_puts_under_hot_and_reaches_nothing_else(one: OneBucketStore) -> None:
    ing = one.client("ingester")
    key = f"hot/{manifest_key(one.put_id)}"
    assert ing.get_object(one.bucket, key).read()
    assert [o.object_name for o in ing.list_objects(one.bucket, "hot/", recursive=True)]
    assert _denied(lambda: ing.remove_object(one.bucket, key))
    assert _denied(lambda: ing.get_object(one.bucket, OUTSIDE).read())
    assert _denied(lambda: ing.put_object(one.bucket, "outside/x", *_body()))
    assert _denied(lambda: list(ing.list_objects(one.bucket, "outside/")))
    assert _denied(lambda: list(ing.list_objects(one.bucket, "", recursive=True)))
    assert _denied(lambda: ing.put_object(one.bucket, f"warm/{manifest_key('x')}", *_body()))
    assert _denied(lambda: list(ing.list_objects(one.bucket, "warm/")))


def test_the_reader_verifies_and_the_dvc_role_stays_under_dvc(one: OneBucketStore) -> None:
    Vault.open(one.as_role("reader")).verify(one.put_id)
    reader = one.client("reader")
    assert _denied(lambda: reader.get_object(one.bucket, OUTSIDE).read())
    assert _denied(lambda: reader.put_object(one.bucket, f"hot/{manifest_key('x')}", *_body()))
    dvc = one.client("dvc")
    dvc.put_object(one.bucket, "dvc/files/md5/ab/cd", io.BytesIO(b"blob"), 4)
    assert [o.object_name for o in dvc.list_objects(one.bucket, "dvc/", recursive=True)] == [
        "dvc/files/md5/ab/cd"
    ]
    assert _denied(lambda: dvc.get_object(one.bucket, f"hot/{manifest_key(one.put_id)}").read())
    assert _denied(lambda: list(dvc.list_objects(one.bucket, "hot/")))
    assert _denied(lambda: dvc.get_object(one.bucket, OUTSIDE).read())
