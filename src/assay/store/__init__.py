"""Storage: the database (SQLAlchemy Core), its migrations and the blob store.

Algorithms never import this package; the workspace composes the two.

SQL style (enforced by ``tests/test_sql_style.py``):

- A statement is a SQLAlchemy Core expression (``select(table)…``) or a
  ``text()`` statement, preferably a module-level constant so it is parsed
  once and can be read in one place.
- Values are always bound parameters (``:name``; lists through
  ``bindparam(..., expanding=True)``), never put into SQL text.
- SQL text is assembled only from string literals, module constants that
  are themselves such text, and these fragment builders: the dialect helpers
  of :mod:`assay.store.engine` (``shuffle_key_sql`` /
  ``Database.shuffle_key``) and the ledger's counter clauses
  (``assay.engine.ledger._settle_sql`` / ``_greatest``), plus integers
  passed through ``int()``. Never ``%`` formatting, never a value from a
  caller, a row or a request.
- Bare DB-API connections and cursors live only in
  :mod:`assay.store.engine`: the fast lane (``Database.fast_write`` /
  ``fast_read`` / ``Database.fast``), which runs the same ``text()``
  statements on a bare cursor, a few microseconds instead of ~50 each. It is
  for the hot path only: the hand-out and answers (:mod:`assay.engine.handout`,
  entered from ``Workspace.next_task`` / ``submit``) and the simulator that
  replays them (:mod:`assay.simulation.crowd`). Everything else uses
  ``Database.read()`` / ``write()``.
"""

from assay.store.blobs import BlobStore
from assay.store.engine import Database

__all__ = ["BlobStore", "Database"]
