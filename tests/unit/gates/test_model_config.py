"""The per-model validation config: where it is read from, and bad configs refused (exit 59)."""

from __future__ import annotations

from pathlib import Path

import pytest

from weightvault.errors import ValidationConfigError
from weightvault.gates import load_validation_config, run_model_checks

CONFIG = """
[[validation.datasets]]
path = "data/flowers.csv"
suite = "checks/flowers.json"

[validation.metrics]
path = "metrics.json"
thresholds = ["f1 >= 0.7", "loss < 0.5"]
"""


def test_weightvault_toml_is_read(tmp_path: Path) -> None:
    (tmp_path / "weightvault.toml").write_text(CONFIG)
    config = load_validation_config(tmp_path)
    assert config is not None
    assert config.source == "weightvault.toml"
    assert [d.path for d in config.datasets] == ["data/flowers.csv"]
    assert config.metrics is not None
    assert [str(t) for t in config.metrics.thresholds] == ["f1 >= 0.7", "loss < 0.5"]


def test_the_pyproject_table_is_read(tmp_path: Path) -> None:
    body = CONFIG.replace("[[validation.", "[[tool.weightvault.validation.").replace(
        "[validation.", "[tool.weightvault.validation."
    )
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "m"\n' + body)
    config = load_validation_config(tmp_path)
    assert config is not None
    assert config.source == "pyproject.toml"
    assert config.datasets[0].suite == "checks/flowers.json"


def test_a_pyproject_without_the_table_declares_nothing(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "m"\n')
    assert load_validation_config(tmp_path) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (CONFIG.replace("f1 >= 0.7", "f1 ~ 0.7"), r"metrics\.thresholds.*'f1 ~ 0\.7'"),
        (CONFIG.replace('suite = "checks', 'suit = "checks'), r"datasets\.0\.suit"),
        (CONFIG.replace('"data/flowers.csv"', '"../outside.csv"'), "outside the model repo"),
        (CONFIG.replace('"data/flowers.csv"', '"/etc/passwd"'), "outside the model repo"),
        ("[validation\n", "not readable TOML"),
        ("validation = 3\n", r"\[validation\] must be a table"),
    ],
)
def test_a_bad_config_is_one_line_naming_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "weightvault.toml").write_text(text)
    with pytest.raises(ValidationConfigError, match=message) as err:
        load_validation_config(tmp_path)
    assert err.value.exit_code == 59
    assert "\n" not in err.value.message


def test_two_configs_are_refused(tmp_path: Path) -> None:
    (tmp_path / "weightvault.toml").write_text(CONFIG)
    (tmp_path / "pyproject.toml").write_text("[tool.weightvault.validation]\ndatasets = []\n")
    with pytest.raises(ValidationConfigError, match="keep one"):
        load_validation_config(tmp_path)


def test_what_is_not_configured_is_skipped_by_name(tmp_path: Path) -> None:
    assert run_model_checks(None, tmp_path).skipped == (
        "datasets: no model repository given",
        "metrics: no model repository given",
    )
    none = run_model_checks(tmp_path, tmp_path)
    assert [s.split(":")[0] for s in none.skipped] == ["datasets", "metrics"]
    assert "declares no validation config" in none.skipped[0]
    (tmp_path / "weightvault.toml").write_text("[validation]\n")
    empty = run_model_checks(tmp_path, tmp_path)
    assert empty.skipped == (
        "datasets: none configured in weightvault.toml",
        "metrics: no thresholds or suite configured in weightvault.toml",
    )
    assert empty.reports == ()
