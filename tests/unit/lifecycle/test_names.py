"""Names, labels and aliases: recorded in the signed log, read back from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_tree
from tests.support.artifacts import ingest_model
from tests.support.payloads import weights
from weightvault.artifacts import Vault
from weightvault.errors import AliasNotFoundError, InvalidInputError, PolicyError
from weightvault.lifecycle import ingest, names
from weightvault.lifecycle.promote import promote
from weightvault.lifecycle.rebuild import rebuild_catalog
from weightvault.lifecycle.validate import validate_artifact


def _kinds(vault: Vault, artifact_id: str) -> list[str]:
    return [e.event.kind for e in vault.history(artifact_id)]


def _put(vault: Vault, src: Path, name: str, **labels: str) -> str:
    return ingest.put(vault, src, name, labels=labels).artifact_id


def test_same_content_under_a_new_name_and_labels_is_recorded(vault: Vault, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "m", {"w.bin": weights(2000)})
    first = _put(vault, src, "digits", team="vision")
    again = ingest.put(vault, src, "mnist-digits", labels={"license": "MIT", "team": "vision"})
    assert again.duplicate_of == first
    found = vault.logged_names().of(first)
    assert found.names == ["digits", "mnist-digits"]
    assert found.labels == {"license": "MIT", "team": "vision"}
    # Only what is new is recorded: the same put once more adds no amendment.
    before = _kinds(vault, first)
    assert before.count("artifact.named") == 1
    assert before.count("artifact.labeled") == 1
    ingest.put(vault, src, "mnist-digits", labels={"license": "MIT"})
    after = _kinds(vault, first)
    assert after.count("artifact.named") == 1
    assert after.count("artifact.labeled") == 1
    # The catalog is an index: rebuilt from the store and the log, it shows the same.
    rebuild_catalog(vault)
    assert vault.logged_names().of(first).names == ["digits", "mnist-digits"]
    assert vault.show(first)["labels"] == {"license": "MIT", "team": "vision"}


def test_label_amendments_apply_in_log_order(vault: Vault, tmp_path: Path) -> None:
    artifact_id = _put(vault, make_tree(tmp_path / "m", {"w.bin": weights(999)}), "m", a="1")
    assert names.label(vault, artifact_id, {"b": "2", "a": "3"}) == {"a": "3", "b": "2"}
    assert names.label(vault, artifact_id, {}, ["a"]) == {"b": "2"}
    assert vault.effective_labels(artifact_id, {"a": "1"}) == {"b": "2"}
    logged = vault.history(artifact_id, {"artifact.labeled"})
    assert [e.event.details["remove"] for e in logged] == [[], ["a"]]
    assert all(e.event.principal["name"] == "alice" for e in logged)
    with pytest.raises(InvalidInputError, match="label key"):
        names.label(vault, artifact_id, {"bad key": "x"})
    with pytest.raises(InvalidInputError, match="give labels"):
        names.label(vault, artifact_id, {})


def test_a_license_added_later_satisfies_the_cold_gate(vault: Vault, model_repo: Path) -> None:
    artifact_id = ingest_model(vault, model_repo, license_=None)
    validate_artifact(vault, artifact_id, model_repo)
    promote(vault, artifact_id, "warm", justification="staging")
    with pytest.raises(PolicyError, match="license"):
        promote(vault, artifact_id, "cold", justification="release")
    names.label(vault, artifact_id, {"license": "apache-2.0"})
    with pytest.raises(PolicyError) as refused:  # still two approvals short, but licensed
        promote(vault, artifact_id, "cold", justification="release")
    assert "two_person" in str(refused.value)
    assert "license" not in str(refused.value)


def test_aliases_resolve_wherever_an_id_is_accepted(vault: Vault, tmp_path: Path) -> None:
    v1_src = make_tree(tmp_path / "v1", {"w.bin": weights(1500)})
    v1 = _put(vault, v1_src, "digits")
    v2 = _put(vault, make_tree(tmp_path / "v2", {"w.bin": weights(1500)}), "digits")
    other = _put(vault, make_tree(tmp_path / "o", {"w.bin": weights(10)}), "other")
    with pytest.raises(AliasNotFoundError):
        vault.resolve("digits@champion")
    move = names.set_alias(vault, "digits@champion", v1)
    assert (move.artifact_id, move.previous) == (v1, None)
    assert vault.resolve("digits@champion").id == v1
    vault.get("digits@champion", tmp_path / "out")
    assert (tmp_path / "out" / "w.bin").read_bytes() == (v1_src / "w.bin").read_bytes()
    assert vault.verify("digits@champion").artifact_id == v1
    moved = names.set_alias(vault, "digits@champion", v2[:16])
    assert (moved.artifact_id, moved.previous) == (v2, v1)
    assert vault.resolve("digits@champion").id == v2
    assert vault.show(v2)["aliases"] == ["digits@champion"]
    assert vault.show(v1)["aliases"] == []
    with pytest.raises(InvalidInputError, match="not named digits"):
        names.set_alias(vault, "digits@champion", other)
    with pytest.raises(InvalidInputError, match="NAME@ALIAS"):
        names.set_alias(vault, "digits@", v1)
    assert [t.alias for t in names.aliases(vault, "digits")] == ["digits@champion"]
    names.remove_alias(vault, "digits@champion")
    with pytest.raises(AliasNotFoundError):
        vault.resolve("digits@champion")
    with pytest.raises(AliasNotFoundError):
        names.remove_alias(vault, "digits@champion")
    kinds = [k for k in _kinds(vault, v1) + _kinds(vault, v2) if k.startswith("alias.")]
    assert sorted(kinds) == ["alias.removed", "alias.set", "alias.set"]
