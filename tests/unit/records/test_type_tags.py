"""Stored formats carry a versioned type tag; readers refuse a tag they do not know."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import make_tree
from weightvault._json import canonical_json
from weightvault.artifacts import Vault
from weightvault.errors import IntegrityError
from weightvault.lifecycle import ingest, quarantine
from weightvault.records import Event, Manifest
from weightvault.store.layout import manifest_key, quarantine_marker_key


def _retagged(data: bytes, tag: str) -> bytes:
    doc = json.loads(data)
    doc["type"] = tag
    return canonical_json(doc)


def test_a_manifest_with_an_unknown_version_is_refused(vault: Vault, tmp_path: Path) -> None:
    art = ingest.put(vault, make_tree(tmp_path / "m", {"w": b"w" * 100}), "m").artifact_id
    data = vault.store.get_bytes(vault.bucket("hot"), manifest_key(art))
    Manifest.parse(data)
    with pytest.raises(IntegrityError):
        Manifest.parse(_retagged(data, "weightvault.manifest/v2"))


def test_an_event_with_an_unknown_version_is_refused() -> None:
    event = Event.new(
        "artifact.read",
        phase="outcome",
        op="op-1",
        principal={"name": "alice"},
        client={"host": "hmac-sha256:00", "pid": 1, "process": "t", "flow_run": None},
        artifact_id="wv-20260101-0000000000000000",
        outcome="ok",
        details={"files": 1},
    )
    assert Event.parse(event.to_bytes()) == event
    for tag in ("weightvault.event/v1", "weightvault.event/v3"):
        with pytest.raises(IntegrityError):
            Event.parse(_retagged(event.to_bytes(), tag))


def test_a_quarantine_marker_with_an_unknown_tag_or_artifact_is_refused(
    vault: Vault, tmp_path: Path
) -> None:
    art = ingest.put(vault, make_tree(tmp_path / "m", {"w": b"w"}), "m").artifact_id
    quarantine.quarantine(vault, art, reason="suspicious")
    key = quarantine_marker_key(art)
    good = vault.store.get_bytes(vault.bucket("quarantine"), key)
    assert quarantine.read_marker(vault, art) == json.loads(good)
    vault.store.put_bytes(
        vault.bucket("quarantine"), key, _retagged(good, "weightvault.quarantine/v9")
    )
    with pytest.raises(IntegrityError, match="unknown type"):
        quarantine.read_marker(vault, art)
    other = json.loads(good) | {"artifact_id": "wv-20260101-00000000deadbeef"}
    vault.store.put_bytes(vault.bucket("quarantine"), key, canonical_json(other))
    with pytest.raises(IntegrityError, match="unknown type or artifact"):
        quarantine.read_marker(vault, art)
