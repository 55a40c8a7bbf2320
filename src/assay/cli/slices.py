"""``assay slice …`` (saved, named sets of a dataset's items) and
``assay project prioritize`` (send a slice or items to the front of the
hand-out queue)."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from assay.cli.common import Home, app, command, fail, open_ws, print_json, project_app

slice_app = typer.Typer(help="Slices: saved, named sets of a dataset's items (explicit or a stored query).",
                        no_args_is_help=True)
app.add_typer(slice_app, name="slice")


def _ref(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _meta(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--meta takes KEY=VALUE, not {pair!r}", 2)
        out[key.strip()] = value
    return out


@slice_app.command("create")
@command
def slice_create(
    dataset: Annotated[str, typer.Argument(help="Dataset name or id.")],
    name: Annotated[str, typer.Argument(help="The slice's name (unique within the dataset).")],
    item: Annotated[Optional[list[int]], typer.Option(
        "--item", help="An item of an explicit slice (repeat).")] = None,
    similar_to: Annotated[Optional[list[int]], typer.Option(
        "--similar-to", help="Query slice: items like this item (repeat for several).")] = None,
    text: Annotated[Optional[str], typer.Option(help="Query slice: items like this text.")] = None,
    k: Annotated[Optional[int], typer.Option("-k", "--k", help="Query slice: how many similar items.")] = None,
    space: Annotated[Optional[str], typer.Option(help="Query slice: the embedding space.")] = None,
    meta: Annotated[Optional[list[str]], typer.Option(
        "--meta", help="Query slice: only items whose metadata has KEY=VALUE (repeat).")] = None,
    tag: Annotated[Optional[str], typer.Option(help="Query slice: only items with this tag.")] = None,
    home: Home = None,
):
    """Save a slice: explicit items (--item) or a query (--similar-to/--text with -k, and/or --meta, --tag)."""
    query = {key: v for key, v in {"similar_to": similar_to or None, "text": text, "k": k, "space": space,
                                  "meta": _meta(meta) if meta else None, "tag": tag}.items() if v is not None}
    if item and query:
        fail("give --item for an explicit slice or query options, not both", 2)
    if not item and not query:
        fail("give --item ID (repeat) or a query (--similar-to/--text with -k, --meta KEY=VALUE)", 2)
    ws = open_ws(home)
    s = ws.create_slice(_ref(dataset), name, items=item or None, query=query or None)
    typer.echo(f"slice {s['name']!r} created ({s['kind']})")


@slice_app.command("list")
@command
def slice_list(dataset: Annotated[str, typer.Argument(help="Dataset name or id.")], home: Home = None):
    """List a dataset's slices."""
    ws = open_ws(home)
    for s in ws.list_slices(_ref(dataset)):
        what = f"{s['item_count']} items" if s["kind"] == "items" else json.dumps(s["query"])
        typer.echo(f"{s['name']:<30} {s['kind']:<6} {what}")


@slice_app.command("show")
@command
def slice_show(dataset: Annotated[str, typer.Argument(help="Dataset name or id.")],
               name: str, home: Home = None):
    """Show a slice and its items (a query slice: evaluated now), as JSON."""
    ws = open_ws(home)
    s = ws.get_slice(_ref(dataset), name)
    print_json({**s, "items": ws.slice_items(s["dataset_id"], s["name"])})


@slice_app.command("delete")
@command
def slice_delete(dataset: Annotated[str, typer.Argument(help="Dataset name or id.")],
                 name: str, home: Home = None):
    """Delete a slice (its items stay in the dataset)."""
    ws = open_ws(home)
    ws.delete_slice(_ref(dataset), name)
    typer.echo(f"slice {name!r} deleted")


@project_app.command("prioritize")
@command
def project_prioritize(
    project: str,
    slice_name: Annotated[Optional[str], typer.Option("--slice", help="A slice of the project's dataset.")] = None,
    item: Annotated[Optional[list[int]], typer.Option("--item", help="An item id (repeat).")] = None,
    priority: Annotated[float, typer.Option(help="Hand-out priority (higher first; 0: back to normal).")] = 10.0,
    home: Home = None,
):
    """Send a slice's (or the given) items to the front of the project's hand-out queue."""
    if (slice_name is None) == (not item):
        fail("give --slice NAME or --item ID (repeat), not both", 2)
    ws = open_ws(home)
    r = ws.prioritize(_ref(project), slice_name if slice_name is not None else item, priority=priority)
    typer.echo(f"{r['tasks']} tasks of {r['items']} items now at priority {r['priority']:g}")


@project_app.command("mine")
@command
def project_mine(
    project: str,
    label: Annotated[str, typer.Argument(help="The class to find more of.")],
    seed: Annotated[Optional[list[int]], typer.Option("--seed", help="An item id of a known example (repeat).")] = None,
    batch: Annotated[int, typer.Option(help="Items this round sends to the front of the queue.")] = 50,
    priority: Annotated[float, typer.Option(help="Their hand-out priority.")] = 10.0,
    home: Home = None,
):
    """One round of needle mining: the unlabeled items most like the seeds and
    the items labelled LABEL so far go to the front of the queue. Run it again
    after people answered them: their answers sharpen the next round."""
    ws = open_ws(home)
    r = ws.mine(_ref(project), label, seeds=seed or [], batch=batch, priority=priority)
    typer.echo(f"{len(r['items'])} items sent to the front (priority {r['priority']:g}) from {r['positives']} "
               f"examples of {label!r} and {r['negatives']} rejected; {r['candidates']} unlabeled items scored")
