"""Tags on items: staff only (admins, and reviewers on the datasets of their
projects); annotators get 403 here, and no task an annotator is served
carries tags."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from assay.server.deps import WS, Staff, json

router = APIRouter(tags=["tags"])


class TagIn(BaseModel):
    tag: str = Field(..., max_length=200, description="1 to 64 characters")
    items: list[int] = Field(..., description="item ids of the dataset")


@router.get("/datasets/{dataset_id}/tags")
def list_tags(dataset_id: int, ws: WS, user: Staff):
    """The dataset's tags with how many items have each: ``{tags: [{tag, items}]}``."""
    ws.require_dataset_access(dataset_id, user, count=False)
    return json({"tags": ws.list_tags(dataset_id)})


@router.get("/datasets/{dataset_id}/tags/items")
def tagged_items(dataset_id: int, ws: WS, user: Staff, tag: str = Query(..., max_length=200)):
    """The dataset's items with ``tag``: ``{tag, items: [item ids]}``."""
    ws.require_dataset_access(dataset_id, user, count=False)
    return json({"tag": tag.strip(), "items": ws.tagged_items(dataset_id, tag)})


@router.get("/datasets/{dataset_id}/item-tags")
def item_tags(dataset_id: int, ws: WS, user: Staff, item: list[int] = Query(..., max_length=1000)):
    """The tags of ``item`` (repeat): ``{tags: {item_id: [tags]}}`` (items without tags left out)."""
    ws.require_dataset_access(dataset_id, user, count=False)
    ws.check_dataset_items(dataset_id, item)
    return json({"tags": {str(k): v for k, v in ws.item_tags(item).items()}})


@router.post("/datasets/{dataset_id}/tags")
def add_tag(dataset_id: int, body: TagIn, ws: WS, user: Staff):
    """Put ``tag`` on ``items``: ``{tag, items, added}``."""
    ws.require_dataset_access(dataset_id, user, count=False)
    return json(ws.tag_items(dataset_id, body.items, body.tag))


@router.post("/datasets/{dataset_id}/tags/remove")
def remove_tag(dataset_id: int, body: TagIn, ws: WS, user: Staff):
    """Take ``tag`` off ``items``: ``{tag, items, removed}``."""
    ws.require_dataset_access(dataset_id, user, count=False)
    return json(ws.untag_items(dataset_id, body.items, body.tag))
