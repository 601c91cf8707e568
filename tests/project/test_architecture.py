"""The architecture rules of docs/architecture.md: dependencies point one way (checked on
every import, module level and inside functions alike), and nothing outgrows one job."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import ROOT

PACKAGE = ROOT / "pychat"

#: layer -> layers it must never import.
FORBIDDEN = {
    "wire": {"server", "client", "tui", "store"},
    "crypto": {"server", "client", "tui", "store"},
    "srp": {"server", "client", "tui", "store"},
    "text": {"server", "client", "tui", "store"},
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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _pychat_imports(path: Path, modules: set[str]) -> set[str]:
    """The pychat modules ``path`` imports anywhere: at module level, in ``if TYPE_CHECKING:``
    blocks and inside functions alike (an import moved into a function to dodge a cycle is
    still two modules that need each other)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_modules() -> None:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    graph = {name: _pychat_imports(path, modules) - {name} for name, path in paths.items()}
    # A package's __init__ importing its own modules is how a package shows its public names.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    cycles = _cycles(graph)
    assert not cycles, "\n".join(" <-> ".join(c) for c in cycles)


def test_no_line_is_packed_past_the_formatter() -> None:
    packed = [
        f"{path.relative_to(PACKAGE.parent)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "fmt: skip" in line or "fmt: off" in line
    ]
    assert not packed, "\n".join(packed)
