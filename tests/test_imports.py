"""Import weight: what each entry point loads, checked in a fresh interpreter
(a module loaded by an earlier test would hide a regression here)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "ray", "sklearn", "fastapi", "starlette", "uvicorn", "umap", "numba")
STORAGE = ("sqlalchemy", "alembic", "psycopg")


def loaded_after(statement: str, watch: tuple[str, ...]) -> list[str]:
    code = (f"import sys\n{statement}\n"
            f"import json; print(json.dumps([m for m in {list(watch)!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("statement, forbidden", [
    # The package itself: error types only.
    ("import assay", HEAVY + STORAGE + ("pandas", "pyarrow", "numpy")),
    # The algorithms work without the storage layer.
    ("import assay.quality", HEAVY + STORAGE),
    ("from assay.quality import DawidSkene, aggregate", HEAVY + STORAGE),
    ("import assay.kinds", HEAVY + STORAGE),
    # The front door loads the database layer, never an ML framework or the server.
    ("from assay import Workspace", HEAVY),
])
def test_entry_point_stays_light(statement, forbidden):
    assert loaded_after(statement, forbidden) == []


def test_the_front_door_still_loads_storage_when_asked():
    """The lazy attribute is real: ``from assay import Workspace`` is the class."""
    code = ("import sys, assay\nfrom assay import Workspace\nimport assay.workspace as w\n"
            "assert Workspace is w.Workspace is assay.Workspace\n"
            "assert 'Workspace' in dir(assay) and 'sqlalchemy' in sys.modules\n"
            "try:\n    assay.NoSuchThing\nexcept AttributeError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "has no attribute 'NoSuchThing'" in out.stdout
