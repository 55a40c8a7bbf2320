"""Storage: the database (SQLAlchemy Core), its migrations and the blob store.

Algorithms never import this package; the workspace composes the two.
"""

from assay.store.blobs import BlobStore
from assay.store.engine import Database

__all__ = ["BlobStore", "Database"]
