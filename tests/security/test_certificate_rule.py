"""Cold needs a reproducibility certificate (issue 13, item 5): Rego rule ``reproducible``.

One vault with its own embedded store (the DVC role credential is real, as in
tests/e2e/test_recover.py), one reference-model ingest for the module: validated,
promoted to warm and approved for cold by two enrolled approvers. With the
packaged settings (the rule on for cold), the cold promotion is refused without a
certificate, with a certificate only in the store, and with a logged one about
other content; after a real ``recover`` it is admitted and the promotion
attestation, the CLI and the report name the certificate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select, update
from support.durable_store import cli
from support.services import start_vault_store

from tasks.reports import promotion_markdown
from tests.support.approvals import approved
from tests.support.model_repos import reference_copy
from weightvault._json import canonical_json
from weightvault.artifacts import Vault, write_statement
from weightvault.catalog._catalog import log_entries
from weightvault.config import Settings, load_settings
from weightvault.errors import IntegrityError, PolicyError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.certificate import check_certificate
from weightvault.lifecycle.promote import PromotionResult, promote
from weightvault.lifecycle.recover import CERTIFICATE_KIND, KIND, recover
from weightvault.lifecycle.validate import validate_artifact
from weightvault.provenance import (
    build_signed_statement,
    capture_provenance,
    find_attestation,
    trust_root,
)
from weightvault.store import EmbeddedStore, dvc_remote
from weightvault.store.layout import signed_statement_key

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Warm:
    settings: Settings
    artifact_id: str


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory, model_repo: Path) -> Iterator[Warm]:
    root = tmp_path_factory.mktemp("certrule")
    settings = load_settings(REPO / "config", home=root / "home")
    start_vault_store(settings)
    try:
        # The session's reference repo, copied: this module's remote is its own store.
        repo = reference_copy(model_repo, root / "digits-repo", dvc_remote(settings))
        vault = Vault.open(settings)
        provenance = capture_provenance(
            repo,
            run_id="run-digits",
            creator="alice",
            lock_file=None,
            parent=None,
            allow_incomplete=False,
        )
        artifact_id = ingest.put(
            vault,
            repo / "model",
            "digits",
            labels={"license": "apache-2.0"},
            provenance=provenance,
            model_repo=repo,
        ).artifact_id
        assert validate_artifact(vault, artifact_id, repo).status == "passed"
        promote(vault, artifact_id, "warm", justification="staging")
        approved(vault, artifact_id, "cold")
        yield Warm(settings, artifact_id)
    finally:
        EmbeddedStore.of(settings).down()


@pytest.fixture
def env_home(warm: Warm, monkeypatch: pytest.MonkeyPatch) -> Warm:
    """The CLI finds the module's vault, with the packaged settings (no override)."""
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(warm.settings.home))
    monkeypatch.delenv("WEIGHTVAULT_CERTIFICATE_TIERS", raising=False)
    return warm


def _refused(vault: Vault, artifact_id: str) -> str:
    with pytest.raises(PolicyError) as refused:
        promote(vault, artifact_id, "cold", justification="release 1.0")
    assert vault.resolve(artifact_id).tier == "warm"
    return refused.value.message


def test_without_a_certificate_cold_is_refused_naming_the_rule(env_home: Warm) -> None:
    # The packaged settings require it (nothing in this module turns it on).
    assert env_home.settings.certificate_tiers == ("cold",)
    proc = cli("promote", env_home.artifact_id, "--to", "cold", "--justification", "release")
    assert proc.returncode == 6, proc.stderr
    out = proc.stderr + proc.stdout
    assert "reproducible: cold needs a reproducibility certificate in the log" in out
    assert f"weightvault recover {env_home.artifact_id}" in out
    # Approvals were given: the certificate is the only thing missing.
    assert "two_person" not in out
    assert "license" not in out
    assert "Traceback" not in out
    assert Vault.open(env_home.settings).resolve(env_home.artifact_id).tier == "warm"


def test_a_certificate_in_the_store_but_not_in_the_log_does_not_count(warm: Warm) -> None:
    vault = Vault.open(warm.settings)
    manifest, dek = vault.load_manifest(warm.artifact_id, "warm")
    del dek
    # A well-formed certificate, signed with the vault's own key, put where certificates
    # live, but named by no log entry (e.g. by an insider with the keystore and the bucket).
    predicate = {
        "artifact_id": warm.artifact_id,
        "outputs": {
            "content_digest": manifest.content_digest,
            "files": [
                {"path": f.path, "sha256": f.sha256, "size": f.size} for f in manifest.model_files
            ],
        },
    }
    data, _ = build_signed_statement(
        vault.keys,
        kind=CERTIFICATE_KIND,
        subject_name=manifest.name,
        subject_sha256=manifest.content_digest,
        predicate=predicate,
    )
    digest = hashlib.sha256(data).hexdigest()
    key = signed_statement_key(digest)
    vault.store.put_bytes(vault.bucket("audit"), key, data)
    message = _refused(vault, warm.artifact_id)
    assert "reproducible: cold needs a reproducibility certificate in the log" in message

    # The catalog's index forged to show a recovery naming it: the log does not back it.
    (row,) = [
        r
        for r in vault.catalog.log_search(
            artifact_id=warm.artifact_id, kind="artifact.promotion", phase="outcome"
        )
        if r["entry"]["outcome"] == "ok"
    ]
    forged = row["entry"]
    forged["kind"] = KIND
    forged["details"] = {"statement": {"kind": CERTIFICATE_KIND, "key": key, "sha256": digest}}
    where = log_entries.c.idx == row["idx"]
    with vault.catalog.engine.begin() as conn:
        original = conn.execute(select(log_entries.c.kind, log_entries.c.entry).where(where)).one()
        conn.execute(
            update(log_entries)
            .where(where)
            .values(kind=KIND, entry=canonical_json(forged).decode())
        )
    try:
        check = check_certificate(vault, warm.artifact_id, manifest, required=True)
        assert not check.present
        assert "index of the log was tampered with" in check.reason
        # Fails closed before any gate admits it: the move is stopped, nothing moves.
        with pytest.raises(IntegrityError, match="index of the log was tampered with"):
            promote(vault, warm.artifact_id, "cold", justification="release 1.0")
    finally:
        with vault.catalog.engine.begin() as conn:
            conn.execute(
                update(log_entries).where(where).values(kind=original.kind, entry=original.entry)
            )
    assert vault.resolve(warm.artifact_id).tier == "warm"


def test_a_logged_certificate_about_other_content_is_refused(warm: Warm) -> None:
    vault = Vault.open(warm.settings)
    manifest, dek = vault.load_manifest(warm.artifact_id, "warm")
    del dek
    other = "sha256:" + hashlib.sha256(b"another model").hexdigest()
    # A recovery outcome in the log naming a trusted-signed certificate of other content
    # (what a recover that certified the wrong build, or another artifact's, would log).
    with vault.operation(KIND, warm.artifact_id, "warm", {}) as op:
        write_statement(
            vault,
            op,
            CERTIFICATE_KIND,
            {"artifact_id": warm.artifact_id, "outputs": {"content_digest": other, "files": []}},
            subject_name=manifest.name,
            subject_sha256=other,
        )
    check = check_certificate(vault, warm.artifact_id, manifest, required=True)
    assert check.present
    assert not check.valid
    assert "other content" in check.reason
    message = _refused(vault, warm.artifact_id)
    assert "reproducible: cold needs a valid reproducibility certificate" in message
    assert "about other content than the artifact's" in message

    # The same subject as the artifact, but file digests that are not the manifest's.
    with vault.operation(KIND, warm.artifact_id, "warm", {}) as op:
        write_statement(
            vault,
            op,
            CERTIFICATE_KIND,
            {
                "artifact_id": warm.artifact_id,
                "outputs": {
                    "content_digest": manifest.content_digest,
                    "files": [{"path": "model.safetensors", "sha256": "0" * 64, "size": 1}],
                },
            },
            subject_name=manifest.name,
            subject_sha256=manifest.content_digest,
        )
    message = _refused(vault, warm.artifact_id)
    assert "its file digests are not the manifest's" in message


# Runs while the module's artifact is warm (the next test promotes it to cold), after the
# previous test logged a certificate about other content.
def test_the_cold_review_form_shows_what_the_gate_will_find(env_home: Warm) -> None:
    from tasks import gate_tasks
    from tasks.reports import certificate_markdown
    from weightvault.lifecycle import promote as promotion

    vault = Vault.open(env_home.settings)
    p = promotion.plan(vault, env_home.artifact_id, "cold", justification="release")
    check = gate_tasks.certificate.fn(p)
    manifest, dek = vault.load_manifest(env_home.artifact_id, "warm")
    del dek
    assert check == check_certificate(vault, env_home.artifact_id, manifest, required=True)
    text = certificate_markdown(check, env_home.artifact_id)
    assert f"## Reproducibility certificate of `{env_home.artifact_id}`" in text
    # The previous test logged a certificate about other content: the form shows what the
    # gate will find, that one, not valid, and why.
    assert check.valid is False
    assert "**not valid**" in text
    assert "its file digests are not the manifest's" in text


def test_after_recover_cold_is_admitted_and_the_attestation_names_the_certificate(
    env_home: Warm,
) -> None:
    vault = Vault.open(env_home.settings)
    report = recover(vault, env_home.artifact_id)
    assert report.certificate is not None
    proc = cli("promote", env_home.artifact_id, "--to", "cold", "--justification", "release")
    assert proc.returncode == 0, proc.stderr
    assert report.certificate["key"] in proc.stdout
    assert vault.resolve(env_home.artifact_id).tier == "cold"

    att = find_attestation(
        vault.store,
        vault.bucket("audit"),
        env_home.artifact_id,
        trust_root(vault.keys),
        vault.resolve(env_home.artifact_id).content_digest,
        kind="promotion",
        match={"from": "warm", "to": "cold"},
    )
    assert att is not None
    named = att.predicate["certificate"]
    assert named["required"] is True
    assert named["valid"] is True
    assert named["statement"] == report.certificate
    # The report (CLI text and the Prefect markdown artifact) says which one satisfied it.
    result = PromotionResult(
        env_home.artifact_id, "warm", "cold", att.key, "", (), None, False, named
    )
    markdown = promotion_markdown(env_home.artifact_id, "cold", (), result)
    assert "reproducibility certificate required; satisfied by " + report.certificate["key"] in (
        markdown
    )
