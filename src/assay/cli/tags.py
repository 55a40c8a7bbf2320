"""``assay tag add|remove|list``: tags on a dataset's items (staff's words
for curating: "hard", "blurry", ...; never shown to annotators)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from assay.cli.common import Home, app, command, fail, open_ws, print_json

tag_app = typer.Typer(help="Tags on items: put on, take off, list.", no_args_is_help=True)
app.add_typer(tag_app, name="tag")


def _ref(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _items(ws, dataset: str, item: list[int] | None, slice_name: str | None) -> list[int]:
    if (not item) == (slice_name is None):
        fail("give --item ID (repeat) or --slice NAME, not both", 2)
    return list(item) if item else ws.slice_items(_ref(dataset), slice_name)


@tag_app.command("add")
@command
def tag_add(
    dataset: Annotated[str, typer.Argument(help="Dataset name or id.")],
    tag: Annotated[str, typer.Argument(help="The tag (1-64 characters).")],
    item: Annotated[Optional[list[int]], typer.Option("--item", help="An item to tag (repeat).")] = None,
    slice_name: Annotated[Optional[str], typer.Option("--slice", help="Tag every item of this slice.")] = None,
    home: Home = None,
):
    """Put a tag on items (given, or a slice's)."""
    ws = open_ws(home)
    r = ws.tag_items(_ref(dataset), _items(ws, dataset, item, slice_name), tag)
    typer.echo(f"tagged {r['added']} new of {r['items']} items {r['tag']!r}")


@tag_app.command("remove")
@command
def tag_remove(
    dataset: Annotated[str, typer.Argument(help="Dataset name or id.")],
    tag: Annotated[str, typer.Argument(help="The tag.")],
    item: Annotated[Optional[list[int]], typer.Option("--item", help="An item to untag (repeat).")] = None,
    slice_name: Annotated[Optional[str], typer.Option("--slice", help="Untag every item of this slice.")] = None,
    home: Home = None,
):
    """Take a tag off items (given, or a slice's)."""
    ws = open_ws(home)
    r = ws.untag_items(_ref(dataset), _items(ws, dataset, item, slice_name), tag)
    typer.echo(f"removed {r['tag']!r} from {r['removed']} items")


@tag_app.command("list")
@command
def tag_list(
    dataset: Annotated[str, typer.Argument(help="Dataset name or id.")],
    tag: Annotated[Optional[str], typer.Argument(help="Show the items with this tag.")] = None,
    item: Annotated[Optional[list[int]], typer.Option("--item", help="Show this item's tags (repeat).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: Home = None,
):
    """The dataset's tags (with how many items each), the items with TAG, or the tags of --item."""
    if tag is not None and item:
        fail("give a TAG or --item, not both", 2)
    ws = open_ws(home)
    if tag is not None:
        ids = ws.tagged_items(_ref(dataset), tag)
        if as_json:
            print_json({"tag": tag.strip(), "items": ids})
        else:
            typer.echo("\n".join(map(str, ids)) if ids else f"no items tagged {tag.strip()!r}")
        return
    if item:
        got = ws.item_tags(ws.check_dataset_items(_ref(dataset), item))
        if as_json:
            print_json({str(i): got.get(i, []) for i in item})
        else:
            for i in item:
                typer.echo(f"item {i}: {', '.join(got.get(i, [])) or '(no tags)'}")
        return
    rows = ws.list_tags(_ref(dataset))
    if as_json:
        print_json(rows)
        return
    for r in rows:
        typer.echo(f"{r['tag']}  {r['items']} items")
    if not rows:
        typer.echo("no tags")
