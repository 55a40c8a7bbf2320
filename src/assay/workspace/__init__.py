"""The workspace: assay's front door.

A workspace is a folder (``ASSAY_HOME``, default ``./assay-data``) holding
``assay.db`` (SQLite) — or a PostgreSQL URL in ``ASSAY_DATABASE_URL`` — plus
``blobs/`` for images. Every use-case is a method of :class:`Workspace`: it
resolves ids, checks who may do it, opens the transaction and calls the
module that owns the rule (:mod:`assay.engine` — accounts, datasets,
imports, projects, the hand-out, the ledger, settings, gold, redundancy,
the resolver, reports; files in :mod:`assay.formats`; backend prediction
runs in :mod:`assay.learn.predict`; the pure algorithms in
:mod:`assay.quality` and :mod:`assay.learn`), which writes the change and
its audit record on that connection. The HTTP server and the CLI are thin
shells over it.

The class is composed of one part per concern, each in its own module
(each part's docstring says what it takes from the others):

- :mod:`~assay.workspace.core`: opening, closing, ``status``, and the
  per-process caches (projects, memberships, authenticated tokens,
  progress, backends in use): which cache, who fills and who drops it.
- :mod:`~assay.workspace.accounts`: users, tokens, login, ``authenticate``,
  the audit log.
- :mod:`~assay.workspace.data`: datasets, imports, items, embeddings.
- :mod:`~assay.workspace.projects`: projects, settings, members, access.
- :mod:`~assay.workspace.labeling`: the hand-out (next task, submit, skip,
  undo), the doctor, adaptive redundancy and final labels, gold, reviews.
- :mod:`~assay.workspace.teaching`: teaching items and their feedback, the
  detection of weak nuances, before/after measurement.
- :mod:`~assay.workspace.reports`: answers, progress, reports, export.
- :mod:`~assay.workspace.shapes`: boxes and polygons in COCO, YOLO and
  Pascal VOC (export), COCO (import as gold).
- :mod:`~assay.workspace.models`: bring your own model (ML backends).
- :mod:`~assay.workspace.search`: similarity search over item embeddings.
- :mod:`~assay.workspace.slices`: slices (saved sets of items) and prioritizing
  items in the hand-out queue.
- :mod:`~assay.workspace.curation`: near-duplicates, exact duplicates, outliers.
- :mod:`~assay.workspace.tags`: tags on items (staff only).
"""

from __future__ import annotations

from assay.workspace.accounts import Accounts
from assay.workspace.core import DEFAULT_HOME, Core
from assay.workspace.curation import Curation
from assay.workspace.mining import Mining
from assay.workspace.data import Data
from assay.workspace.labeling import Labeling
from assay.workspace.models import Models
from assay.workspace.projects import ROLES, Projects
from assay.workspace.reports import Reports
from assay.workspace.embedding_map import EmbeddingMap
from assay.workspace.search import Search
from assay.workspace.shapes import Shapes
from assay.workspace.slices import Slices
from assay.workspace.tags import Tags
from assay.workspace.teaching import Teaching

__all__ = ["DEFAULT_HOME", "ROLES", "Workspace"]


class Workspace(Core, Accounts, Data, Projects, Labeling, Teaching, Reports, Shapes, Models, Search, Curation,
                Mining, EmbeddingMap, Slices, Tags):
    """Open (creating if needed) the workspace at ``home``.

    >>> ws = Workspace("assay-data")
    >>> ds = ws.create_dataset("reviews")
    >>> ws.import_file(ds["id"], "reviews.csv", text_column="review")
    """
