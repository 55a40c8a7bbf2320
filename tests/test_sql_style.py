"""The SQL style rule (``assay.store``'s docstring) holds in every module of
``src/assay``: a source scan, so a new violation fails here with its line.

1. SQL text given to ``text()``, ``exec_driver_sql`` or a cursor's
   ``execute``/``executemany`` is built only from string literals, module
   constants (UPPER_CASE names, themselves checked where they are defined),
   the named fragment builders below and validated integers (``int(...)``)
   — never from a value. Values are bound parameters. ``%`` formatting is
   never used on SQL.
2. Bare DB-API connections and cursors (``.cursor()``, ``raw_connection``,
   ``driver_connection``, ``sqlite3.connect``, ``psycopg.connect``) appear
   only in ``assay/store/engine.py`` (the fast lane and SQLite's connect
   hook); the fast lane (``fast_read``/``fast_write``/``db.fast``) is used
   only by the hot-path modules listed in ``FAST_LANE_USERS``.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "assay"

# Functions that return SQL fragments made from constants and their own
# arguments (which are column names or other fragments, never values).
FRAGMENT_BUILDERS = {
    "shuffle_key_sql",   # assay.store.engine: the dialect's hash of an id (hand-out order)
    "shuffle_key",       # assay.store.engine.Database.shuffle_key: the same, for this database
    "_settle_sql",       # assay.engine.ledger: the SET clause that recomputes the counters
    "_greatest",         # assay.engine.ledger: GREATEST()/MAX() by dialect
}
# Parameters that carry a SQL fragment by contract: (module, function, parameter).
FRAGMENT_PARAMETERS = {
    ("engine/ledger.py", "create_tasks", "shuffled_expr_sql"),  # a shuffle_key_sql() result
    ("engine/ledger.py", "_settle_sql", "needed_sql"),
    ("engine/ledger.py", "_greatest", "a"),
    ("engine/ledger.py", "_greatest", "b"),
    # The fast lane runs the text() statements its callers pass: they are checked where written.
    ("store/engine.py", "_run", "sql"),
}
# Modules where bare DB-API objects may appear at all.
DBAPI_MODULES = {"store/engine.py"}
# The hot path: modules that may run statements on the fast lane (bare cursors).
FAST_LANE_USERS = {
    "engine/handout.py",  # hand-out and answers (through db.fast, passed in by the workspace)
    "workspace/labeling.py",  # next_task / submit open the fast transaction that handout runs in
    "workspace/teaching.py",  # next_task's probe for open teaching needs (one indexed read)
    "simulation/crowd.py",  # the simulator replays the hand-out in a tight loop
    "engine/redundancy.py",  # a re-fit reads every answer and writes a row per answered item
}

SQL_SINKS = {"text", "exec_driver_sql", "execute", "executemany", "executescript"}
DBAPI_NAMES = {"cursor", "raw_connection", "driver_connection", "dbapi_connection"}
FAST_LANE_NAMES = {"fast_read", "fast_write", "fast"}


def _name(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_constant_name(name: str) -> bool:
    return name.lstrip("_").isupper() or name.lstrip("_").replace("_", "").isupper()


class Module:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.rel = path.relative_to(SRC).as_posix()
        self.source = path.read_text()
        self.tree = ast.parse(self.source)
        self.parents: dict[ast.AST, ast.AST] = {}
        for parent in ast.walk(self.tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent
        self.module_assigns = self._assigns(self.tree.body)
        # Names imported from assay: local name -> (module file, name there or None for a module).
        self.imports: dict[str, tuple[Path, str | None]] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "assay":
                for alias in node.names:
                    target = _module_file(f"{node.module}.{alias.name}")
                    self.imports[alias.asname or alias.name] = (
                        (target, None) if target else (_module_file(node.module), alias.name))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "assay" and alias.asname:
                        self.imports[alias.asname] = (_module_file(alias.name), None)

    def _assigns(self, body) -> dict[str, list[ast.AST]]:
        found: dict[str, list[ast.AST]] = {}
        for stmt in body:
            for node in ast.walk(stmt) if not isinstance(stmt, (ast.FunctionDef, ast.ClassDef)) else ():
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            found.setdefault(target.id, []).append(node.value)
                elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and isinstance(node.target, ast.Name):
                    if node.value is not None:
                        found.setdefault(node.target.id, []).append(node.value)
        return found

    def function_of(self, node) -> ast.FunctionDef | None:
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return node
        return None

    def local_values(self, fn, name: str) -> list[ast.AST] | None:
        """What ``name`` is assigned inside ``fn`` (None: not assigned there)."""
        values: list[ast.AST] = []
        assigned = False
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id == name:
                        values.append(node.value)
                        assigned = True
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and isinstance(node.target, ast.Name) \
                    and node.target.id == name:
                assigned = True
                if node.value is not None:
                    values.append(node.value)
            elif isinstance(node, (ast.For, ast.comprehension)) and isinstance(node.target, ast.Name) \
                    and node.target.id == name:
                assigned = True
                values.append(("loop", node.iter))
            elif isinstance(node, ast.NamedExpr) and node.target.id == name:
                assigned = True
                values.append(node.value)
        return values if assigned else None

    # ------------------------------------------------------------ SQL text

    def sql(self, node, fn, seen: frozenset = frozenset()) -> list[str]:
        """Problems with ``node`` used as SQL text."""
        if isinstance(node, ast.Constant):
            return [] if isinstance(node.value, str) else [f"a {type(node.value).__name__} is not SQL"]
        if isinstance(node, ast.JoinedStr):
            out = []
            for part in node.values:
                if isinstance(part, ast.FormattedValue):
                    out += self.fragment(part.value, fn, seen)
            return out
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Add):
                return self.sql(node.left, fn, seen) + self.sql(node.right, fn, seen)
            return ["SQL built with an operator other than +, e.g. % formatting"]
        if isinstance(node, ast.IfExp):
            return self.sql(node.body, fn, seen) + self.sql(node.orelse, fn, seen)
        if isinstance(node, ast.Call):
            name = _name(node.func)
            if name == "format" and isinstance(node.func, ast.Attribute):
                out = self.sql(node.func.value, fn, seen)
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    out += self.fragment(arg, fn, seen)
                return out
            if name == "join" and isinstance(node.func, ast.Attribute):
                out = self.sql(node.func.value, fn, seen)
                for arg in node.args:
                    out += self.fragment(arg, fn, seen)
                return out
            if name in ("text",) and node.args:
                return self.sql(node.args[0], fn, seen)
            if name in ("bindparams", "columns") and isinstance(node.func, ast.Attribute):
                return self.sql(node.func.value, fn, seen)
            if name in FRAGMENT_BUILDERS:
                return []
            return [f"SQL text from a call to {name or '?'}() (not a named fragment builder)"]
        if isinstance(node, ast.Name):
            return self.resolved(node.id, fn, seen, as_sql=True)
        if isinstance(node, ast.Attribute):
            owner = self.imports.get(_name(node.value) or "") if isinstance(node.value, ast.Name) else None
            if owner and owner[1] is None and owner[0] is not None:
                return _module(owner[0]).resolved(node.attr, None, seen, as_sql=True)
            if _is_constant_name(node.attr):
                return []  # a class or instance constant
            return [f"SQL text from attribute .{node.attr}"]
        if isinstance(node, (ast.Tuple, ast.List)):
            return [p for e in node.elts for p in self.sql(e, fn, seen)]
        if isinstance(node, (ast.GeneratorExp, ast.ListComp)):
            return self.fragment(node.elt, fn, seen)
        return [f"SQL text from a {type(node).__name__}"]

    def fragment(self, node, fn, seen: frozenset) -> list[str]:
        """Problems with ``node`` interpolated into SQL text."""
        if isinstance(node, ast.Call):
            name = _name(node.func)
            if name == "int" and isinstance(node.func, ast.Name):
                return []  # a validated integer literal
            if name in ("lower", "upper") and isinstance(node.func, ast.Attribute):
                return self.fragment(node.func.value, fn, seen)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return []  # an integer literal
        if isinstance(node, ast.Name):
            return self.resolved(node.id, fn, seen, as_sql=False)
        return self.sql(node, fn, seen)

    def resolved(self, name: str, fn, seen: frozenset, *, as_sql: bool) -> list[str]:
        key = (id(fn), name)
        if key in seen:
            return []
        seen = seen | {key}
        check = self.sql if as_sql else self.fragment
        if fn is not None:
            values = self.local_values(fn, name)
            if values is not None:
                out = []
                for v in values:
                    if isinstance(v, tuple):  # a loop variable: over literals only
                        it = v[1]
                        if not (isinstance(it, (ast.Tuple, ast.List))
                                and all(isinstance(e, ast.Constant) for e in it.elts)):
                            out += self.sql(it, fn, seen)
                        continue
                    out += check(v, fn, seen)
                return out
            params = {a.arg for a in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]}
            if name in params:
                if (self.rel, fn.name, name) in FRAGMENT_PARAMETERS:
                    return []
                return [f"SQL text from the parameter {name!r} of {fn.name}()"]
            outer = self.function_of(fn)
            if outer is not None:
                return self.resolved(name, outer, seen, as_sql=as_sql)
        if name in self.module_assigns:
            out = []
            for v in self.module_assigns[name]:
                out += check(v, None, seen)
            return out
        imported = self.imports.get(name)
        if imported and imported[0] is not None and imported[1] is not None:
            return _module(imported[0]).resolved(imported[1], None, seen, as_sql=as_sql)
        return [f"SQL text from {name!r}, defined elsewhere"]

    # ------------------------------------------------------------ scan

    def scan(self) -> list[str]:
        out = []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call) and node.args:
                name = _name(node.func)
                if name in SQL_SINKS and (name == "text" or isinstance(node.func, ast.Attribute)):
                    arg = node.args[0]
                    fn = self.function_of(node)
                    if name != "text" and not self._stringish(arg, fn):
                        continue  # a Core expression or a text() object
                    for problem in self.sql(arg, fn):
                        out.append(f"{self.rel}:{node.lineno}: {problem}")
            self._dbapi(node, out)
        return out

    def _stringish(self, arg, fn, depth: int = 0) -> bool:
        """Is this ``execute`` argument SQL text (not a Core expression / text() object)?"""
        if isinstance(arg, (ast.Constant, ast.JoinedStr, ast.BinOp)):
            return True
        if isinstance(arg, ast.Call):
            return _name(arg.func) in ("format", "join", *FRAGMENT_BUILDERS)
        if isinstance(arg, ast.IfExp):
            return self._stringish(arg.body, fn, depth) or self._stringish(arg.orelse, fn, depth)
        if isinstance(arg, ast.Name) and depth < 5:
            values = self.local_values(fn, arg.id) if fn is not None else None
            if values is None:
                if fn is not None and arg.id in {a.arg for a in [*fn.args.args, *fn.args.kwonlyargs]}:
                    return (self.rel, fn.name, arg.id) in FRAGMENT_PARAMETERS or self.rel in DBAPI_MODULES
                values = self.module_assigns.get(arg.id, [])
            return any(not isinstance(v, tuple) and self._stringish(v, fn, depth + 1) for v in values)
        return False

    def _dbapi(self, node, out: list[str]) -> None:
        name = None
        if isinstance(node, ast.Attribute) and node.attr in DBAPI_NAMES:
            if node.attr == "cursor" and not isinstance(self.parents.get(node), ast.Call):
                return
            name = node.attr
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "connect" \
                and _name(node.func.value) in ("sqlite3", "psycopg", "psycopg2"):
            name = f"{_name(node.func.value)}.connect"
        if name and self.rel not in DBAPI_MODULES:
            out.append(f"{self.rel}:{node.lineno}: bare DB-API use ({name}) outside {sorted(DBAPI_MODULES)}")
        if isinstance(node, ast.Attribute) and node.attr in FAST_LANE_NAMES and self.rel not in FAST_LANE_USERS \
                and self.rel not in DBAPI_MODULES and _name(node.value) in ("db", "self"):
            out.append(f"{self.rel}:{node.lineno}: fast lane ({node.attr}) outside the hot path {sorted(FAST_LANE_USERS)}")


def _module_file(dotted: str) -> Path | None:
    parts = dotted.split(".")[1:]
    base = SRC.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


_MODULES: dict[Path, Module] = {}


def _module(path: Path) -> Module:
    if path not in _MODULES:
        _MODULES[path] = Module(path)
    return _MODULES[path]


def violations() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        found += _module(path).scan()
    return found


def test_sql_text_is_built_only_from_constants_and_named_fragments():
    found = [v for v in violations() if "DB-API" not in v and "fast lane" not in v]
    assert found == [], "\n".join(found)


def test_bare_dbapi_only_in_the_store_and_the_fast_lane_only_on_the_hot_path():
    found = [v for v in violations() if "DB-API" in v or "fast lane" in v]
    assert found == [], "\n".join(found)


def test_the_scan_catches_what_it_forbids(tmp_path):
    """The scanner is not vacuous: each forbidden shape is reported."""
    bad = '''
from sqlalchemy import text
LIMIT = 10
def f(conn, name, n):
    conn.execute(text(f"SELECT * FROM items WHERE name = '{name}'"))
    conn.execute(text("SELECT * FROM items WHERE id = %s" % n))
    sql = "SELECT * FROM t WHERE a = " + name
    conn.execute(text(sql))
    conn.exec_driver_sql(f"SELECT {n}")
    conn.execute(text(f"SELECT * FROM t LIMIT {LIMIT} OFFSET {int(n)}"))
    cur = conn.connection.cursor()
    cur.execute(f"DELETE FROM t WHERE id = {n}")
'''
    bad += '''
from assay.frag import WHERE
def g(conn):
    conn.execute(text("SELECT 1 FROM t WHERE 1 = 1 " + WHERE))
'''
    pkg = tmp_path / "assay"
    pkg.mkdir()
    (pkg / "bad.py").write_text(bad)
    (pkg / "frag.py").write_text("import os\nWHERE = 'AND a = ' + os.environ['A']\n")
    import test_sql_style as me

    old = me.SRC
    me.SRC = pkg
    try:
        found = me._module(pkg / "bad.py").scan()
    finally:
        me.SRC = old
    lines = sorted({int(v.split(":")[1]) for v in found})
    assert lines == [5, 6, 8, 9, 11, 12, 16], found
