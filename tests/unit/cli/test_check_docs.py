"""The model-CI examples and the pre-commit hook call `weightvault check` as the CLI parses it.

docs/ci/*.yml must be YAML whose `weightvault check` command lines the real parser accepts
with --junit and --sarif, and be shown verbatim in docs/model-ci.md; .pre-commit-hooks.yaml
must be a valid hook list defining `weightvault-check`, its entry the check command.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from weightvault.cli._app import build_parser

REPO = Path(__file__).resolve().parents[3]
CI_FILES = ("github-actions.yml", "gitlab-ci.yml")
# pre-commit's own manifest schema: required keys and the types of those we use.
HOOK_KEYS = {"id": str, "name": str, "entry": str, "language": str}
HOOK_OPTIONAL = {"pass_filenames": bool, "require_serial": bool, "verbose": bool}


def shell_lines(node: Any) -> Iterator[str]:
    """Every string a `run:` (GitHub) or `script:` (GitLab) holds, anywhere in the file."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"run", "script"}:
                yield from [value] if isinstance(value, str) else value
            else:
                yield from shell_lines(value)
    elif isinstance(node, list):
        for item in node:
            yield from shell_lines(item)


def parse_check(line: str) -> argparse.Namespace:
    words = shlex.split(re.sub(r"\$\{[A-Z_]+\}", "X", line))
    assert words[:2] == ["weightvault", "check"], line
    args = build_parser().parse_args(words[1:])
    assert args.func.__name__ == "_check"
    return args


@pytest.mark.parametrize("name", CI_FILES)
def test_ci_examples_run_the_check_with_both_reports(name: str) -> None:
    text = (REPO / "docs" / "ci" / name).read_text()
    document = yaml.safe_load(text)
    lines = [line for line in shell_lines(document) if "weightvault check" in line]
    assert len(lines) == 1, lines
    args = parse_check(lines[0])
    assert args.junit
    assert args.sarif
    assert args.model_repo == "."
    assert args.run_id
    # The docs page shows the file as it is.
    assert f"```yaml\n{text}```" in (REPO / "docs" / "model-ci.md").read_text()


def test_the_github_example_uploads_both_reports_even_when_the_check_fails() -> None:
    document = yaml.safe_load((REPO / "docs" / "ci" / "github-actions.yml").read_text())
    steps = document["jobs"]["weightvault-check"]["steps"]
    uploads = [s for s in steps if "upload-sarif" in s.get("uses", "")]
    junit = [s for s in steps if "junit" in s.get("uses", "")]
    assert uploads
    assert junit
    assert all(s.get("if") == "always()" for s in uploads + junit)


def test_the_gitlab_example_keeps_the_junit_report_when_the_check_fails() -> None:
    document = yaml.safe_load((REPO / "docs" / "ci" / "gitlab-ci.yml").read_text())
    job = document["weightvault-check"]
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["reports"]["junit"] == "weightvault-check.xml"


def test_the_pre_commit_hook_definition() -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert isinstance(hooks, list)
    for hook in hooks:
        for key, kind in HOOK_KEYS.items():
            assert isinstance(hook.get(key), kind), key
        for key, kind in HOOK_OPTIONAL.items():
            assert key not in hook or isinstance(hook[key], kind), key
    (hook,) = [h for h in hooks if h["id"] == "weightvault-check"]
    assert hook["language"] == "python"  # installs this repository, whose script is the CLI
    assert hook["pass_filenames"] is False
    # The documented args, after the entry, are a command line the CLI accepts.
    args = parse_check(f"{hook['entry']} model/ --model-repo . --run-id pre-commit --tier hot")
    assert args.tier == "hot"
    scripts = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^weightvault = "weightvault\.cli', scripts, re.MULTILINE)
