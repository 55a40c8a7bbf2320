"""The embedding map of a dataset (2-D projection of its item embeddings)
and its kNN curation pass (near-duplicate pairs, outlier scores), both
computed in the background: staff only, as search."""

from __future__ import annotations

from fastapi import APIRouter, Query

from assay.server.deps import WS, Staff, json

router = APIRouter(tags=["curation"])


@router.post("/datasets/{dataset_id}/map")
def map_start(dataset_id: int, ws: WS, user: Staff, method: str = Query("umap", description="umap or pca"),
              space: str | None = Query(None)):
    """Start computing the map (202 with its status), or 200 when the cached
    one is current: ``{state, message, progress, version, count, space, …}``."""
    ws.require_dataset_access(dataset_id, user, count=False)
    st = ws.embedding_map(dataset_id, space=space, method=method)
    st.pop("path", None)
    return json(st, 200 if st["state"] == "done" else 202)


@router.get("/datasets/{dataset_id}/map")
def map_status(dataset_id: int, ws: WS, user: Staff, method: str = Query("umap"), space: str | None = Query(None)):
    """The map's status without starting it (``state`` missing when never started)."""
    ws.require_dataset_access(dataset_id, user, count=False)
    st = ws.embedding_map(dataset_id, space=space, method=method, start=False)
    st.pop("path", None)
    return json(st)


@router.get("/datasets/{dataset_id}/map/points")
def map_points(dataset_id: int, ws: WS, user: Staff, method: str = Query("umap"), space: str | None = Query(None),
               project: int | None = Query(None, description="colour by this project's final labels")):
    """The points as parallel arrays (compact at 100k points): ``{ids, x,
    y, slices: {name: [positions]}, classes?, label?, confidence?}``; 404
    while the map is not computed."""
    ws.require_dataset_access(dataset_id, user, count=False)
    ids, xy = ws.embedding_map_points(dataset_id, space=space, method=method)
    colours = ws.embedding_map_colours(dataset_id, ids, project=project)
    xy = xy.round(5).astype(float)
    return json({"ids": ids.tolist(), "x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(), **colours})


def _scan(ws, user, dataset_id, space, k, threshold, start):
    ws.require_dataset_access(dataset_id, user, count=False)
    st = ws.curation_scan(dataset_id, space=space, k=k, threshold=threshold, start=start)
    st.pop("path", None)
    return st


@router.post("/datasets/{dataset_id}/curation-scan")
def scan_start(dataset_id: int, ws: WS, user: Staff, k: int = Query(10, description="neighbours per item"),
               threshold: float = Query(0.95, description="near-duplicate cosine, (0, 1]"),
               space: str | None = Query(None)):
    """Start the dataset's kNN pass (202 with its status), or 200 when the
    cached one is current: ``{state, message, progress, version, count, k,
    threshold, space, …}``; then GET duplicates/outliers read it."""
    st = _scan(ws, user, dataset_id, space, k, threshold, True)
    return json(st, 200 if st["state"] == "done" else 202)


@router.get("/datasets/{dataset_id}/curation-scan")
def scan_status(dataset_id: int, ws: WS, user: Staff, k: int = Query(10), threshold: float = Query(0.95),
                space: str | None = Query(None)):
    """The pass's status without starting it (``state`` missing when never started)."""
    return json(_scan(ws, user, dataset_id, space, k, threshold, False))
