"""``assay map``: the embedding map of a dataset (2-D projection of its item
embeddings, computed and cached beside the space's vectors)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from assay.cli.common import Home, app, command, open_ws, print_json


@app.command("map")
@command
def map_(
    dataset: Annotated[str, typer.Argument(help="Dataset name or id.")],
    space: Annotated[Optional[str], typer.Option(help="Embedding space (default: the dataset's only one).")] = None,
    method: Annotated[str, typer.Option(help="Projection: umap (needs the curation extra) or pca.")] = "umap",
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
    home: Home = None,
):
    """Compute (or reuse) the dataset's embedding map; print where it is cached."""
    ws = open_ws(home)
    ds = ws.get_dataset(int(dataset) if dataset.isdigit() else dataset)
    st = ws.embedding_map(ds["id"], space=space, method=method, wait=True)
    if as_json:
        print_json(st)
        return
    if st["state"] != "done":
        typer.echo(f"map of {ds['name']!r} {st['state']}: {st['message']}", err=True)
        raise typer.Exit(1)
    typer.echo(f"map of {ds['name']!r} ({st['count']} items, space {st['space']}, {method}) cached at {st['path']}")
