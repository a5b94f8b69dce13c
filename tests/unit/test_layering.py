"""Only the crypto and keys packages of the core touch cryptography.hazmat.

import-linter cannot forbid a subpackage of an external package, so this
checks the core's own source for it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

CORE = REPO / "src" / "weightvault"
ALLOWED = {"crypto", "keys"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_crypto_and_keys_import_hazmat() -> None:
    offenders = []
    for path in CORE.rglob("*.py"):
        rel = path.relative_to(CORE)
        if rel.parts[0] in ALLOWED:
            continue
        if any(n.startswith("cryptography.hazmat") for n in _imports(path)):
            offenders.append(str(rel))
    assert offenders == []


def test_core_never_imports_prefect() -> None:
    offenders = [
        str(p.relative_to(CORE))
        for p in CORE.rglob("*.py")
        if any(n == "prefect" or n.startswith("prefect.") for n in _imports(p))
    ]
    assert offenders == []
