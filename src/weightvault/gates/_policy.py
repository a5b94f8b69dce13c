"""Admission and promotion policy: Rego evaluated in-process with regopy.

The policy lives in ``config/policies/*.rego`` (package
``weightvault.lifecycle.validate``). :func:`evaluate` runs it on an input document and
returns a :class:`Decision` with *every* deny reason, never just a yes/no;
:func:`enforce` does the same and raises :class:`PolicyError` on a denial.
No policy server is involved.

Input document
--------------
::

    {
      "artifact": {
        "id": str, "name": str,
        "tier": "hot" | "warm" | "cold" | "quarantine",   # where it is now
        "target_tier": "hot" | "warm" | "cold",             # where it should go
        "creator": str,
        "license": str,                                     # required for cold
        "files": [{"path": str, "format": str, "size": int, "sha256": str}],
        "encryption": {"payload": "c2sp-chunked/Cobblestone-256",
                       "dek_wrap": "A256GCM", "kek_bits": 256},
        "signature": {"valid": bool, "algorithms": ["Ed25519", "ML-DSA-65"]},
        "validation": {"status": "passed" | "failed" | "partial" | "missing" | "untrusted",
                       "skipped": [str]},             # the checks a partial one skipped
        "provenance": {"complete": bool, "missing": [str],
                       "git": {"commit": str (40 hex), "dirty": bool}}
      },
      "request": {"justification": str,
                  "approvals": {"required": int, "satisfied": bool, "approvers": [str]} | null}
    }

``format`` is a :class:`weightvault.gates._formats.FileFormat` value as detected from
the file's content (``"safetensors"``, ``"pickle"``, ``"torch-zip"``, ...).
The payload scheme is also accepted under the manifest's name
(``"c2sp.org/chunked-encryption@v1 Cobblestone-256"``). Missing or mistyped
fields deny; they never pass silently. Quotes, backslashes and control
characters in strings reach the policy as U+FFFD (a regopy 1.5 output bug).

Rules (each reason starts with its rule id): ``tier``, ``files``, ``format``,
``extension``, ``encryption``, ``provenance``, ``git``, ``signature``,
``validation``, ``validation_complete``, ``license``, ``two_person``;
:func:`policy_rules` returns them with their descriptions, straight from the policy.

Policy tests are data: ``config/policies/tests/cases.json`` holds a valid
``base`` input and cases that each apply a JSON merge patch (RFC 7386) to it
and list the exact reasons expected. :func:`run_policy_tests` runs them.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import io
import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from weightvault._json import JSON
from weightvault.config import packaged_config_dir
from weightvault.errors import ConfigError, InvalidInputError, PolicyError

PACKAGE = "weightvault.admission"
DEFAULT_POLICY_DIR = packaged_config_dir() / "policies"
"""``config/policies`` of a source checkout; pass ``policy_dir`` elsewhere."""

CASES_FILE = Path("tests") / "cases.json"
"""Where :func:`run_policy_tests` looks for cases, relative to the policy directory."""

BINDING = "x"
_UNSAFE_FOR_REGO = dict.fromkeys([*range(0x20), 0x7F, ord('"'), ord("\\")], "\ufffd")


@dataclass(frozen=True)
class Decision:
    """The policy's answer: ``allow`` only when ``reasons`` is empty."""

    allow: bool
    reasons: list[str]
    policy_digest: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "allow": self.allow,
            "reasons": list(self.reasons),
            "policy_digest": self.policy_digest,
        }


@dataclass(frozen=True)
class _Policy:
    """The ``.rego`` sources of a policy directory and their digest."""

    modules: tuple[tuple[str, str], ...]
    digest: str


# --------------------------------------------------------------------------- loading


# Policies with an input of their own, compiled and evaluated alone (gates._detect): the
# detection rules are no admission policy (and regopy 1.5 crashes evaluating the admission
# query with them loaded beside it).
SEPARATE_POLICIES = frozenset({"detect.rego"})


def policy_files(policy_dir: Path) -> list[Path]:
    """The ``*.rego`` files directly in ``policy_dir`` (but the separate ones), sorted."""
    if not policy_dir.is_dir():
        raise ConfigError(f"policy directory {policy_dir} does not exist")
    files = sorted(
        p for p in policy_dir.glob("*.rego") if p.is_file() and p.name not in SEPARATE_POLICIES
    )
    if not files:
        raise ConfigError(f"policy directory {policy_dir} holds no .rego files")
    return files


def policy_digest(policy_dir: Path) -> str:
    """sha256 (hex) over the sorted policy files: for each, its name and its bytes.

    Each file contributes ``name NUL length NUL bytes`` so no two different
    policy sets hash alike.
    """
    return _load(policy_dir).digest


def _load(policy_dir: Path) -> _Policy:
    digest = hashlib.sha256()
    modules = []
    for path in policy_files(policy_dir):
        data = path.read_bytes()
        digest.update(b"%s\x00%d\x00" % (path.name.encode("utf-8"), len(data)))
        digest.update(data)
        try:
            modules.append((path.name, data.decode("utf-8")))
        except UnicodeDecodeError:
            raise ConfigError(f"policy file {path.name} is not UTF-8") from None
    return _Policy(tuple(modules), digest.hexdigest())


def _interpreter(policy: _Policy) -> Any:
    return _compile_modules(policy.modules)


def _compile_modules(modules: Sequence[tuple[str, str]]) -> Any:
    """A regopy interpreter holding ``modules`` (name, source); ConfigError if one fails."""
    import regopy

    interpreter = regopy.Interpreter()
    for name, source in modules:
        with _captured_stdout() as printed:
            try:
                interpreter.add_module(name, source)
                error = None
            except regopy.RegoError as exc:
                error = exc
        if error is not None:
            detail = one_line(printed.getvalue() or error)
            raise ConfigError(f"policy file {name} does not compile: {detail}")
    return interpreter


@contextlib.contextmanager
def _captured_stdout() -> Iterator[io.StringIO]:
    """Capture what the native rego library prints to file descriptor 1 (parse errors)."""
    sys.stdout.flush()
    captured = io.StringIO()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield captured
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            sink.seek(0)
            captured.write(sink.read().decode("utf-8", "replace"))


def _query(interpreter: Any, expression: str) -> Any:
    """Bind ``expression`` to a variable and return its value as plain JSON.

    The value is read from the output's JSON text: asking regopy for the
    binding of an undefined result aborts the process.
    """
    import regopy

    try:
        output = interpreter.query(f"{BINDING} := {expression}")
    except regopy.RegoError as exc:
        raise ConfigError(f"policy evaluation failed: {one_line(exc)}") from None
    except ValueError:  # regopy could not parse the engine's output as JSON
        raise ConfigError(f"policy output for {expression} is unreadable") from None
    return _read_output(output, expression)


def _read_output(output: Any, expression: str) -> Any:
    """The value bound to the query variable in a regopy ``output``, as plain JSON."""
    text = str(output)
    if not output.ok():
        raise ConfigError(f"policy evaluation failed: {one_line(text)}")
    try:
        document = json.loads(text)
        return document["bindings"][BINDING]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"policy defines no {expression}") from None


@dataclass
class _FilePolicy:
    """One compiled single-file policy: its interpreter, built query bundles and digest."""

    interpreter: Any
    bundles: dict[str, Any]
    digest: str
    lock: threading.Lock


@functools.lru_cache(maxsize=16)
def _compiled_file(
    name: str, digest: str, source: str, package: str, queries: tuple[str, ...]
) -> _FilePolicy:
    interpreter = _compile_modules(((name, source),))
    import regopy

    try:
        bundles = {q: interpreter.build(f"{BINDING} := data.{package}.{q}") for q in queries}
    except regopy.RegoError as exc:
        raise ConfigError(f"policy file {name} does not compile: {one_line(exc)}") from None
    return _FilePolicy(interpreter, bundles, digest, threading.Lock())


def _file_policy(path: Path, package: str, queries: tuple[str, ...], what: str) -> _FilePolicy:
    """The policy file ``path`` compiled once per content (sha256), with ``queries`` built.

    ``what`` names the policy in errors ("authorization policy"); ConfigError if the
    file is missing, unreadable, not UTF-8 or does not compile.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} is unreadable: {exc.strerror}") from None
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"policy file {path.name} is not UTF-8") from None
    return _compiled_file(path.name, hashlib.sha256(data).hexdigest(), source, package, queries)


def _query_data(interpreter: Any, lock: Any, package: str, name: str, what: str) -> Any:
    """``data.<package>.<name>`` of a compiled single-file policy, with no input.

    ``lock`` serialises use of ``interpreter``; ``what`` names the policy in errors.
    """
    with lock:
        interpreter.set_input_term("{}")
        try:
            output = interpreter.query(f"{BINDING} := data.{package}.{name}")
        except Exception as exc:
            raise ConfigError(f"{what} evaluation failed: {one_line(exc)}") from None
    return _read_output(output, f"data.{package}.{name}")


def _rule_descriptions(value: Any, package: str) -> dict[str, str]:
    """Rule id -> what it requires, from a policy's ``rules`` object."""
    if not isinstance(value, dict):
        raise ConfigError(f"data.{package}.rules is not an object")
    return {str(k): str(v) for k, v in value.items()}


def one_line(obj: object) -> str:
    """``obj`` as one line of at most 500 characters."""
    return " ".join(str(obj).split())[:500]


def _plain_json(document: Mapping[str, Any]) -> Any:
    """The input as plain JSON values; InvalidInputError if it is not JSON."""
    if not isinstance(document, Mapping):
        raise InvalidInputError("policy input must be a JSON object")
    try:
        return _sanitised(json.loads(json.dumps(document, allow_nan=False)))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"policy input is not plain JSON: {exc}") from None


def _sanitised(value: Any) -> Any:
    """Replace quotes, backslashes and control characters in every string by U+FFFD.

    rego-cpp (regopy 1.5) writes such characters unescaped when a string that
    went through a built-in (``sprintf``, ``lower``, ...) reaches the output,
    which then cannot be parsed. No rule depends on them; a reason shows
    U+FFFD in their place.
    """
    if isinstance(value, str):
        return value.translate(_UNSAFE_FOR_REGO)
    if isinstance(value, list):
        return [_sanitised(v) for v in value]
    if isinstance(value, dict):
        return {_sanitised(k): _sanitised(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------- decisions


def evaluate(input: Mapping[str, Any], policy_dir: Path = DEFAULT_POLICY_DIR) -> Decision:
    """Evaluate the policy in ``policy_dir`` on ``input`` and collect all reasons.

    Never raises on a denial. Raises :class:`InvalidInputError` if ``input``
    is not a JSON object and :class:`ConfigError` if the policy is missing or
    broken.
    """
    document = _plain_json(input)
    policy = _load(policy_dir)
    interpreter = _interpreter(policy)
    interpreter.set_input_term(json.dumps(document, ensure_ascii=False))
    result = _query(interpreter, f"data.{PACKAGE}.decision")
    if not isinstance(result, dict):
        raise ConfigError(f"data.{PACKAGE}.decision is not an object")
    reasons = sorted(str(r) for r in result.get("deny", []))
    # Fail closed: allow needs the policy's allow *and* no reason at all.
    allow = result.get("allow") is True and not reasons
    return Decision(allow=allow, reasons=reasons, policy_digest=policy.digest)


def enforce(input: Mapping[str, Any], policy_dir: Path = DEFAULT_POLICY_DIR) -> Decision:
    """Like :func:`evaluate`, but raise :class:`PolicyError` naming every reason on denial."""
    decision = evaluate(input, policy_dir)
    if not decision.allow:
        raise PolicyError(f"policy denied: {'; '.join(decision.reasons)}")
    return decision


def explain(decision: Decision) -> str:
    """A human-readable account of a decision, one reason per line."""
    head = "ALLOW" if decision.allow else f"DENY ({len(decision.reasons)} reasons)"
    lines = [f"{head} under policy sha256:{decision.policy_digest}"]
    lines += [f"  - {reason}" for reason in decision.reasons]
    return "\n".join(lines)


def policy_rules(policy_dir: Path = DEFAULT_POLICY_DIR) -> dict[str, str]:
    """Rule id -> what it requires, as the policy itself declares them."""
    interpreter = _interpreter(_load(policy_dir))
    interpreter.set_input_term("{}")
    rules = _query(interpreter, f"data.{PACKAGE}.rules")
    if not isinstance(rules, dict):
        raise ConfigError(f"data.{PACKAGE}.rules is not an object")
    return {str(k): str(v) for k, v in rules.items()}


def rule_of(reason: str) -> str:
    """The id of the rule that produced ``reason`` (the text before the first colon)."""
    return reason.split(":", 1)[0]


# --------------------------------------------------------------------------- table tests


@dataclass(frozen=True)
class PolicyCase:
    """One table-driven case: ``base`` patched by ``patch`` must give these reasons."""

    name: str
    rule: str
    input: dict[str, Any]
    allow: bool
    reasons: list[str]


@dataclass(frozen=True)
class CaseResult:
    """How one :class:`PolicyCase` came out."""

    name: str
    rule: str
    passed: bool
    expected_allow: bool
    allow: bool
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line: PASS/FAIL, the case, and any reason difference."""
        line = f"{'PASS' if self.passed else 'FAIL'} [{self.rule}] {self.name}"
        if self.expected_allow != self.allow:
            line += f" (expected allow={self.expected_allow}, got {self.allow})"
        if self.missing:
            line += f" missing: {self.missing}"
        if self.unexpected:
            line += f" unexpected: {self.unexpected}"
        return line


@overload
def merge_patch(target: JSON, patch: dict[str, JSON]) -> dict[str, JSON]: ...
@overload
def merge_patch(target: JSON, patch: JSON) -> JSON: ...


def merge_patch(target: JSON, patch: JSON) -> JSON:
    """Apply a JSON merge patch (RFC 7386): objects merge, ``null`` deletes, else replace."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, JSON] = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def load_cases(path: Path) -> list[PolicyCase]:
    """Read a cases file: ``{"base": {...}, "cases": [{name, rule, patch, allow, reasons}]}``."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        base = document["base"]
        return [
            PolicyCase(
                name=str(raw["name"]),
                rule=str(raw["rule"]),
                input=merge_patch(base, raw.get("patch", {})),
                allow=bool(raw["allow"]),
                reasons=[str(r) for r in raw.get("reasons", [])],
            )
            for raw in document["cases"]
        ]
    except FileNotFoundError:
        raise ConfigError(f"policy cases file {path} does not exist") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"policy cases file {path} is malformed: {exc!r}") from None


def run_case(case: PolicyCase, policy_dir: Path) -> CaseResult:
    """Evaluate one case and compare allow and the exact set of reasons."""
    decision = evaluate(case.input, policy_dir)
    missing = sorted(set(case.reasons) - set(decision.reasons))
    unexpected = sorted(set(decision.reasons) - set(case.reasons))
    passed = decision.allow == case.allow and not missing and not unexpected
    return CaseResult(case.name, case.rule, passed, case.allow, decision.allow, missing, unexpected)


def run_policy_tests(
    policy_dir: Path = DEFAULT_POLICY_DIR, cases_file: Path | None = None
) -> list[CaseResult]:
    """Run every case of ``cases_file`` (default ``policy_dir/tests/cases.json``)."""
    path = cases_file if cases_file is not None else policy_dir / CASES_FILE
    return [run_case(case, policy_dir) for case in load_cases(path)]


def coverage_gaps(results: Sequence[CaseResult], rules: Mapping[str, str]) -> list[str]:
    """Rules lacking an allow case or a deny case among ``results``."""
    gaps = []
    for rule in sorted(rules):
        kinds = {r.expected_allow for r in results if r.rule == rule}
        if True not in kinds:
            gaps.append(f"{rule}: no allow case")
        if False not in kinds:
            gaps.append(f"{rule}: no deny case")
    return gaps
