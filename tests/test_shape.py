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
