"""The witnesses a vault requires: `[witnesses] required`, WEIGHTVAULT_WITNESSES."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.conftest import REPO
from weightvault.config import load_settings
from weightvault.crypto.notes import Ed25519NoteSigner
from weightvault.errors import ConfigError
from weightvault.lifecycle.witness import required_witnesses
from weightvault.records import Witness

VKEY = "witness.test/w1+a85238ea+BBh6k1K9imaju0v7N13RnsE10BF5ZAfhi1qEV3k1mqok"
OTHER = "witness.test/w2+0011aaff+BBh6k1K9imaju0v7N13RnsE10BF5ZAfhi1qEV3k1mqok"


def _config(root: Path, witnesses: str) -> Path:
    target = root / "config"
    shutil.copytree(REPO / "config", target)
    text = (target / "weightvault.toml").read_text().replace("required = []", witnesses)
    (target / "weightvault.toml").write_text(text)
    return target


def test_no_witness_is_required_by_default(tmp_path: Path) -> None:
    settings = load_settings(REPO / "config", tmp_path / "home")
    assert settings.witnesses == ()
    assert settings.last_checkpoint_path == (tmp_path / "home").resolve() / (
        "log-last-seen.checkpoint"
    )


def test_the_file_lists_witnesses_and_the_environment_replaces_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, f'required = ["{VKEY}"]')
    assert load_settings(config, tmp_path / "home").witnesses == (VKEY,)
    monkeypatch.setenv("WEIGHTVAULT_WITNESSES", f"{VKEY}, {OTHER}")
    assert load_settings(config, tmp_path / "home").witnesses == (VKEY, OTHER)
    monkeypatch.setenv("WEIGHTVAULT_WITNESSES", "")
    assert load_settings(config, tmp_path / "home").witnesses == ()


@pytest.mark.parametrize(
    "line", ['required = ["not a vkey"]', 'required = "one"', 'require = ["x"]']
)
def test_a_malformed_witness_list_is_one_line_naming_it(tmp_path: Path, line: str) -> None:
    config = _config(tmp_path, line)
    with pytest.raises(ConfigError, match="witnesses"):
        load_settings(config, tmp_path / "home")


def test_a_malformed_environment_witness_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEIGHTVAULT_WITNESSES", "w1+zz+abc")
    with pytest.raises(ConfigError, match="WEIGHTVAULT_WITNESSES"):
        load_settings(REPO / "config", tmp_path / "home")


def test_required_witnesses_are_cosignature_verifiers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    witness = Witness.create(tmp_path / "w", "witness.test/w1")
    monkeypatch.setenv("WEIGHTVAULT_WITNESSES", witness.vkey)
    (verifier,) = required_witnesses(load_settings(REPO / "config", tmp_path / "home"))
    assert verifier.name == "witness.test/w1"
    # A log's own (type 0x01) key is not a witness's.
    log_vkey = Ed25519NoteSigner("log.test", ed25519.Ed25519PrivateKey.generate()).vkey
    monkeypatch.setenv("WEIGHTVAULT_WITNESSES", log_vkey)
    with pytest.raises(ConfigError, match="not a cosignature key"):
        required_witnesses(load_settings(REPO / "config", tmp_path / "home"))
    monkeypatch.setenv("WEIGHTVAULT_WITNESSES", OTHER)  # well-formed, but its id is wrong
    with pytest.raises(ConfigError, match=r"witness\.test/w2"):
        required_witnesses(load_settings(REPO / "config", tmp_path / "home"))
