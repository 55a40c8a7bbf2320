"""assay — an open-source data engine.

``import assay`` is light: it loads the error types only. ``Workspace`` (and
with it SQLAlchemy and Alembic) loads on first use (``from assay import
Workspace``), so ``import assay.quality`` stays free of the storage layer.
Nothing here ever loads torch, sklearn or FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assay.errors import (
    AssayError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ loads it
    from assay.workspace import Workspace

__all__ = [
    "AssayError",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "Unauthorized",
    "Workspace",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "Workspace":
        from assay.workspace import Workspace

        globals()["Workspace"] = Workspace  # later lookups skip this hook
        return Workspace
    raise AttributeError(f"module 'assay' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"Workspace"})
