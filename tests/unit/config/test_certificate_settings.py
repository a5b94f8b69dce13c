"""Which promotions need a certificate: `[policy]`, WEIGHTVAULT_CERTIFICATE_TIERS."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO
from weightvault.config import load_settings
from weightvault.errors import ConfigError


def test_the_packaged_default_requires_a_certificate_for_cold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEIGHTVAULT_CERTIFICATE_TIERS", raising=False)
    assert load_settings(REPO / "config", tmp_path / "home").certificate_tiers == ("cold",)


def test_the_file_can_require_it_for_warm_and_the_environment_replaces_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEIGHTVAULT_CERTIFICATE_TIERS", raising=False)
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    toml = config / "weightvault.toml"
    toml.write_text(
        toml.read_text().replace(
            "warm_requires_certificate = false", "warm_requires_certificate = true"
        )
    )
    assert load_settings(config, tmp_path / "home").certificate_tiers == ("warm", "cold")
    for value, tiers in (("none", ()), ("cold", ("cold",)), (" Warm , cold", ("warm", "cold"))):
        monkeypatch.setenv("WEIGHTVAULT_CERTIFICATE_TIERS", value)
        assert load_settings(config, tmp_path / "home").certificate_tiers == tiers
    for bad in ("", "hot", "none,cold"):
        monkeypatch.setenv("WEIGHTVAULT_CERTIFICATE_TIERS", bad)
        with pytest.raises(ConfigError, match="WEIGHTVAULT_CERTIFICATE_TIERS is invalid"):
            load_settings(config, tmp_path / "home")
