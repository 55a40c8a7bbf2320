"""Similarity search, near-duplicates and outliers over a dataset's items:
staff only (annotators never search the pool)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from assay.server.deps import WS, Staff, json
from assay.store.index import MAX_K

router = APIRouter(tags=["search"])


class SimilarIn(BaseModel):
    items: list[int] | None = Field(None, description="item ids: more like these (their mean vector)")
    text: str | None = Field(None, max_length=10_000, description="a text query")
    k: int = Field(20, description=f"how many results, 1 to {MAX_K}")
    space: str | None = None
    within: list[int] | None = Field(None, description="only these item ids")
    project: int | None = Field(None, description="only this project's items")
    label: Any = Field(None, description="with project: only items whose final label is this")
    slice: str | None = Field(None, max_length=200, description="only this slice's items (a slice of the dataset)")
    tag: str | None = Field(None, max_length=200, description="only items with this tag")
    min_confidence: float | None = Field(None, description="with project: final label's confidence at least this")
    max_confidence: float | None = Field(None, description="with project: final label's confidence at most this")


def _run(ws, user, dataset_id: int, body: SimilarIn):
    ws.require_dataset_access(dataset_id, user, count=False)
    hits = ws.similar(dataset_id, items=body.items, text=body.text, k=body.k, space=body.space,
                      within=body.within, project=body.project, label=body.label, slice=body.slice,
                      min_confidence=body.min_confidence, max_confidence=body.max_confidence, tag=body.tag)
    info = ws.describe_items([h["item_id"] for h in hits])
    tags = ws.item_tags([h["item_id"] for h in hits])  # staff only, as this route
    return json({"results": [{**h, **info.get(h["item_id"], {}), "tags": tags.get(h["item_id"], [])}
                             for h in hits]})


@router.get("/datasets/{dataset_id}/similar")
def similar_get(dataset_id: int, ws: WS, user: Staff, item: list[int] | None = Query(None),
                text: str | None = Query(None, max_length=10_000), k: int = Query(20, description=f"1 to {MAX_K}"),
                space: str | None = Query(None)):
    """The dataset's items most like ``item`` (repeat for several) or ``text``:
    ``{results: [{item_id, score, kind, snippet, content_url, tags}]}``, best first."""
    return _run(ws, user, dataset_id, SimilarIn(items=item, text=text, k=k, space=space))


@router.post("/datasets/{dataset_id}/similar")
def similar_post(dataset_id: int, body: SimilarIn, ws: WS, user: Staff):
    """As GET, with filters: ``within`` (item ids), ``slice`` (a slice's name), ``tag``, ``project`` and
    with it ``label`` and ``min_confidence``/``max_confidence`` (its final labels')."""
    return _run(ws, user, dataset_id, body)


#: Datasets with more items with a vector than this are not scanned in a
#: request: without a fresh cached pass, duplicates/outliers start one in
#: the background (:meth:`assay.Workspace.curation_scan`) and answer 202.
INLINE_LIMIT = 20_000
MEMBERS = 50  # members described per duplicate group (``items`` lists them all)


def _scan_pending(ws, dataset_id: int, space, k: int, threshold: float):
    """A 202 with the scan's status when the dataset is over the limit and
    has no fresh cached pass for ``(k, threshold)`` (one is started); else None."""
    st = ws.curation_scan(dataset_id, space=space, k=k, threshold=threshold, start=False)
    if st["state"] == "done" or st["count"] <= INLINE_LIMIT:
        return None
    st = ws.curation_scan(dataset_id, space=space, k=k, threshold=threshold)
    if st["state"] == "done":
        return None
    st.pop("path", None)
    return json(st, 202)


def _describe(ws, ids: list[int]) -> dict:
    info = ws.describe_items(ids)
    tags = ws.item_tags(ids)  # staff only, as these routes
    return {i: {**info.get(i, {}), "tags": tags.get(i, [])} for i in ids}


@router.get("/datasets/{dataset_id}/duplicates")
def duplicates_get(dataset_id: int, ws: WS, user: Staff, threshold: float = Query(0.95, description="cosine, (0, 1]"),
                   top: int = Query(100, description="at most this many groups, largest first"),
                   space: str | None = Query(None),
                   k: int = Query(10, description="the background pass's neighbours per item (its cache key)"),
                   describe: bool = Query(False, description="each group's members with kind, snippet, "
                                                             "content_url, tags and similarity"),
                   exact: bool = Query(False, description="the same content (hash) in other datasets instead")):
    """Near-duplicate groups of the dataset's items: ``{groups: [{items,
    similarities, size, max_similarity, min_similarity, members?}]}``;
    with ``exact``: ``{groups: [{content_hash, items: [{item_id,
    dataset_id, kind?, snippet?}]}]}``. From the cached pass for
    ``(k, threshold)`` when fresh; a dataset over ``INLINE_LIMIT`` items
    without one answers 202 with the background pass's status (poll
    ``GET …/curation-scan``), a smaller one is scanned in the request."""
    ws.require_dataset_access(dataset_id, user)
    if exact:
        groups = ws.exact_duplicates(dataset_id)[:max(top, 0)]
        if describe:
            mine = [x["item_id"] for g in groups for x in g["items"] if x["dataset_id"] == dataset_id]
            info = _describe(ws, mine)
            for g in groups:
                g["items"] = [{**x, **info.get(x["item_id"], {})} for x in g["items"]]
        return json({"groups": groups})
    pending = _scan_pending(ws, dataset_id, space, k, threshold)
    if pending is not None:
        return pending
    groups = ws.duplicates(dataset_id, threshold=threshold, top=top, space=space)
    if describe:
        info = _describe(ws, [i for g in groups for i in g["items"][:MEMBERS]])
        for g in groups:
            g["members"] = [{"item_id": i, "similarity": s, **info[i]}
                            for i, s in zip(g["items"][:MEMBERS], g["similarities"])]
    return json({"groups": groups})


@router.get("/datasets/{dataset_id}/outliers")
def outliers_get(dataset_id: int, ws: WS, user: Staff, k: int = Query(10, description="neighbours averaged"),
                 top: int = Query(100, description="how many items, most unusual first"),
                 space: str | None = Query(None),
                 threshold: float = Query(0.95, description="the background pass's threshold (its cache key)")):
    """The dataset's most unusual items: ``{results: [{item_id, outlier,
    uniqueness, representativeness, kind, snippet, content_url, tags}]}``;
    202 with the background pass's status as duplicates."""
    ws.require_dataset_access(dataset_id, user)
    pending = _scan_pending(ws, dataset_id, space, k, threshold)
    if pending is not None:
        return pending
    rows = ws.outliers(dataset_id, k=k, top=top, space=space)
    info = _describe(ws, [r["item_id"] for r in rows])
    return json({"results": [{**r, **info[r["item_id"]]} for r in rows]})
