"""`[detect]`: overrides of the detection policy's thresholds, strictly validated."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO
from weightvault.config import load_settings
from weightvault.errors import ConfigError


def _with(tmp_path: Path, table: str) -> Path:
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    toml = config / "weightvault.toml"
    toml.write_text(toml.read_text().replace("[detect]\n", f"[detect]\n{table}\n"))
    return config


def test_the_packaged_default_overrides_nothing(tmp_path: Path) -> None:
    assert load_settings(REPO / "config", tmp_path / "home").detect_thresholds == {}


def test_the_file_overrides_only_what_it_sets(tmp_path: Path) -> None:
    config = _with(tmp_path, "denied_burst = 9\nwindow_seconds = 60")
    settings = load_settings(config, tmp_path / "home")
    assert settings.detect_thresholds == {"denied_burst": 9, "window_seconds": 60}


@pytest.mark.parametrize(
    "table",
    ["denied_burst = 0", "read_spike = 3", 'integrity_failures = "2"', "window_seconds = 1.5"],
)
def test_a_bad_threshold_is_a_config_error(tmp_path: Path, table: str) -> None:
    with pytest.raises(ConfigError):
        load_settings(_with(tmp_path, table), tmp_path / "home")
