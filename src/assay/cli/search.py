"""``assay similar`` (items like given items or like a text), ``assay duplicates``
and ``assay outliers`` (curation over the same embeddings)."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from assay.cli.common import Home, app, command, fail, find_project, open_ws, print_json


@app.command()
@command
def similar(
    dataset: Annotated[str, typer.Argument(help="Dataset name or id.")],
    item: Annotated[Optional[list[int]], typer.Option(
        "--item", help="An item id to find more like (repeat for several: their mean vector).")] = None,
    text: Annotated[Optional[str], typer.Option(help="A text query (embedded offline with the space's model).")] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="How many results.")] = 20,
    space: Annotated[Optional[str], typer.Option(help="Embedding space (default: the dataset's only one).")] = None,
    slice_name: Annotated[Optional[str], typer.Option("--slice", help="Only the items of this slice of the dataset.")] = None,
    tag: Annotated[Optional[str], typer.Option(help="Only items with this tag.")] = None,
    project: Annotated[Optional[str], typer.Option(help="Only this project's items (name or id).")] = None,
    label: Annotated[Optional[str], typer.Option(help="With --project: only items whose final label is this class.")] = None,
    max_confidence: Annotated[Optional[float], typer.Option("--max-confidence", help="With --project: only items whose final label's confidence is at most this (the unsure ones).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: Home = None,
):
    """Find the items of a dataset most like given items or a text (cosine similarity)."""
    if not item and text is None:
        fail("give --item ID (one or more) or --text \"...\"", 2)
    ws = open_ws(home)
    ds = ws.get_dataset(int(dataset) if dataset.isdigit() else dataset)
    pid = None if project is None else find_project(ws, project)["id"]
    hits = ws.similar(ds["id"], items=item or None, text=text, k=k, space=space, slice=slice_name, project=pid,
                      label=label, max_confidence=max_confidence, tag=tag)
    info = ws.describe_items([h["item_id"] for h in hits])
    rows = [{**h, "snippet": info.get(h["item_id"], {}).get("snippet")} for h in hits]
    if as_json:
        print_json(rows)
        return
    for rank, r in enumerate(rows, 1):
        snippet = (r["snippet"] or "").replace("\n", " ")[:80]
        typer.echo(f"{rank:>3}  item {r['item_id']:<10} {r['score']:.4f}  {snippet}")


@app.command()
@command
def duplicates(
    dataset: Annotated[str, typer.Argument(help="Dataset name or id.")],
    threshold: Annotated[float, typer.Option(help="Cosine similarity at or above which two items are near-duplicates.")] = 0.95,
    space: Annotated[Optional[str], typer.Option(help="Embedding space (default: the dataset's only one).")] = None,
    top: Annotated[Optional[int], typer.Option(help="Show only this many groups (largest first).")] = None,
    exact: Annotated[bool, typer.Option("--exact", help="Items whose content is also in other datasets (same hash).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: Home = None,
):
    """Groups of near-duplicate items (embedding cosine similarity), or with --exact the same content elsewhere."""
    ws = open_ws(home)
    ds = ws.get_dataset(int(dataset) if dataset.isdigit() else dataset)
    if exact:
        groups = ws.exact_duplicates(ds["id"])
        if as_json:
            print_json(groups)
            return
        for g in groups:
            where = ", ".join(f"item {x['item_id']} (dataset {x['dataset_id']})" for x in g["items"])
            typer.echo(f"{g['content_hash'][:12]}  {where}")
        typer.echo(f"{len(groups)} content hash(es) shared with other datasets")
        return
    groups = ws.duplicates(ds["id"], threshold=threshold, space=space, top=top, progress=sys.stderr.isatty())
    if as_json:
        print_json(groups)
        return
    for g in groups:
        shown = " ".join(str(i) for i in g["items"][:20]) + (" …" if g["size"] > 20 else "")
        typer.echo(f"{g['size']:>4} items  max {g['max_similarity']:.4f}  min {g['min_similarity']:.4f}  {shown}")
    typer.echo(f"{len(groups)} group(s) at cosine ≥ {threshold}")


@app.command()
@command
def outliers(
    dataset: Annotated[str, typer.Argument(help="Dataset name or id.")],
    top: Annotated[int, typer.Option(help="How many items, most unusual first.")] = 20,
    k: Annotated[int, typer.Option("-k", "--k", help="Neighbours the outlier score averages over.")] = 10,
    space: Annotated[Optional[str], typer.Option(help="Embedding space (default: the dataset's only one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: Home = None,
):
    """The most unusual items: mean cosine distance to their k nearest neighbours (with uniqueness, representativeness)."""
    ws = open_ws(home)
    ds = ws.get_dataset(int(dataset) if dataset.isdigit() else dataset)
    rows = ws.outliers(ds["id"], k=k, top=top, space=space, progress=sys.stderr.isatty())
    info = ws.describe_items([r["item_id"] for r in rows])
    rows = [{**r, "snippet": info.get(r["item_id"], {}).get("snippet")} for r in rows]
    if as_json:
        print_json(rows)
        return
    for rank, r in enumerate(rows, 1):
        snippet = (r["snippet"] or "").replace("\n", " ")[:60]
        typer.echo(f"{rank:>3}  item {r['item_id']:<10} outlier {r['outlier']:.4f}  "
                   f"unique {r['uniqueness']:.4f}  repr {r['representativeness']:.2f}  {snippet}")
