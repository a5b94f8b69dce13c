"""Reports of a ``weightvault check`` for CI systems: JUnit XML and SARIF 2.1.0.

* :func:`junit_xml`: ``<testsuites>`` with one ``<testsuite>`` per gate family
  (``lifecycle.check.FAMILIES``) and one ``<testcase>`` per rule outcome (per
  file for the format rules), a ``<failure>`` for a failed rule and a
  ``<skipped>`` for one not checkable before ingest. It follows the Ant/Jenkins
  JUnit schema (windyroad ``JUnit.xsd``), which GitHub, GitLab and Jenkins read.
* :func:`sarif_log`: one run whose ``tool.driver.rules`` lists every rule the
  check evaluated (ids ``<family>/<rule>``, descriptions from the Rego policy's
  ``rules`` and the gates), and one ``error`` result per failed rule; where a
  file is involved, its ``physicalLocation`` is the file relative to the checked
  PATH (``uriBaseId`` ``PATH``); a rule about the artifact as a whole (provenance,
  GX, most policy rules) is placed at its first file, the location's message saying
  so (code scanning needs a location on every result).

:func:`write_report` writes either atomically enough for CI (one write) and
turns an OSError into :class:`OutputUnwritableError`.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import xml.etree.ElementTree as ET
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from weightvault.errors import OutputUnwritableError
from weightvault.lifecycle.check import FAMILIES, CheckResult, RuleOutcome

__all__ = [
    "SARIF_SCHEMA",
    "check_writable",
    "junit_xml",
    "rule_id",
    "sarif_log",
    "write_report",
]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "weightvault-check"


def _token(text: str) -> str:
    """One line without leading, trailing or repeated whitespace (an XML token)."""
    return " ".join(text.split())


def rule_id(outcome: RuleOutcome) -> str:
    """The report id of an outcome's rule: ``<family>/<rule>``."""
    return f"{outcome.family}/{outcome.rule}"


def _testcase_name(outcome: RuleOutcome) -> str:
    return _token(f"{outcome.rule} [{outcome.path}]" if outcome.path else outcome.rule)


def junit_xml(result: CheckResult) -> bytes:
    """The result as JUnit XML (UTF-8): a testsuite per gate family, a testcase per outcome."""
    root = ET.Element("testsuites")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    host = _token(socket.gethostname()) or "localhost"
    families = list(FAMILIES) + sorted({o.family for o in result.outcomes} - set(FAMILIES))
    for index, family in enumerate(families):
        mine = [o for o in result.outcomes if o.family == family]
        suite = ET.SubElement(
            root,
            "testsuite",
            {
                "name": f"weightvault.check.{family}",
                "package": "weightvault.check",
                "id": str(index),
                "timestamp": stamp,
                "hostname": host,
                "tests": str(len(mine)),
                "failures": str(sum(o.status == "failed" for o in mine)),
                "errors": "0",
                "skipped": str(sum(o.status == "skipped" for o in mine)),
                "time": "0",
            },
        )
        properties = ET.SubElement(suite, "properties")
        for name, value in (("path", result.path), ("tier", result.tier)):
            ET.SubElement(properties, "property", {"name": name, "value": value})
        for outcome in mine:
            case = ET.SubElement(
                suite,
                "testcase",
                {
                    "name": _testcase_name(outcome),
                    "classname": f"weightvault.check.{family}",
                    "time": "0",
                },
            )
            if outcome.status == "failed":
                failure = ET.SubElement(
                    case,
                    "failure",
                    {"message": _token(outcome.message)[:1000], "type": rule_id(outcome)},
                )
                failure.text = outcome.message
            elif outcome.status == "skipped":
                ET.SubElement(case, "skipped", {"message": _token(outcome.message)[:1000]})
        ET.SubElement(suite, "system-out").text = ""
        ET.SubElement(suite, "system-err").text = ""
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body + b"\n"


def _version() -> str:
    try:
        return version("weightvault")
    except PackageNotFoundError:
        return "0"


def _base_uri(result: CheckResult) -> str:
    path = Path(result.path).absolute()
    base = path if path.is_dir() else path.parent
    return base.as_uri().rstrip("/") + "/"


def sarif_log(result: CheckResult) -> dict[str, Any]:
    """The result as a SARIF 2.1.0 log: every rule described, one result per failure."""
    rules: dict[str, dict[str, Any]] = {}
    for outcome in result.outcomes:
        rid = rule_id(outcome)
        if rid in rules:
            continue
        description = outcome.description or result.rules.get(outcome.rule) or rid
        rules[rid] = {
            "id": rid,
            "name": outcome.rule,
            "shortDescription": {"text": _token(description)},
            "defaultConfiguration": {"level": "error"},
            "properties": {"family": outcome.family},
        }
    index = {rid: i for i, rid in enumerate(rules)}
    results = []
    for outcome in result.failed:
        rid = rule_id(outcome)
        entry: dict[str, Any] = {
            "ruleId": rid,
            "ruleIndex": index[rid],
            "level": "error",
            "message": {"text": outcome.message or rid},
        }
        # Code scanning needs a location: a rule about the artifact as a whole is placed
        # at its first file, and says so.
        where = outcome.path or (result.files[0] if result.files else None)
        if where is not None:
            location: dict[str, Any] = {
                "physicalLocation": {"artifactLocation": {"uri": where, "uriBaseId": "PATH"}}
            }
            if outcome.path is None:
                location["message"] = {"text": "the artifact as a whole"}
            entry["locations"] = [location]
        results.append(entry)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": _version(),
                        "rules": list(rules.values()),
                    }
                },
                "originalUriBaseIds": {"PATH": {"uri": _base_uri(result)}},
                "results": results,
                "properties": {
                    "tier": result.tier,
                    "policy_digest": result.policy_digest,
                    "validation_status": result.validation_status,
                },
            }
        ],
    }


def check_writable(path: Path, option: str) -> None:
    """OutputUnwritableError unless ``path`` can be written: its directory exists, it
    is not a directory itself (checked before the check runs, so a bad path fails fast)."""
    parent = path.absolute().parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise OutputUnwritableError(f"{option} {path}: its parent directory {parent} {what}")
    if path.is_dir():
        raise OutputUnwritableError(f"{option} {path} is a directory")


def write_report(path: Path, data: bytes | dict[str, Any], option: str) -> None:
    """Write a report (bytes, or a JSON document); OutputUnwritableError naming ``option``."""
    body = data if isinstance(data, bytes) else (json.dumps(data, indent=2) + "\n").encode()
    try:
        path.write_bytes(body)
    except OSError as exc:
        raise OutputUnwritableError(
            f"{option} {path}: cannot write it ({exc.strerror or exc})"
        ) from None
