"""assay — an open-source data engine.

``import assay`` is light: it loads the workspace front door and the error
types, never torch or ray.
"""

from assay.errors import (
    AssayError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
)
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
