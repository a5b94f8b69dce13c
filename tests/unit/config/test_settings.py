"""The settings loader: file override order, environment overrides, one-line errors."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO
from weightvault.config import child_environment, environment, load_settings, packaged_config_dir
from weightvault.errors import ConfigError

SRC = REPO / "src" / "weightvault"


def _config_copy(root: Path, **store: str) -> Path:
    """A config directory like the packaged one, with [store] values replaced."""
    target = root / "config"
    shutil.copytree(REPO / "config", target)
    text = (target / "weightvault.toml").read_text()
    for key, value in store.items():
        lines = [
            f'{key} = "{value}"' if line.startswith(f"{key} =") else line
            for line in text.splitlines()
        ]
        text = "\n".join(lines) + "\n"
    (target / "weightvault.toml").write_text(text)
    return target


def test_packaged_defaults_are_the_checkout_config() -> None:
    assert packaged_config_dir() == REPO / "config"


def test_home_overrides_config_dir_which_overrides_packaged(tmp_path: Path) -> None:
    config = _config_copy(tmp_path, bucket_prefix="fromconfig")
    home = tmp_path / "home"
    home.mkdir()
    assert load_settings(config, home).store.bucket_prefix == "fromconfig"

    shutil.copy(config / "weightvault.toml", home / "weightvault.toml")
    text = (home / "weightvault.toml").read_text().replace("fromconfig", "fromhome")
    (home / "weightvault.toml").write_text(text)
    settings = load_settings(config, home)
    assert settings.store.bucket_prefix == "fromhome"
    # Policies and suites not in the home come from the config directory.
    assert settings.policy_dir == config / "policies"
    (home / "policies").mkdir()
    assert load_settings(config, home).policy_dir == home / "policies"


def test_config_dir_without_a_file_falls_back_to_packaged(tmp_path: Path) -> None:
    empty = tmp_path / "config"
    empty.mkdir()
    settings = load_settings(empty, tmp_path / "home")
    assert settings.store.bucket_prefix == "weightvault"
    assert settings.policy_dir == REPO / "config" / "policies"
    assert settings.lifetimes_file == REPO / "config" / "lifetimes.toml"


def test_environment_beats_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config_copy(tmp_path, bucket_prefix="fromconfig")
    monkeypatch.setenv("WEIGHTVAULT_BUCKET_PREFIX", "fromenv")
    monkeypatch.setenv("WEIGHTVAULT_S3_SECURE", "true")
    monkeypatch.setenv("WEIGHTVAULT_HOME", str(tmp_path / "envhome"))
    settings = load_settings(config)
    assert settings.store.bucket_prefix == "fromenv"
    assert settings.store.secure is True
    assert settings.home == (tmp_path / "envhome").resolve()


def test_bad_environment_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEIGHTVAULT_S3_SECURE", "sometimes")
    with pytest.raises(ConfigError, match="WEIGHTVAULT_S3_SECURE is invalid") as caught:
        environment()
    assert "\n" not in str(caught.value)


def test_secrets_stay_secret_in_the_environment_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIGHTVAULT_S3_SECRET_KEY", "very-secret-value-123")
    monkeypatch.setenv("WEIGHTVAULT_MASTER_KEY", "bWFzdGVyLWtleS1tYXN0ZXIta2V5LW1hc3Rlci1rZXk=")
    env = environment()
    assert "very-secret-value-123" not in repr(env)
    assert "bWFzdGVy" not in repr(env)
    assert env.s3_secret_key is not None
    assert env.s3_secret_key.get_secret_value() == "very-secret-value-123"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("part_size_mib = 16", "part_size_mib = 4", "store.part_size_mib is invalid"),
        ("grace_minutes = 60", "grace_minutes = -1", "gc.grace_minutes is invalid"),
        ("grace_minutes = 60", 'grace_minutes = "60"', "gc.grace_minutes is invalid"),
        ("[gc]\n", "[garbage]\n", "gc is missing"),
        ("secure = false", "secure = false\nsecrets = 1", "store.secrets is invalid"),
    ],
)
def test_bad_file_values_are_refused_with_their_place(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    config = _config_copy(tmp_path)
    path = config / "weightvault.toml"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    with pytest.raises(ConfigError, match=message):
        load_settings(config, tmp_path / "home")


def test_object_lock_without_versioning_is_refused(tmp_path: Path) -> None:
    config = _config_copy(tmp_path)
    path = config / "weightvault.toml"
    text = path.read_text()
    hot = "[tiers.hot]\nversioned = false\nobject_lock = false"
    assert hot in text
    path.write_text(text.replace(hot, "[tiers.hot]\nversioned = false\nobject_lock = true"))
    with pytest.raises(ConfigError, match=r"tiers\.hot"):
        load_settings(config, tmp_path / "home")


def test_no_weightvault_variable_is_read_outside_the_config_package() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.is_relative_to(SRC / "config"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}:
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    # Only non-vault variables may be touched elsewhere: GX's analytics switch,
    # the login name and git's location variables when capturing provenance.
    allowed = {"gates/_expectations.py", "provenance/_capture.py"}
    assert [o for o in offenders if o.split(":")[0] not in allowed] == []
    for name in allowed:
        text = (SRC / name).read_text()
        assert 'environ.get("WEIGHTVAULT' not in text
        assert 'environ["WEIGHTVAULT' not in text


def test_a_child_process_gets_no_vault_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIGHTVAULT_MASTER_KEY", "00" * 32)
    monkeypatch.setenv("weightvault_s3_secret_key", "lower-case too")
    monkeypatch.setenv("PATH", "/usr/bin")
    env = child_environment(DVC_NO_ANALYTICS="1")
    assert not [k for k in env if k.upper().startswith("WEIGHTVAULT_")]
    assert env["PATH"] == "/usr/bin"
    assert env["DVC_NO_ANALYTICS"] == "1"
