"""The house's shape: folders show the layers, and no module or function grows
past what a reader can hold (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "assay"

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80

#: the layers (docs/architecture.md); a new top-level package is a decision, not an accident
LAYERS = {"store", "kinds", "engine", "formats", "quality", "learn", "jobs", "simulation", "server", "cli",
          "samples", "workspace"}

#: over the limits today, each on its way out (an entry may only be removed)
TOO_LONG_MODULES: set[str] = set()
TOO_LONG_FUNCTIONS: set[str] = set()


def _modules():
    return [p for p in sorted(SRC.rglob("*.py")) if "migrations" not in p.parts]


def _sizes():
    modules, functions = {}, {}
    for p in _modules():
        rel = p.relative_to(SRC).as_posix()
        source = p.read_text(encoding="utf-8")
        modules[rel] = len(source.splitlines())
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions[f"{rel}:{node.name}"] = node.end_lineno - node.lineno + 1
    return modules, functions


def test_no_module_or_function_over_the_limits():
    modules, functions = _sizes()
    long_modules = {m for m, n in modules.items() if n > MAX_MODULE_LINES}
    long_functions = {f for f, n in functions.items() if n > MAX_FUNCTION_LINES}
    assert long_modules <= TOO_LONG_MODULES, {m: modules[m] for m in long_modules - TOO_LONG_MODULES}
    assert long_functions <= TOO_LONG_FUNCTIONS, {f: functions[f] for f in long_functions - TOO_LONG_FUNCTIONS}
    # a module or function brought under the limit leaves the list for good
    assert TOO_LONG_MODULES <= long_modules, TOO_LONG_MODULES - long_modules
    assert TOO_LONG_FUNCTIONS <= long_functions, TOO_LONG_FUNCTIONS - long_functions


def test_folders_are_the_layers():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert packages <= LAYERS, packages - LAYERS
    top = {p.stem for p in SRC.glob("*.py")}
    # the top level holds the few cross-cutting modules only (the facade is the workspace package)
    assert top <= {"__init__", "errors", "config", "audit", "security", "quickstart"}, top


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_the_engine_never_reaches_up():
    # assay.engine takes a connection (or the Database) and plain values: the workspace calls it,
    # never the other way round, and neither HTTP nor the CLI is below it
    above = ("assay.workspace", "assay.server", "assay.cli", "assay.quickstart")
    for p in sorted((SRC / "engine").glob("*.py")):
        up = {n for n in _imported(p) if any(n == a or n.startswith(a + ".") for a in above)}
        assert not up, (p.name, up)
