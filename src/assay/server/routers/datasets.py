"""Datasets, imports and items."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from assay.errors import InvalidInput, NotFound, TooLarge, Unsupported
from assay.server.deps import WS, Admin, Staff, User, json

router = APIRouter(tags=["datasets"])

UPLOAD_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet", ".zip")
_SAFE = re.compile(r"^[A-Za-z0-9._ -]{1,200}$")


class DatasetIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


@router.get("/datasets")
def list_datasets(ws: WS, _: Staff):
    return json({"datasets": ws.list_datasets()})


@router.post("/datasets", status_code=201)
def create_dataset(body: DatasetIn, ws: WS, _: Admin):
    return json(ws.create_dataset(body.name), 201)


@router.get("/datasets/{dataset_id}")
def get_dataset(dataset_id: int, ws: WS, _: Staff):
    return json(ws.get_dataset(dataset_id))


def check_upload_name(name: str | None) -> str:
    """Refuse names that try to climb out of a folder or hide what they are."""
    if not name:
        raise InvalidInput("the upload has no file name; send it as multipart field 'file' with a name")
    if "/" in name or "\\" in name or ".." in name or name.startswith(".") or not _SAFE.match(name):
        raise InvalidInput(
            f"unsafe file name {name!r}: use a plain name like data.csv (letters, digits, . _ - and spaces)"
        )
    if not name.lower().endswith(UPLOAD_SUFFIXES):
        raise Unsupported(f"cannot import {name!r}: upload a .csv, .jsonl, .parquet or a .zip of images")
    return name


@router.post("/datasets/{dataset_id}/import")
async def import_upload(
    dataset_id: int,
    request: Request,
    ws: WS,
    _: Admin,
    file: UploadFile = File(..., description="a .csv, .jsonl, .parquet, or .zip of images"),
    text_column: str = Form("text"),
    source: str | None = Form(None),
    license: str | None = Form(None),
    consent: str | None = Form(None),
):
    """Import an uploaded file into a dataset: all of it, or nothing."""
    limit = request.app.state.max_upload_bytes
    ws.get_dataset(dataset_id)
    name = check_upload_name(file.filename)
    with tempfile.TemporaryDirectory(prefix="assay-upload-") as tmp:
        path = Path(tmp) / name
        size = 0
        with path.open("wb") as fh:
            while chunk := await file.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"upload is larger than the limit of {limit} bytes "
                                   "(set ASSAY_MAX_UPLOAD_MB or import from the CLI)")
                fh.write(chunk)
        result = await run_in_threadpool(
            ws.import_file, dataset_id, path, text_column=text_column,
            source=source or f"upload:{name}", license=license, consent=consent,
            source_uri=f"upload:{name}",
        )
    return json(result)


@router.get("/datasets/{dataset_id}/items")
def list_items(dataset_id: int, ws: WS, _: Staff,
               after: int | None = Query(None, ge=0), limit: int = Query(100, ge=1, le=1000)):
    """Items in id order; pass ``next_after`` back as ``after`` for the next page."""
    rows, nxt = ws.list_items(dataset_id, after=after, limit=limit)
    return json({"items": rows, "next_after": nxt})


@router.get("/items/{item_id}")
def get_item(item_id: int, ws: WS, _: Staff):
    return json(ws.get_item(item_id))


@router.get("/items/{item_id}/content")
def item_content(item_id: int, ws: WS, user: User):
    """The item's raw content: image bytes, or the text as text/plain."""
    if not ws.can_see_item(item_id, user):
        raise NotFound(f"item {item_id} does not exist")
    data, media = ws.item_content(item_id)
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=3600"})
