"""The structure rules of ARCHITECTURE.md that a linter does not check (import-linter, run by
`make test`, checks the layers and cycles): small modules, imports at the top of a module, and
test modules that share helpers only through tests/support."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_no_fedsph_module_is_over_the_line_limit():
    long = {str(p.relative_to(ROOT)): n for p in _modules("fedsph")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_fedsph_imports_stand_at_the_top_of_their_module():
    """An import inside a function is how a cycle hides from import-linter."""
    inside = []
    for path in _modules("fedsph"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("fedsph"):
                        inside.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert inside == []


def test_test_modules_share_helpers_only_through_support():
    found = []
    for path in _modules("tests"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and (
                    node.module == "tests.conftest" or node.module.startswith("tests.test_")):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.module}")
    assert found == []
