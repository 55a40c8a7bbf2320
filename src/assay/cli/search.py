"""``assay similar``: items like given items or like a text."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from assay.cli.common import Home, app, command, fail, open_ws, print_json


@app.command()
@command
def similar(
    dataset: Annotated[str, typer.Argument(help="Dataset name or id.")],
    item: Annotated[Optional[list[int]], typer.Option(
        "--item", help="An item id to find more like (repeat for several: their mean vector).")] = None,
    text: Annotated[Optional[str], typer.Option(help="A text query (embedded offline with the space's model).")] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="How many results.")] = 20,
    space: Annotated[Optional[str], typer.Option(help="Embedding space (default: the dataset's only one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: Home = None,
):
    """Find the items of a dataset most like given items or a text (cosine similarity)."""
    if not item and text is None:
        fail("give --item ID (one or more) or --text \"...\"", 2)
    ws = open_ws(home)
    ds = ws.get_dataset(int(dataset) if dataset.isdigit() else dataset)
    hits = ws.similar(ds["id"], items=item or None, text=text, k=k, space=space)
    info = ws.describe_items([h["item_id"] for h in hits])
    rows = [{**h, "snippet": info.get(h["item_id"], {}).get("snippet")} for h in hits]
    if as_json:
        print_json(rows)
        return
    for rank, r in enumerate(rows, 1):
        snippet = (r["snippet"] or "").replace("\n", " ")[:80]
        typer.echo(f"{rank:>3}  item {r['item_id']:<10} {r['score']:.4f}  {snippet}")
