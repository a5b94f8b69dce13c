"""A model's own validation configuration: which datasets, suites, metrics and thresholds.

``validate`` reads it from the model repository, from the first of

* ``weightvault.toml`` at the repo root, table ``[validation]``;
* ``pyproject.toml`` at the repo root, table ``[tool.weightvault.validation]``.

Both present is an error (one source of truth). The table::

    [[validation.datasets]]
    path = "data/prepared/train.csv"      # a CSV in the repo
    suite = "digits_dataset"               # a packaged suite (config/expectations) by name,
                                           # or a JSON suite file in the repo ("checks/x.json")
    parameters = { min_rows = 100 }        # the suite's parameters, if any

    [validation.metrics]
    path = "metrics.json"                  # a JSON object; the artifact's copy wins
    thresholds = ["accuracy >= 0.9", "log_loss < 1"]
    suite = "metrics"                      # optional, as for a dataset
    parameters = { min_accuracy = 0.9 }

Paths stay inside the repo. A malformed configuration is a
:class:`ValidationConfigError` (exit 59) naming the file and the field.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from weightvault.errors import (
    ConfigError,
    InvalidInputError,
    NotFoundError,
    ValidationConfigError,
)
from weightvault.gates._expectations import (
    ValidationReport,
    metrics_frame,
    threshold_suite,
    validate_dataset,
    validate_frame,
)

WEIGHTVAULT_TOML = "weightvault.toml"
PYPROJECT_TOML = "pyproject.toml"

_THRESHOLD = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op>>=|<=|==|>|<)\s*"
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)

Scalar = bool | int | float | str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Threshold(_Strict):
    """``metric op value``, e.g. ``accuracy >= 0.9``."""

    metric: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


class DatasetCheck(_Strict):
    """One dataset (a CSV in the repo) and the GX suite it must pass."""

    path: str = Field(min_length=1)
    suite: str = Field(min_length=1)
    parameters: dict[str, Scalar] = Field(default_factory=dict)


class MetricsCheck(_Strict):
    """The metrics file and its thresholds (and, optionally, a GX suite over it)."""

    path: str = Field(default="metrics.json", min_length=1)
    thresholds: tuple[Threshold, ...] = ()
    suite: str | None = None
    parameters: dict[str, Scalar] = Field(default_factory=dict)

    @field_validator("thresholds", mode="before")
    @classmethod
    def _parse_thresholds(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for item in value:
            if not isinstance(item, str):
                out.append(item)
                continue
            found = _THRESHOLD.match(item)
            if found is None:
                raise ValueError(f"threshold {item!r} is not 'metric op number' (op: >= > <= < ==)")
            out.append(
                {"metric": found["metric"], "op": found["op"], "value": float(found["value"])}
            )
        return out


class ValidationConfig(_Strict):
    """What a model's validation checks besides formats and provenance."""

    datasets: tuple[DatasetCheck, ...] = ()
    metrics: MetricsCheck | None = None
    #: the file the configuration was read from (relative to the repo)
    source: str = ""


def load_validation_config(repo: Path) -> ValidationConfig | None:
    """The repo's validation configuration, or None if it declares none.

    Raises :class:`ValidationConfigError` for unreadable TOML, unknown or
    mistyped fields, both files declaring one, and paths leaving the repo.
    """
    found: list[tuple[str, Any]] = []
    for name, keys in ((WEIGHTVAULT_TOML, ("validation",)), (PYPROJECT_TOML, _PYPROJECT_KEYS)):
        table = _table(repo / name, keys)
        if table is not None:
            found.append((name, table))
    if not found:
        return None
    if len(found) > 1:
        raise ValidationConfigError(
            f"{repo}: both {WEIGHTVAULT_TOML} and {PYPROJECT_TOML} declare a validation "
            "configuration; keep one"
        )
    name, table = found[0]
    try:
        config = ValidationConfig.model_validate({**table, "source": name})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "validation"
        raise ValidationConfigError(
            f"{repo / name}: validation config field {where}: {first['msg']}"
        ) from None
    for rel in [d.path for d in config.datasets] + _suite_files(config):
        in_repo(repo, rel, name)
    if config.metrics is not None:
        in_repo(repo, config.metrics.path, name)
    return config


_PYPROJECT_KEYS = ("tool", "weightvault", "validation")


def _table(path: Path, keys: tuple[str, ...]) -> Any:
    if not path.is_file():
        return None
    try:
        document: Any = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValidationConfigError(f"{path} is not readable TOML: {exc}") from None
    for key in keys:
        if not isinstance(document, dict) or key not in document:
            return None
        document = document[key]
    if not isinstance(document, dict):
        raise ValidationConfigError(f"{path}: [{'.'.join(keys)}] must be a table")
    return document


def _suite_files(config: ValidationConfig) -> list[str]:
    suites = [d.suite for d in config.datasets]
    if config.metrics is not None and config.metrics.suite:
        suites.append(config.metrics.suite)
    return [s for s in suites if is_suite_file(s)]


def is_suite_file(suite: str) -> bool:
    """A suite given as a JSON file in the repo (else a packaged suite's name)."""
    return suite.endswith(".json") or "/" in suite


def in_repo(repo: Path, rel: str, source: str = "validation config") -> Path:
    """``rel`` resolved inside ``repo``; ValidationConfigError if it leaves it."""
    root = repo.resolve()
    path = (root / rel).resolve()
    if Path(rel).is_absolute() or not path.is_relative_to(root):
        raise ValidationConfigError(f"{source}: path {rel!r} is outside the model repository")
    return path


@dataclass(frozen=True)
class ModelChecks:
    """What the model's configured checks found: GX reports, skipped and failed checks."""

    reports: tuple[ValidationReport, ...]
    #: checks that did not run, each naming why (these make a validation partial)
    skipped: tuple[str, ...]
    #: configured checks that could not run on what the repo holds (a missing dataset)
    failures: tuple[str, ...]
    #: where the configuration came from ("" when none was read)
    source: str = ""


_HOW = (
    f"declare one in {WEIGHTVAULT_TOML} [validation] or {PYPROJECT_TOML} "
    "[tool.weightvault.validation]"
)


def run_model_checks(
    repo: Path | None,
    artifact_root: Path,
    *,
    expectations_dir: Path | None = None,
    data_docs: Path | None = None,
) -> ModelChecks:
    """Run the datasets and metrics checks ``repo`` configures, each as a GX Checkpoint.

    Without a repo, or a configuration, or with a part of it left out, the
    checks that did not run are named in ``skipped``. The metrics file is read
    from the artifact when it holds it at the configured path, else from the repo.
    """
    if repo is None:
        return ModelChecks(
            (), ("datasets: no model repository given", "metrics: no model repository given"), ()
        )
    config = load_validation_config(repo)
    if config is None:
        why = f"the model repository declares no validation config ({_HOW})"
        return ModelChecks((), (f"datasets: {why}", f"metrics: {why}"), ())
    reports: list[ValidationReport] = []
    skipped: list[str] = []
    failures: list[str] = []
    if not config.datasets:
        skipped.append(f"datasets: none configured in {config.source}")
    for check in config.datasets:
        csv = in_repo(repo, check.path, config.source)
        try:
            reports.append(
                validate_dataset(
                    csv,
                    _suite(repo, check.suite, config.source),
                    parameters=check.parameters,
                    expectations_dir=expectations_dir,
                    data_docs=data_docs,
                )
            )
        except (NotFoundError, InvalidInputError) as exc:
            failures.append(f"dataset {check.path}: {exc.message}")
        except ConfigError as exc:
            raise ValidationConfigError(f"{config.source}: {exc.message}") from None
    metrics = config.metrics
    if metrics is None or not (metrics.thresholds or metrics.suite):
        skipped.append(f"metrics: no thresholds or suite configured in {config.source}")
    else:
        found = _metrics(repo, artifact_root, metrics.path, config.source)
        if found is None:
            failures.append(f"metrics {metrics.path}: not in the artifact nor the model repository")
        else:
            try:
                reports += _metrics_reports(
                    repo, found, metrics, config.source, expectations_dir, data_docs
                )
            except (NotFoundError, InvalidInputError) as exc:
                failures.append(f"metrics {metrics.path}: {exc.message}")
            except ConfigError as exc:
                raise ValidationConfigError(f"{config.source}: {exc.message}") from None
    return ModelChecks(tuple(reports), tuple(skipped), tuple(failures), config.source)


def _suite(repo: Path, suite: str, source: str) -> str | Path:
    return in_repo(repo, suite, source) if is_suite_file(suite) else suite


def _metrics(repo: Path, artifact_root: Path, rel: str, source: str) -> Path | None:
    candidates = [in_repo(repo, rel, source)]
    if artifact_root.is_dir():
        candidates.insert(0, in_repo(artifact_root, rel, source))
    elif artifact_root.name == Path(rel).name:
        candidates.insert(0, artifact_root)
    return next((c for c in candidates if c.is_file()), None)


def _metrics_reports(
    repo: Path,
    path: Path,
    metrics: MetricsCheck,
    source: str,
    expectations_dir: Path | None,
    data_docs: Path | None,
) -> list[ValidationReport]:
    frame, digest = metrics_frame(path)
    out = []
    if metrics.thresholds:
        suite = threshold_suite([(t.metric, t.op, t.value) for t in metrics.thresholds])
        out.append(
            validate_frame(
                frame, suite, subject=path.name, subject_sha256=digest, data_docs=data_docs
            )
        )
    if metrics.suite:
        out.append(
            validate_frame(
                frame,
                _suite(repo, metrics.suite, source),
                subject=path.name,
                subject_sha256=digest,
                parameters=metrics.parameters,
                expectations_dir=expectations_dir,
                data_docs=data_docs,
            )
        )
    return out
