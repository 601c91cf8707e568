"""The architecture rules of docs/architecture.md: dependencies point one way (checked on
every import, module level and inside functions alike), and nothing outgrows one job."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pychat"

#: layer -> layers it must never import.
FORBIDDEN = {
    "wire": {"server", "client", "tui", "store"},
    "crypto": {"server", "client", "tui", "store"},
    "store": {"server", "client", "tui"},
    "server": {"client", "tui"},
    "client": {"tui", "server"},
    "admin": {"client", "tui"},
}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "pychat" else None


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


def test_dependencies_point_one_way() -> None:
    broken = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = (
            path.relative_to(PACKAGE).parts[0] if len(path.relative_to(PACKAGE).parts) > 1 else None
        )
        if layer not in FORBIDDEN:
            continue
        for module in _imports(path):
            if _layer(module) in FORBIDDEN[layer]:
                broken.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    assert not broken, "\n".join(broken)


def test_the_rule_is_checked_at_all() -> None:
    assert any(m.startswith("pychat.client") for m in _imports(PACKAGE / "entry.py"))
    assert "pychat.client.cli" in _imports(PACKAGE / "entry.py")


#: The size limits of docs/architecture.md: a function that does one thing fits on a screen,
#: and a class past this many lines is doing several jobs.
MAX_FUNCTION_LINES = 60
MAX_CLASS_LINES = 300


def test_no_function_or_class_outgrows_one_job() -> None:
    too_big = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            limit = MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES
            if lines > limit:
                too_big.append(f"{where}:{node.lineno} {node.name}: {lines} lines")
    assert not too_big, "\n".join(too_big)
