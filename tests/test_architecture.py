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


def _fedsph_module(name: str | None) -> bool:
    return name == "fedsph" or (name or "").startswith("fedsph.")


def test_fedsph_imports_stand_at_the_top_of_their_module():
    """An import inside a function is how a cycle hides from import-linter."""
    inside = [f"{path.relative_to(ROOT)}:{line}" for path in _modules("fedsph")
              for line in _fedsph_imports_in_functions(ast.parse(path.read_text()))]
    assert inside == []


def _fedsph_imports_in_functions(tree: ast.AST) -> list[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if (isinstance(inner, ast.ImportFrom) and _fedsph_module(inner.module)) or (
                        isinstance(inner, ast.Import)
                        and any(_fedsph_module(alias.name) for alias in inner.names)):
                    lines.add(inner.lineno)
    return sorted(lines)


def _test_module(name: str) -> bool:
    """tests.conftest, or a collected test module (tests.test_x, tests.hostile.test_x, ...)."""
    return name == "tests.conftest" or (
        name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_"))


def _imported_test_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _test_module(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if _test_module(node.module):
                found.append((node.lineno, node.module))
            elif node.module.startswith("tests") and not node.module.startswith("tests.support"):
                # `from tests import test_x` / `from tests.hostile import test_y`
                found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names
                          if _test_module(f"{node.module}.{a.name}")]
    return found


def test_test_modules_share_helpers_only_through_support():
    found = [f"{path.relative_to(ROOT)}:{line} {name}" for path in _modules("tests")
             for line, name in _imported_test_modules(ast.parse(path.read_text()))]
    assert found == []


def test_the_structure_checks_catch_what_they_are_for():
    """The checks above see every form: `import fedsph.x` in a function, and a test module
    imported as `tests.hostile.test_x`, `import tests.test_x` or `from tests import test_x`."""
    imports = ast.parse("import tests.hostile.test_a\nfrom tests.hostile.test_b import f\n"
                        "from tests import test_c, support\nfrom tests.hostile import test_d\n"
                        "from tests.support.db import deliveries\nfrom tests import conftest\n")
    assert [name for _, name in _imported_test_modules(imports)] == [
        "tests.hostile.test_a", "tests.hostile.test_b", "tests.test_c", "tests.hostile.test_d",
        "tests.conftest"]
    functions = ast.parse("import fedsph.app\nasync def f():\n    import fedsph.worker\n"
                          "def g():\n    from fedsph import cli\n    import fedsphx\n")
    assert _fedsph_imports_in_functions(functions) == [3, 5]
