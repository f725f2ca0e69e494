"""The code stays readable in one sitting: no module in src/ over 300 lines, no function over 60; the function
imports nothing from the rooms around it; and nothing of ours touches another library's private parts."""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
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


# -- public interfaces only -----------------------------------------------------------------------------------------
OUR_PACKAGES = frozenset({"headseg", "index", "tests", "bench"})
#: The standard library's documented names that begin with an underscore: `os._exit`, `namedtuple._replace`.
DOCUMENTED_UNDERSCORED = frozenset({"_exit", "_replace"})
#: What reads frames, whoever's they are (a library's frame holds its private locals).
FRAME_ATTRIBUTES = frozenset({"tb_frame", "f_back", "f_locals", "f_globals", "f_code", "gi_frame", "cr_frame"})
FRAME_FUNCTIONS = {
    "sys": {"_getframe"},
    "inspect": {"currentframe", "stack", "trace", "getouterframes", "getinnerframes"},
    "traceback": {"walk_tb", "walk_stack"},
}
SETTERS = frozenset({"getattr", "setattr", "hasattr", "delattr"})  # and monkeypatch.setattr / delattr


def everything_of_ours() -> list[Path]:
    return [*ours(), *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _foreign(module: str) -> bool:
    top = module.split(".")[0]
    return top not in OUR_PACKAGES and top not in sys.stdlib_module_names


def _names_we_define(paths: list[Path]) -> set[str]:
    """Every name our code binds: modules, functions, classes, variables, arguments, and attributes it assigns on
    its own objects (`self._x = ...`)."""
    names = {part for path in paths for part in path.with_suffix("").parts}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    names.add(node.attr)
    return names


def _root(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_monkeypatch(function: ast.expr) -> bool:
    return isinstance(function, ast.Attribute) and function.attr in ("setattr", "delattr")


def _code_in(node: ast.AST) -> ast.Module | None:
    """A string that is Python run elsewhere (`python -c`, a probe in a subprocess), parsed; None for any other."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str) and "import " in node.value):
        return None
    try:
        return ast.parse(node.value)
    except SyntaxError:
        return None


def _reaches(tree: ast.Module, where: str, ours: set[str]) -> list[str]:
    """Where a module (or the code in its strings) reads, calls or sets another library's private attribute, or
    reads a frame. Annotations are left out: never evaluated at run time, they are mypy's, and a renamed type
    fails it loudly."""
    foreign: set[str] = set()  # names bound by importing another distribution
    skip: set[int] = set()
    found = []
    for node in ast.walk(tree):
        for annotation in (getattr(node, "annotation", None), getattr(node, "returns", None)):
            skip |= {id(n) for n in ast.walk(annotation)} if isinstance(annotation, ast.AST) else set()
        if isinstance(node, ast.Import):
            imported = [a for a in node.names if _foreign(a.name)]
            foreign |= {a.asname or a.name.split(".")[0] for a in imported}
            found += [f"{where}: import {a.name}" for a in imported if any(map(_private, a.name.split(".")))]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and _foreign(node.module):
            foreign |= {a.asname or a.name for a in node.names}
            private = [a.name for a in node.names if any(map(_private, [*node.module.split("."), a.name]))]
            found += [f"{where}: from {node.module} import {name}" for name in private]

    def theirs(name: str, receiver: ast.expr) -> bool:
        if not _private(name) or name in DOCUMENTED_UNDERSCORED:
            return False
        return _root(receiver) in foreign or name not in ours

    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        line = f"{where}:{getattr(node, 'lineno', '')}"
        if (code := _code_in(node)) is not None:
            found += _reaches(code, f"{line} (code in a string)", ours)
        elif isinstance(node, ast.Attribute):
            frames = node.attr in FRAME_ATTRIBUTES or node.attr in FRAME_FUNCTIONS.get(_root(node.value) or "", ())
            if frames or theirs(node.attr, node.value):
                found.append(f"{line}: {ast.unparse(node)}")
        elif isinstance(node, ast.Call) and (getattr(node.func, "id", None) in SETTERS or _is_monkeypatch(node.func)):
            target = node.args[0] if node.args else node.func
            strings = [arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
            if any(theirs(name, target) for string in strings for name in string.split(".")):
                found.append(f"{line}: {ast.unparse(node)}")
    return found


def test_nothing_of_ours_reads_another_librarys_private_parts():
    """No private attribute of another library (a name with a leading underscore we never defined, or anything
    under a module we import) is read, called or patched, in code, tests or benchmarks, and no frame is read:
    those break silently when the library changes. Public interfaces only; no exceptions."""
    paths = [path for path in everything_of_ours() if path != Path(__file__).resolve()]  # this file's examples aside
    ours = _names_we_define(paths)
    found = [hit for path in paths for hit in _reaches(ast.parse(path.read_text()), str(path.relative_to(ROOT)), ours)]
    assert found == []


@pytest.mark.parametrize(
    "code",
    [
        "from darabonba.core import DaraCore\nDaraCore._sessions",
        "import darabonba.core as dc\ndc.DaraCore._get_session(session_key='k', protocol='http')",
        "import oss2\noss2.Bucket(None, 'e', 'b').auth._sign_request(1, 2, 3)",
        "client = make()\nclient._sessions.clear()",  # a private name we never defined, on any object
        "import oss2\ngetattr(oss2.api, '_make_range_string')",
        "def test(monkeypatch):\n    monkeypatch.setattr('PIL.Image._getdecoder', None)",
        "from PIL import Image\ndef test(monkeypatch):\n    monkeypatch.setattr(Image, '_getdecoder', None)",
        "from crcmod import _crcfunext",
        "import Tea._internal",
        "import sys\nsys._getframe(1).f_locals",
        "import inspect\ninspect.currentframe()",
        "try:\n    f()\nexcept Exception as exc:\n    exc.__traceback__.tb_frame",
        "import subprocess\nsubprocess.run(['python', '-c', 'import crcmod.crcmod as c; print(c._usingExtension)'])",
    ],
)
def test_the_private_parts_scan_sees_each_way_in(code):
    assert _reaches(ast.parse(code), "example", {"_mine"}) != []


@pytest.mark.parametrize(
    "code",
    [
        "import os\nos._exit(1)",  # documented
        "from collections import namedtuple\nnamedtuple('P', 'x')(1)._replace(x=2)",
        "class A:\n    def __init__(self):\n        self._mine = 1\n    def f(self, other):\n        return other._mine",
        "import argparse\ndef add(sub: argparse._SubParsersAction) -> None: ...",  # an annotation: mypy's
        "import oss2\noss2.Bucket.__init__",
    ],
)
def test_the_private_parts_scan_lets_public_and_own_names_be(code):
    assert _reaches(ast.parse(code), "example", {"_mine"}) == []
