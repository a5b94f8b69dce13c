"""No public function or method of the core, the tasks or the flows returns ``Any``.

mypy strict checks what the code does with its types; this checks the contract
it cannot: a public return annotation of ``Any`` (or ``Any | None``,
``Optional[Any]``, ...) would switch type checking off in every caller. Nested
uses such as ``dict[str, Any]`` still type the container and are allowed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("src/weightvault", "tasks", "flows")

_WRAPPERS = {"Optional", "Union", "Annotated"}
# Each exemption says why the Any cannot reach a caller.
_EXEMPT = {
    "flows/_operator.py field": "a flow parameter's form-field default, typed Any as "
    "pydantic.Field is: the parameter's own annotation types it",
}


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def mentions_any(annotation: ast.expr) -> bool:
    """Whether ``Any`` is the annotation or a top-level member of it (a union, Optional)."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        return mentions_any(ast.parse(annotation.value, mode="eval").body)
    if _name(annotation) == "Any":
        return True
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return mentions_any(annotation.left) or mentions_any(annotation.right)
    if isinstance(annotation, ast.Subscript) and _name(annotation.value) in _WRAPPERS:
        inner = annotation.slice
        if _name(annotation.value) == "Annotated":
            first = inner.elts[0] if isinstance(inner, ast.Tuple) else inner
            return mentions_any(first)
        members = inner.elts if isinstance(inner, ast.Tuple) else [inner]
        return any(mentions_any(m) for m in members)
    return False


def _public_defs(
    body: list[ast.stmt], scope: str
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Module-level functions and methods (of nested classes too), not local functions."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if not node.name.startswith("_"):
                yield f"{scope}{node.name}", node
        elif isinstance(node, ast.ClassDef):
            yield from _public_defs(node.body, f"{scope}{node.name}.")
        elif isinstance(node, ast.If | ast.Try):  # e.g. `if TYPE_CHECKING:` or try/except imports
            for block in (node.body, node.orelse, *[h.body for h in getattr(node, "handlers", [])]):
                yield from _public_defs(block, scope)


def returning_any(root: Path = ROOT) -> list[str]:
    """``path:line name -> annotation`` of every public def whose return is ``Any``."""
    found = []
    for top in CHECKED:
        for path in sorted((root / top).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for name, node in _public_defs(tree.body, ""):
                if f"{path.relative_to(root)} {name}" in _EXEMPT:
                    continue
                if node.returns is not None and mentions_any(node.returns):
                    where = f"{path.relative_to(root)}:{node.lineno}"
                    found.append(f"{where} {name} -> {ast.unparse(node.returns)}")
    return found


def test_no_public_function_returns_any() -> None:
    offenders = returning_any()
    assert not offenders, "public functions returning Any:\n" + "\n".join(offenders)


def test_every_checked_tree_is_there() -> None:
    for top in CHECKED:
        assert any((ROOT / top).rglob("*.py")), f"{top} has no Python files"


@pytest.mark.parametrize(
    "annotation",
    [
        "Any",
        "typing.Any",
        "Any | None",
        "None | Any",
        "str | int | Any",
        "Optional[Any]",
        "Union[str, Any]",
        "Annotated[Any, 'why']",
        "'Any'",
        "'Any | None'",
    ],
)
def test_top_level_any_is_caught(annotation: str) -> None:
    assert mentions_any(ast.parse(annotation, mode="eval").body)


@pytest.mark.parametrize(
    "annotation",
    [
        "dict[str, Any]",
        "list[Any] | None",
        "Mapping[str, Any]",
        "Callable[..., Any]",
        "object",
        "Anything",
        "JSON",
        "Annotated[int, Any]",
    ],
)
def test_nested_any_is_allowed(annotation: str) -> None:
    assert not mentions_any(ast.parse(annotation, mode="eval").body)


def test_public_defs_are_found_and_private_ones_skipped(tmp_path: Path) -> None:
    for top in CHECKED:
        (tmp_path / top).mkdir(parents=True)
    (tmp_path / "tasks" / "m.py").write_text(
        "from typing import Any\n"
        "def bad() -> Any: ...\n"
        "async def bad_async() -> 'Any | None': ...\n"
        "def _private() -> Any: ...\n"
        "def fine() -> dict[str, Any]: ...\n"
        "def outer() -> int:\n"
        "    def local() -> Any: ...\n"
        "    return 1\n"
        "class C:\n"
        "    def method(self) -> Any: ...\n"
        "    def _helper(self) -> Any: ...\n"
        "    class Inner:\n"
        "        def deep(self) -> Any: ...\n"
        "if True:\n"
        "    def conditional() -> Any: ...\n",
        encoding="utf-8",
    )
    names = [line.split(" ")[1] for line in returning_any(tmp_path)]
    assert names == ["bad", "bad_async", "C.method", "C.Inner.deep", "conditional"]
