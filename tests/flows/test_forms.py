"""Every served deployment's run form is one an operator can fill in.

The Prefect UI builds each form from the deployment's ``parameter_openapi_schema``:
no wrapping ``params`` object, no "str | None" toggles (``anyOf`` with null), and
every field labelled and explained.
"""

from __future__ import annotations

from typing import Any

import pytest

from flows.deployments import deployments


def _fields(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(schema.get("properties", {}))


@pytest.fixture(scope="module")
def schemas(monkeypatch_module: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    monkeypatch_module.setenv("WEIGHTVAULT_WITNESS_HOME", "/nonexistent/witness")  # serve it too
    return {
        d.name: d._parameter_openapi_schema.model_dump_for_openapi()  # noqa: SLF001 - the UI's form
        for d in deployments()
    }


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_every_deployment_is_checked(schemas: dict[str, dict[str, Any]]) -> None:
    assert {"ingest", "validate", "promote", "recover", "rekey", "rotate-keys"} <= set(schemas)
    assert {"contain", "dr-drill", "detect", "witness"} <= set(schemas)


def test_forms_have_plain_labelled_fields(schemas: dict[str, dict[str, Any]]) -> None:
    problems = []
    for name, schema in schemas.items():
        assert "definitions" not in schema or not schema["definitions"], name
        for field, spec in _fields(schema).items():
            where = f"{name}.{field}"
            if field == "params":
                problems.append(f"{where}: a wrapping params object")
            if any(alt.get("type") == "null" for alt in spec.get("anyOf", [])):
                problems.append(f"{where}: an optional (anyOf null) field")
            if spec.get("type") == "object" and spec.get("properties"):
                problems.append(f"{where}: a nested object")
            title = spec.get("title", "")
            if not title or (title == field and "_" in field):
                problems.append(f"{where}: no operator title ({title!r})")
            if not spec.get("description"):
                problems.append(f"{where}: no description")
    assert not problems, problems


def test_the_promote_form(schemas: dict[str, dict[str, Any]]) -> None:
    form = _fields(schemas["promote"])
    assert list(form) == ["artifact_id", "target_tier", "justification", "legal_hold"]
    assert form["artifact_id"]["title"] == "Artifact"
    assert form["target_tier"]["enum"] == ["warm", "cold"]
    assert form["legal_hold"]["default"] is False
    assert sorted(schemas["promote"]["required"]) == ["artifact_id", "justification", "target_tier"]
    assert _fields(schemas["ingest"])["version"]["default"] == ""  # empty means none
