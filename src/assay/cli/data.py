"""Data in: ``assay init``, ``assay import`` and ``assay embed``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from assay.cli.common import Home, app, command, open_ws


@app.command()
@command
def init(home: Home = None):
    """Create (or open and migrate) a workspace."""
    ws = open_ws(home)
    typer.echo(f"workspace ready: {ws.home} ({ws.db.dialect})")


@app.command("import")
@command
def import_(
    dataset: Annotated[str, typer.Argument(help="Dataset name (created if missing).")],
    path: Annotated[Path, typer.Argument(help="A .csv/.jsonl/.parquet file, CoNLL (.conll), a Label Studio export (.json), a .zip of images, or a folder of images.")],
    text_column: Annotated[str, typer.Option(help="Column holding the text.")] = "text",
    source: Annotated[Optional[str], typer.Option(help="Where the data came from (provenance).")] = None,
    license: Annotated[Optional[str], typer.Option(help="License of the data.")] = None,
    consent: Annotated[Optional[str], typer.Option(help="Consent note for the data.")] = None,
    skip_invalid: Annotated[bool, typer.Option(help="Skip files that are not images instead of failing.")] = False,
    home: Home = None,
):
    """Import items into a dataset. All or nothing; re-importing adds nothing."""
    ws = open_ws(home)
    r = ws.import_file(dataset, path, text_column=text_column, source=source, license=license,
                       consent=consent, progress=sys.stderr.isatty(),
                       on_invalid="skip" if skip_invalid else "error", create=True)
    typer.echo(f"imported {r['added']} new items into {dataset!r} ({r['skipped']} already there)")
    if r.get("label_files"):
        typer.echo(f"{r['label_files']} label files (YOLO, VOC or COCO) set aside: bring them in as gold with "
                   f"`assay project gold PROJECT {path}`")


@app.command()
@command
def embed(
    dataset: str,
    model: Annotated[Optional[str], typer.Option(
        help="Model name or path (default: all-MiniLM-L6-v2 for text, efficientnet-lite0 for images).")] = None,
    home: Home = None,
):
    """Embed a dataset's items that have no vector yet (needs the ml extra of assay)."""
    ws = open_ws(home)
    ds = ws.get_dataset(int(dataset) if dataset.isdigit() else dataset)
    r = ws.embed(ds["id"], model=model)
    typer.echo(f"{r['embedded']} items embedded, {r['already']} already had a vector "
               f"({r['model']}, {r['dim']}-d, {r['seconds']} s) -> vectors/{r['space']}")
