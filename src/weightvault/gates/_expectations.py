"""Data validation gates with Great Expectations 1.x suites stored as JSON.

Suites live in ``config/expectations/<name>.json`` in GX's own suite format::

    {"name": "...",
     "expectations": [{"type": "expect_...", "kwargs": {...}, "meta": {"name": "..."}}],
     "meta": {"description": "...", "parameters": {"min_rows": 100}}}

Every expectation carries a unique ``meta.name``, which reports use to name
what failed. Values may be ``{"$PARAMETER": "p"}``; ``meta.parameters`` gives
their defaults (``null`` means the caller must pass one).

Three gates:

* :func:`validate_record`: the provenance + manifest record of an artifact
  version, flattened by :func:`record_frame` to one row per manifest file
  (suite ``provenance_record``);
* :func:`validate_dataset`: a training/test CSV of scikit-learn digits,
  ``p0..p63,label`` (suite ``digits_dataset``);
* :func:`validate_metrics`: the evaluation ``metrics.json`` with an accuracy
  threshold passed in from config (suite ``metrics``).

Each returns a :class:`ValidationReport`: JSON-serialisable, canonical
(:meth:`ValidationReport.to_json`) and digested (``sha256``), so it can be
attested. Validation runs in a fresh ephemeral GX context, with analytics and
progress bars off and no data docs; nothing is written to disk.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightvault._fs import hash_file
from weightvault._json import canonical_json
from weightvault.config import packaged_config_dir
from weightvault.errors import ConfigError, InvalidInputError, NotFoundError

if TYPE_CHECKING:  # GX is imported only when a validation runs (it is slow)
    from great_expectations import ExpectationSuite

Frame = Any
"""A ``pandas.DataFrame`` (pandas has no type stubs in this environment)."""

DEFAULT_EXPECTATIONS_DIR = packaged_config_dir() / "expectations"
"""``config/expectations`` of a source checkout; pass ``expectations_dir`` elsewhere."""

RECORD_SUITE = "provenance_record"
DATASET_SUITE = "digits_dataset"
METRICS_SUITE = "metrics"

FILES_KEY = "files"
"""The record's list that becomes one row per entry in :func:`record_frame`."""

_PARTIAL_VALUES = 10
_PARAMETER = "$PARAMETER"


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's result, named by the suite's ``meta.name``."""

    name: str
    expectation_type: str
    success: bool
    kwargs: dict[str, Any]
    observed: dict[str, Any]
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "type": self.expectation_type,
            "success": self.success,
            "kwargs": self.kwargs,
            "observed": self.observed,
            "error": self.error,
        }


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of validating one subject against one suite."""

    suite: str
    subject: str
    subject_sha256: str
    success: bool
    parameters: dict[str, Any]
    statistics: dict[str, Any]
    results: tuple[ExpectationOutcome, ...]

    @property
    def failed(self) -> list[str]:
        """Names of the expectations that failed, in suite order."""
        return [r.name for r in self.results if not r.success]

    @property
    def status(self) -> str:
        """``"passed"`` or ``"failed"``, as the policy input expects."""
        return "passed" if self.success else "failed"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "suite": self.suite,
            "subject": self.subject,
            "subject_sha256": self.subject_sha256,
            "success": self.success,
            "parameters": self.parameters,
            "statistics": self.statistics,
            "failed": self.failed,
            "results": [r.to_dict() for r in self.results],
        }

    def to_json(self) -> bytes:
        """Canonical JSON: sorted keys, no whitespace, UTF-8."""
        return canonical_json(self.to_dict())

    @property
    def sha256(self) -> str:
        """sha256 (hex) of :meth:`to_json`."""
        return hashlib.sha256(self.to_json()).hexdigest()

    def summary(self) -> str:
        """One line: suite, subject, verdict and the failing expectations."""
        head = f"{self.suite} on {self.subject}: {self.status}"
        return f"{head} ({', '.join(self.failed)})" if self.failed else head


# --------------------------------------------------------------------------- suites


@dataclass(frozen=True)
class SuiteDefinition:
    """A suite as stored in ``config/expectations``."""

    name: str
    expectations: tuple[dict[str, Any], ...]
    defaults: dict[str, Any]


def load_suite(suite: str | Path, expectations_dir: Path | None = None) -> SuiteDefinition:
    """Read a suite by name (from ``expectations_dir``) or by path to its JSON file."""
    path = _suite_path(suite, expectations_dir)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no expectation suite {path}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"expectation suite {path} is not JSON: {exc}") from None
    return _parse_suite(document, path)


def _suite_path(suite: str | Path, expectations_dir: Path | None) -> Path:
    if isinstance(suite, Path) or suite.endswith(".json"):
        return Path(suite)
    if not suite.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"malformed suite name {suite!r}")
    return (expectations_dir or DEFAULT_EXPECTATIONS_DIR) / f"{suite}.json"


def _parse_suite(document: Any, path: Path) -> SuiteDefinition:
    if not isinstance(document, dict) or not isinstance(document.get("expectations"), list):
        raise ConfigError(f"expectation suite {path} lacks an expectations list")
    expectations = document["expectations"]
    names = [_meta_name(e) for e in expectations]
    if any(n is None for n in names) or len(set(names)) != len(names):
        raise ConfigError(f"expectation suite {path}: every expectation needs a unique meta.name")
    meta = document.get("meta") or {}
    defaults = meta.get("parameters") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"expectation suite {path}: meta.parameters must be an object")
    name = str(document.get("name") or path.stem)
    return SuiteDefinition(name, tuple(expectations), dict(defaults))


def _meta_name(expectation: Any) -> str | None:
    if not isinstance(expectation, dict) or not isinstance(expectation.get("meta"), dict):
        return None
    name = expectation["meta"].get("name")
    return name if isinstance(name, str) and name else None


def _parameters(suite: SuiteDefinition, given: Mapping[str, Any] | None) -> dict[str, Any]:
    unknown = sorted(set(given or {}) - set(suite.defaults))
    if unknown:
        raise ConfigError(f"suite {suite.name} has no parameters {', '.join(unknown)}")
    values = {**suite.defaults, **(given or {})}
    missing = sorted(k for k, v in values.items() if v is None)
    if missing:
        raise ConfigError(f"suite {suite.name} needs parameters: {', '.join(missing)}")
    return values


# --------------------------------------------------------------------------- GX


def _gx() -> Any:
    """Import GX quietly: no analytics, and only when a validation runs (it is slow)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


DATA_DOCS_SITE = "evidence"
"""The Data Docs site a validation with ``data_docs`` builds (a local directory)."""


def _context(data_docs: Path | None = None) -> Any:
    gx = _gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites: dict[str, Any] = {}
    if data_docs is not None:
        sites[DATA_DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(data_docs),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
        data_docs_sites=sites,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def gx_suite(definition: SuiteDefinition) -> ExpectationSuite:
    """Build GX's ``ExpectationSuite``; ConfigError if GX cannot build every expectation."""
    gx = _gx()
    # GX logs a traceback for each expectation it drops; the error below says it once.
    logger = logging.getLogger("great_expectations.core.expectation_suite")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        suite: ExpectationSuite = gx.ExpectationSuite(
            name=definition.name, expectations=[dict(e) for e in definition.expectations]
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"suite {definition.name} is invalid: {exc}") from None
    finally:
        logger.setLevel(level)
    if len(suite.expectations) != len(definition.expectations):
        # GX logs and drops an expectation it cannot build; refuse instead.
        raise ConfigError(f"suite {definition.name} holds expectations GX cannot build")
    return suite


def _run(
    frame: Frame,
    definition: SuiteDefinition,
    parameters: dict[str, Any],
    data_docs: Path | None = None,
) -> Any:
    """Validate ``frame`` through a GX Checkpoint in a fresh ephemeral context.

    The Checkpoint runs one ValidationDefinition (the suite on the whole
    frame); with ``data_docs`` its ``UpdateDataDocsAction`` renders the result
    as HTML, and the page joins the others under ``data_docs/validations``.
    Returns GX's suite validation result.
    """
    if data_docs is None:
        return _checkpoint(frame, definition, parameters, None)
    # GX rebuilds a site from its own context's results, wiping what was there:
    # each Checkpoint renders into a scratch site whose validation pages are kept.
    data_docs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_docs, prefix=".site-") as scratch:
        result = _checkpoint(frame, definition, parameters, Path(scratch))
        rendered = Path(scratch) / "validations"
        for page in rendered.rglob("*.html") if rendered.is_dir() else ():
            target = data_docs / "validations" / page.relative_to(rendered)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(page, target)
    return result


def _checkpoint(
    frame: Frame,
    definition: SuiteDefinition,
    parameters: dict[str, Any],
    data_docs: Path | None,
) -> Any:
    gx = _gx()
    context = _context(data_docs)
    suite = context.suites.add(gx_suite(definition))
    batch_definition = (
        context.data_sources.add_pandas(name="weightvault")
        .add_dataframe_asset(name=definition.name)
        .add_batch_definition_whole_dataframe("all")
    )
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=definition.name, data=batch_definition, suite=suite)
    )
    actions = [gx.checkpoint.UpdateDataDocsAction(name="data-docs")] if data_docs else []
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"weightvault-{definition.name}",
            validation_definitions=[validation],
            actions=actions,
            result_format="BASIC",
        )
    )
    result = checkpoint.run(
        batch_parameters={"dataframe": frame}, expectation_parameters=parameters
    )
    (suite_result,) = result.run_results.values()
    return suite_result


def data_docs_pages(data_docs: Path, suite: str) -> list[Path]:
    """The HTML pages a Checkpoint rendered under ``data_docs`` for ``suite`` (sorted)."""
    return sorted((data_docs / "validations" / suite).rglob("*.html"))


def _report(
    definition: SuiteDefinition,
    subject: str,
    subject_sha256: str,
    parameters: dict[str, Any],
    result: Any,
) -> ValidationReport:
    outcomes = tuple(_outcome(r) for r in result.results)
    order = {_meta_name(e): i for i, e in enumerate(definition.expectations)}
    outcomes = tuple(sorted(outcomes, key=lambda o: order.get(o.name, len(order))))
    success = bool(result.success) and all(o.success for o in outcomes)
    return ValidationReport(
        suite=definition.name,
        subject=subject,
        subject_sha256=subject_sha256,
        success=success,
        parameters=_jsonable(parameters),
        statistics=_jsonable(dict(result.statistics)),
        results=outcomes,
    )


def _outcome(result: Any) -> ExpectationOutcome:
    config = result.expectation_config
    kwargs = {k: v for k, v in dict(config.kwargs).items() if k != "batch_id"}
    details = dict(result.result or {})
    observed = {
        key: details[key]
        for key in ("observed_value", "element_count", "unexpected_count", "missing_count")
        if key in details
    }
    if "partial_unexpected_list" in details:
        observed["unexpected_sample"] = list(details["partial_unexpected_list"])[:_PARTIAL_VALUES]
    if "details" in details:
        observed["details"] = details["details"]
    error = _error_of(result.exception_info)
    name = (config.meta or {}).get("name") or f"{config.type}({kwargs.get('column', '')})"
    return ExpectationOutcome(
        name=str(name),
        expectation_type=str(config.type),
        success=bool(result.success) and error is None,
        kwargs=_jsonable(kwargs),
        observed=_jsonable(observed),
        error=None if error is None else " ".join(str(error).split())[:300],
    )


def _error_of(info: Any) -> str | None:
    """The exception message GX caught, from its flat or per-metric ``exception_info``."""
    if not isinstance(info, Mapping):
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    for nested in info.values():
        message = _error_of(nested)
        if message is not None:
            return message
    return None


def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars unwrapped, NaN and infinities as null."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return _json_scalar(value)


def _json_scalar(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, str | bytes):
        try:
            value = value.item()  # numpy and pandas scalars
        except (ValueError, TypeError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def validate_frame(
    frame: Frame,
    suite: str | Path | SuiteDefinition,
    *,
    subject: str,
    subject_sha256: str,
    parameters: Mapping[str, Any] | None = None,
    expectations_dir: Path | None = None,
    data_docs: Path | None = None,
) -> ValidationReport:
    """Validate a DataFrame against a stored suite; the building block of the gates.

    ``suite`` is a name in ``expectations_dir``, a path to a suite JSON file, or
    a :class:`SuiteDefinition`; ``data_docs`` a directory for the HTML Data Docs.
    """
    definition = (
        suite if isinstance(suite, SuiteDefinition) else load_suite(suite, expectations_dir)
    )
    values = _parameters(definition, parameters)
    result = _run(frame, definition, values, data_docs)
    return _report(definition, subject, subject_sha256, values, result)


# --------------------------------------------------------------------------- gates


def validate_dataset(
    csv: Path,
    suite: str | Path = DATASET_SUITE,
    *,
    parameters: Mapping[str, Any] | None = None,
    expectations_dir: Path | None = None,
    data_docs: Path | None = None,
) -> ValidationReport:
    """Validate a dataset CSV against ``suite`` (default: the digits suite).

    ``parameters`` override the suite's defaults (``min_rows``, ``max_rows``).
    Raises :class:`NotFoundError` if the file is missing and
    :class:`InvalidInputError` if it is not readable CSV.
    """
    frame = _read_csv(csv)
    return validate_frame(
        frame,
        suite,
        subject=csv.name,
        subject_sha256=hash_file(csv).sha256,
        parameters=parameters,
        expectations_dir=expectations_dir,
        data_docs=data_docs,
    )


def validate_record(
    record: Mapping[str, Any],
    suite: str = RECORD_SUITE,
    *,
    expectations_dir: Path | None = None,
    data_docs: Path | None = None,
) -> ValidationReport:
    """Validate a provenance + manifest record (see :func:`record_frame` for its shape)."""
    subject = str(record.get("artifact_id") or "record")
    return validate_frame(
        record_frame(record),
        suite,
        subject=subject,
        subject_sha256=hashlib.sha256(canonical_json(_jsonable(record))).hexdigest(),
        expectations_dir=expectations_dir,
        data_docs=data_docs,
    )


THRESHOLDS_SUITE = "metrics_thresholds"
_BOUNDS = {
    ">=": {"min_value": True},
    ">": {"min_value": True, "strict_min": True},
    "<=": {"max_value": True},
    "<": {"max_value": True, "strict_max": True},
    "==": {"min_value": True, "max_value": True},
}


def threshold_suite(thresholds: Sequence[tuple[str, str, float]]) -> SuiteDefinition:
    """A suite requiring each ``(metric, op, value)``: the metric present and within bounds."""
    expectations: list[dict[str, Any]] = []
    for metric, op, value in thresholds:
        kwargs: dict[str, Any] = {"column": metric}
        for key, flag in _BOUNDS[op].items():
            kwargs[key] = value if key.endswith("_value") else flag
        expectations += [
            {
                "type": "expect_column_to_exist",
                "kwargs": {"column": metric},
                "meta": {"name": f"metrics.{metric}.present"},
            },
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": kwargs,
                "meta": {"name": f"metrics.{metric} {op} {value:g}"},
            },
        ]
    return SuiteDefinition(THRESHOLDS_SUITE, tuple(expectations), {})


def metrics_frame(metrics: Path) -> tuple[Frame, str]:
    """A metrics JSON object as a one-row frame of its scalars, and its canonical sha256."""
    document = _read_json_object(metrics)
    scalars = {k: v for k, v in document.items() if not isinstance(v, Mapping | list)}
    return _frame([scalars]), hashlib.sha256(canonical_json(_jsonable(document))).hexdigest()


def validate_metrics(
    metrics: Path | Mapping[str, Any],
    min_accuracy: float,
    suite: str = METRICS_SUITE,
    *,
    expectations_dir: Path | None = None,
) -> ValidationReport:
    """Validate evaluation metrics (a ``metrics.json`` path or its parsed object).

    ``min_accuracy`` is the threshold from config; accuracy must lie in
    ``[min_accuracy, 1]``.
    """
    if isinstance(metrics, Path):
        document, subject = _read_json_object(metrics), metrics.name
    else:
        document, subject = dict(metrics), "metrics"
    scalars = {k: v for k, v in document.items() if not isinstance(v, Mapping | list)}
    return validate_frame(
        _frame([scalars]),
        suite,
        subject=subject,
        subject_sha256=hashlib.sha256(canonical_json(_jsonable(document))).hexdigest(),
        parameters={"min_accuracy": float(min_accuracy)},
        expectations_dir=expectations_dir,
    )


# --------------------------------------------------------------------------- inputs


def provenance_record(
    provenance: Mapping[str, Any], files: Sequence[Mapping[str, Any]], artifact_id: str
) -> dict[str, Any]:
    """The record :func:`validate_record` checks: provenance, artifact id and manifest files.

    ``provenance`` is ``Provenance.to_dict()``; ``files`` are manifest file
    entries (``path``, ``size``, ``sha256``, ...).
    """
    return {**provenance, "artifact_id": artifact_id, FILES_KEY: [dict(f) for f in files]}


def record_frame(record: Mapping[str, Any]) -> Frame:
    """Flatten a provenance + manifest record to one row per manifest file.

    The record is :func:`provenance_record`'s output::

        {"artifact_id": str, "creator": str, "run_id": str,
         "git_commit": 40 hex, "git_dirty": bool,
         "environment": {"packages_sha256": 64 hex, "lock_file_sha256": 64 hex, ...},
         "started_at": ISO 8601, "finished_at": ISO 8601,
         "datasets": [{"path": str, "dvc_md5": 32 hex, "sha256": 64 hex, ...}],
         "files": [{"path": str, "size": int > 0, "sha256": 64 hex, ...}], ...}

    Nested objects become dotted columns (``environment.packages_sha256``);
    each ``files`` entry becomes a row (``files.path``, ``files.size``,
    ``files.sha256``) carrying every other column; any other list of objects
    becomes one column per scalar field with the values joined by a space
    (``datasets.sha256``), and a list of scalars one space-joined column; keys
    ending in ``_at`` are parsed as timestamps, kept as naive UTC (unparseable
    ones become null). With no files there is one row whose ``files.*`` columns are null.
    """
    if not isinstance(record, Mapping):
        raise InvalidInputError("a provenance record must be a JSON object")
    shared = _flatten({k: v for k, v in record.items() if k != FILES_KEY})
    files = record.get(FILES_KEY)
    entries = [e for e in files if isinstance(e, Mapping)] if isinstance(files, list) else []
    rows = [{**shared, **_flatten(entry, f"{FILES_KEY}.")} for entry in entries]
    if not rows:
        rows = [{**shared, f"{FILES_KEY}.path": None}]
    frame = _frame(rows)
    for column in frame.columns:
        if str(column).endswith("_at"):
            frame[column] = _timestamps(frame[column])
    return frame


def _flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        column = f"{prefix}{key}"
        if isinstance(item, Mapping):
            flat.update(_flatten(item, f"{column}."))
        elif isinstance(item, list) and item and all(isinstance(i, Mapping) for i in item):
            flat.update(_joined(item, f"{column}."))
        elif isinstance(item, list):
            flat[column] = " ".join(str(i) for i in item)
        else:
            flat[column] = item
    return flat


def _joined(items: Sequence[Mapping[str, Any]], prefix: str) -> dict[str, Any]:
    fields = sorted(
        {str(k) for item in items for k, v in item.items() if not isinstance(v, Mapping | list)}
    )
    return {f"{prefix}{name}": " ".join(str(item.get(name)) for item in items) for name in fields}


def _pandas() -> Any:
    """pandas, imported when first needed (it has no type stubs here)."""
    import pandas  # type: ignore[import-untyped]

    return pandas


def _frame(rows: list[dict[str, Any]]) -> Frame:
    pd = _pandas()
    return pd.DataFrame(rows)


def _timestamps(column: Any) -> Any:
    pd = _pandas()
    # Naive UTC: GX compares timezone-aware columns through a deprecated pandas path.
    return pd.to_datetime(column, errors="coerce", utc=True, format="ISO8601").dt.tz_convert(None)


def _read_csv(path: Path) -> Frame:
    pd = _pandas()
    if not path.is_file():
        raise NotFoundError(f"no such dataset: {path}")
    try:
        return pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InvalidInputError(f"dataset {path.name} is not readable CSV: {exc}") from None


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError(f"no such metrics file: {path}") from None
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"metrics file {path.name} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidInputError(f"metrics file {path.name} is not a JSON object")
    return document
