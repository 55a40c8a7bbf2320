"""The ``assay`` command: a thin shell over :class:`assay.Workspace`.

Errors are one readable line on stderr (exit 1); bad usage exits 2.

:mod:`assay.cli.common` holds the typer app, its groups and the shared
helpers; each module registers one group of commands on it:
:mod:`~assay.cli.data` (init, import, embed), :mod:`~assay.cli.search` (similar, duplicates, outliers), :mod:`~assay.cli.curation` (map),
:mod:`~assay.cli.slices` (``assay slice …``), :mod:`~assay.cli.tags` (``assay tag …``), :mod:`~assay.cli.projects`
(``assay project …``), :mod:`~assay.cli.exam` (``assay exam …``),
:mod:`~assay.cli.teaching` (``assay teaching …``),
:mod:`~assay.cli.accounts` (``assay user …``,
``assay audit``), :mod:`~assay.cli.records` (doctor, status, export),
:mod:`~assay.cli.quality` (aggregate, simulate) and :mod:`~assay.cli.serving`
(serve, quickstart). They are imported in this order, which is the order
``assay --help`` lists the commands in.
"""

from __future__ import annotations

# Each import registers its commands on the app, in the order --help lists them (keep this order).
from assay.cli import data  # noqa: F401, I001
from assay.cli import search  # noqa: F401
from assay.cli import curation  # noqa: F401
from assay.cli import slices  # noqa: F401
from assay.cli import tags  # noqa: F401
from assay.cli import projects  # noqa: F401
from assay.cli import exam  # noqa: F401
from assay.cli import teaching  # noqa: F401
from assay.cli import accounts  # noqa: F401
from assay.cli import records  # noqa: F401
from assay.cli import quality  # noqa: F401
from assay.cli import serving  # noqa: F401
from assay.cli.common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
