"""Store and Prefect ports, the endpoint as a URL, the AWS credential chain setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO
from weightvault.config import load_settings
from weightvault.errors import ConfigError


def test_the_ports_have_fixed_defaults_and_env_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEIGHTVAULT_STORE_PORT")
    monkeypatch.delenv("WEIGHTVAULT_PREFECT_PORT")
    settings = load_settings(REPO / "config", tmp_path / "home")
    assert (settings.store.port, settings.prefect_port) == (9470, 4270)
    # The same on every load: a DVC remote written once keeps its endpoint.
    assert load_settings(REPO / "config", tmp_path / "home").store.port == 9470
    monkeypatch.setenv("WEIGHTVAULT_STORE_PORT", "19470")
    monkeypatch.setenv("WEIGHTVAULT_PREFECT_PORT", "0")
    settings = load_settings(REPO / "config", tmp_path / "home")
    assert (settings.store.port, settings.prefect_port) == (19470, 0)


@pytest.mark.parametrize("value", ["70000", "-1", "http"])
def test_a_bad_port_is_a_one_line_config_error(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEIGHTVAULT_STORE_PORT", value)
    with pytest.raises(ConfigError, match="WEIGHTVAULT_STORE_PORT is invalid") as err:
        load_settings(REPO / "config", tmp_path / "home")
    assert err.value.exit_code == 3


def _external(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    monkeypatch.setenv("WEIGHTVAULT_S3_ENDPOINT", endpoint)
    monkeypatch.setenv("WEIGHTVAULT_S3_ACCESS_KEY", "AK")
    monkeypatch.setenv("WEIGHTVAULT_S3_SECRET_KEY", "SK")


@pytest.mark.parametrize(
    ("endpoint", "host", "secure"),
    [
        ("minio.internal:9000", "minio.internal:9000", False),
        ("https://minio.internal:9000", "minio.internal:9000", True),
        ("https://s3.amazonaws.com/", "s3.amazonaws.com", True),
        ("http://127.0.0.1:9470", "127.0.0.1:9470", False),
        ("http://[::1]:9000", "[::1]:9000", False),
    ],
)
def test_the_endpoint_may_be_a_url_whose_scheme_sets_secure(
    endpoint: str, host: str, secure: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _external(monkeypatch, endpoint)
    store = load_settings(REPO / "config", tmp_path / "home").store
    assert (store.endpoint, store.secure) == (host, secure)


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [
        ("https://minio.internal:9000/bucket", "no path"),
        ("ftp://minio.internal", "scheme must be http or https"),
        ("https://user:pw@minio.internal", "credentials never go in the endpoint"),
        ("minio internal", "is not host[:port]"),
        ("minio.internal:99999", "is not host[:port]"),
        ("minio.internal/x", "is not host[:port]"),
        ("https://", "is not host[:port]"),
    ],
)
def test_an_endpoint_with_a_path_or_garbage_is_a_one_line_config_error(
    endpoint: str, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _external(monkeypatch, endpoint)
    with pytest.raises(ConfigError) as err:
        load_settings(REPO / "config", tmp_path / "home")
    assert "WEIGHTVAULT_S3_ENDPOINT" in err.value.message
    assert why in err.value.message
    assert "\n" not in err.value.message
    assert ":pw@" not in err.value.message  # a password in the URL is never echoed


def test_the_aws_chain_replaces_the_keys_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEIGHTVAULT_S3_ENDPOINT", "https://s3.example.org")
    with pytest.raises(ConfigError, match="WEIGHTVAULT_S3_CREDENTIALS=aws"):
        load_settings(REPO / "config", tmp_path / "home")
    monkeypatch.setenv("WEIGHTVAULT_S3_CREDENTIALS", "aws")
    store = load_settings(REPO / "config", tmp_path / "home").store
    assert (store.credentials, store.access_key) == ("aws", "")
    # Explicit keys win over the chain.
    monkeypatch.setenv("WEIGHTVAULT_S3_ACCESS_KEY", "AK")
    monkeypatch.setenv("WEIGHTVAULT_S3_SECRET_KEY", "SK")
    assert load_settings(REPO / "config", tmp_path / "home").store.credentials == "static"
    monkeypatch.setenv("WEIGHTVAULT_S3_CREDENTIALS", "vault")
    with pytest.raises(ConfigError, match="WEIGHTVAULT_S3_CREDENTIALS is invalid"):
        load_settings(REPO / "config", tmp_path / "home")
