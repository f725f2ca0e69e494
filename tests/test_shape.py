"""The code stays readable in one sitting: no module in src/ over 300 lines, no function over 60."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def ours() -> list[Path]:
    """headseg's modules and the entry point (not a deploy package built into src/python)."""
    return [SRC / "index.py", *(SRC / "headseg").rglob("*.py")]


def test_no_module_is_too_long():
    long = {str(p.relative_to(SRC)): n for p in ours() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_function_is_too_long():
    long = {}
    for path in ours():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(SRC)}:{node.name}"] = lines
    assert long == {}


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function (lazy imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_the_function_imports_nothing_from_the_rooms_around_it():
    """headseg/function is what FC runs: it may not reach into the tooling, the offline engine or the CLI."""
    rooms = ("headseg.ops", "headseg.local", "headseg.cli")
    function = [SRC / "index.py", *(SRC / "headseg" / "function").rglob("*.py")]
    reached = {str(p.relative_to(SRC)): sorted(m for m in _imports(p) if m.startswith(rooms)) for p in function}
    assert {name: modules for name, modules in reached.items() if modules} == {}


def test_every_module_lives_in_a_room():
    """The tree reads as the architecture: function, ops, local, cli; nothing loose beside them."""
    loose = sorted(p.name for p in (SRC / "headseg").glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert loose == []
