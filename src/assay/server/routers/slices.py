"""Slices (saved, named sets of a dataset's items) and prioritizing items in
a project's hand-out queue. Reading slices: staff who may read the dataset;
creating, deleting and prioritizing: admins (annotators: 403)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from assay.errors import InvalidInput
from assay.server.deps import WS, Admin, Staff, json

router = APIRouter(tags=["slices"])


class SliceIn(BaseModel):
    name: str = Field(..., max_length=200, description="unique within the dataset")
    items: list[int] | None = Field(None, description="an explicit slice: these item ids")
    query: dict[str, Any] | None = Field(None, description=(
        "a query slice, evaluated when used: similar_to (item ids) or text, with k (and space); "
        "and/or meta {key: value} and/or tag"))


class PrioritizeIn(BaseModel):
    slice: str | None = Field(None, max_length=200, description="a slice of the project's dataset")
    items: list[int] | None = Field(None, description="or these item ids")
    priority: float = Field(10.0, description="hand-out priority: higher goes first; 0 is the usual")


class MineIn(BaseModel):
    label: str = Field(..., max_length=200, description="the class to find more of")
    seeds: list[int] = Field(default_factory=list, max_length=1000, description="item ids of known examples")
    batch: int = Field(50, ge=1, le=1000, description="items this round sends to the front of the queue")
    priority: float = Field(10.0, description="their hand-out priority")
    space: str | None = Field(None, max_length=200, description="the embedding space (default: the dataset's)")


@router.get("/datasets/{dataset_id}/slices")
def list_slices(dataset_id: int, ws: WS, user: Staff):
    """The dataset's slices: ``{slices: [{id, name, kind, query, item_count?, …}]}``."""
    ws.require_dataset_access(dataset_id, user)
    return json({"slices": ws.list_slices(dataset_id)})


@router.get("/datasets/{dataset_id}/slices/{name}")
def get_slice(dataset_id: int, name: str, ws: WS, user: Staff):
    """One slice with its item ids (a query slice: evaluated now)."""
    ws.require_dataset_access(dataset_id, user)
    s = ws.get_slice(dataset_id, name)
    return json({**s, "items": ws.slice_items(dataset_id, name)})


@router.post("/datasets/{dataset_id}/slices", status_code=201)
def create_slice(dataset_id: int, body: SliceIn, ws: WS, _: Admin):
    """Save a slice: ``items`` or ``query``, not both. A taken name: 409."""
    s = ws.create_slice(dataset_id, body.name, items=body.items, query=body.query)
    return json(s, 201)


@router.delete("/datasets/{dataset_id}/slices/{name}")
def delete_slice(dataset_id: int, name: str, ws: WS, _: Admin):
    ws.delete_slice(dataset_id, name)
    return json({"deleted": name})


@router.post("/projects/{project_id}/prioritize")
def prioritize(project_id: int, body: PrioritizeIn, ws: WS, _: Admin):
    """Send a slice's items (or ``items``) to the front of the project's
    hand-out queue: ``{items, tasks, priority}``."""
    if (body.slice is None) == (body.items is None):
        raise InvalidInput("give slice (a name) or items (item ids), not both")
    what = body.slice if body.slice is not None else body.items
    return json(ws.prioritize(project_id, what, priority=body.priority))


@router.post("/projects/{project_id}/mine")
def mine(project_id: int, body: MineIn, ws: WS, _: Admin):
    """One round of needle mining (:meth:`assay.Workspace.mine`): the unlabeled
    items most like the seeds and the items labelled ``label`` so far go to
    the front of the queue; call again after people answered them."""
    return json(ws.mine(project_id, body.label, seeds=body.seeds, batch=body.batch, priority=body.priority,
                        space=body.space))

