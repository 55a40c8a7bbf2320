"""Datasets, imports and items."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from assay.errors import InvalidInput, NotFound, TooLarge, Unsupported
from assay.server.deps import WS, Admin, Staff, User, json

try:  # POSIX advisory locks
    import fcntl
except ImportError:  # pragma: no cover - Windows: an age rule only
    fcntl = None

router = APIRouter(tags=["datasets"])

UPLOAD_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet", ".zip", ".conll", ".bio", ".iob", ".json")
_SAFE = re.compile(r"^[A-Za-z0-9._ -]{1,200}$")


class DatasetIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


@router.get("/datasets")
def list_datasets(ws: WS, user: Staff):
    """Admins: every dataset; reviewers: the datasets of their projects."""
    return json({"datasets": ws.list_datasets(user)})


@router.post("/datasets", status_code=201)
def create_dataset(body: DatasetIn, ws: WS, _: Admin):
    return json(ws.create_dataset(body.name), 201)


@router.get("/datasets/{dataset_id}")
def get_dataset(dataset_id: int, ws: WS, user: Staff):
    return json(ws.require_dataset_access(dataset_id, user))


def check_upload_name(name: str | None, suffixes: tuple[str, ...] = UPLOAD_SUFFIXES) -> str:
    """Refuse names that try to climb out of a folder or hide what they are,
    and files whose suffix is not one of ``suffixes``."""
    if not name:
        raise InvalidInput("the upload has no file name; send it as multipart field 'file' with a name")
    if "/" in name or "\\" in name or ".." in name or name.startswith(".") or not _SAFE.match(name):
        raise InvalidInput(
            f"unsafe file name {name!r}: use a plain name like data.csv (letters, digits, . _ - and spaces)"
        )
    if not name.lower().endswith(suffixes):
        raise Unsupported(f"cannot import {name!r}: upload a file ending in {', '.join(suffixes)}"
                          + (" (a .zip of images)" if suffixes == UPLOAD_SUFFIXES else ""))
    return name


async def spool(file: UploadFile, path: Path, limit: int) -> int:
    """Copy an upload to ``path`` a MiB at a time; :class:`TooLarge` past
    ``limit`` bytes. Returns its size."""
    size = 0
    with path.open("wb") as fh:
        while chunk := await file.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"upload is larger than the limit of {limit} bytes "
                               "(set ASSAY_MAX_UPLOAD_MB or import from the CLI)")
            fh.write(chunk)
    return size


@router.post("/datasets/{dataset_id}/import")
async def import_upload(
    dataset_id: int,
    request: Request,
    ws: WS,
    _: Admin,
    file: UploadFile = File(..., description="a .csv, .jsonl, .parquet, CoNLL, Label Studio .json, or .zip of images"),
    text_column: str = Form("text"),
    source: str | None = Form(None),
    license: str | None = Form(None),
    consent: str | None = Form(None),
):
    """Import an uploaded file into a dataset: all of it, or nothing."""
    limit = request.app.state.max_upload_bytes
    ws.get_dataset(dataset_id)
    name = check_upload_name(file.filename)
    with upload_dir() as tmp:
        path = tmp / name
        await spool(file, path, limit)
        result = await run_in_threadpool(
            ws.import_file, dataset_id, path, text_column=text_column,
            source=source or f"upload:{name}", license=license, consent=consent,
            source_uri=f"upload:{name}",
        )
    return json(result)


# ---------------------------------------------------------------- upload spool
# An upload is copied to a private folder in the system temp dir, then
# imported. The folder is flock'ed while in use: the sweep at server start
# removes those whose owner died (kill -9 mid-import), never a live one.

UPLOAD_PREFIX = "assay-upload-"
UNLOCKED_MIN_AGE = 3600.0  # without flock (or before the lock exists): only folders this old


@contextlib.contextmanager
def upload_dir() -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX))
    try:
        with open(tmp / ".lock", "wb") as lock:
            if fcntl is not None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sweep_upload_dirs(root: str | os.PathLike | None = None) -> int:
    """Remove upload folders that a server killed mid-import left in the
    temp dir (``root``, default the system's). Returns how many."""
    removed = 0
    for d in Path(root or tempfile.gettempdir()).glob(UPLOAD_PREFIX + "*"):
        try:
            st = d.lstat()
            if not d.is_dir() or d.is_symlink() or st.st_uid != getattr(os, "getuid", lambda: st.st_uid)():
                continue
            with contextlib.ExitStack() as stack:
                try:
                    lock = stack.enter_context(open(d / ".lock", "rb"))
                except FileNotFoundError:
                    lock = None
                if lock is not None and fcntl is not None:
                    try:
                        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # a live upload
                elif time.time() - st.st_mtime < UNLOCKED_MIN_AGE:
                    continue
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


@router.get("/datasets/{dataset_id}/items")
def list_items(dataset_id: int, request: Request, ws: WS, user: Staff,
               after: int | None = Query(None, ge=0), limit: int = Query(100, ge=1, le=1000),
               q: str | None = Query(None, max_length=200,
                                     description="keep items whose text contains this (case-insensitive)")):
    """Items in id order (keyset pages: pass ``next_after`` back as
    ``after``); filter with ``q`` and ``meta.KEY=VALUE`` (metadata equals,
    as text; up to 5). A filtered page looks at ``scan_rows`` items at
    most: ``scanned_to`` (not null) says it stopped there with fewer matches
    than ``limit``; ``next_after`` goes on from there."""
    ws.require_dataset_access(dataset_id, user, count=False)
    meta = {k[5:]: v for k, v in request.query_params.items() if k.startswith("meta.")}
    scanned: dict = {}
    rows, nxt = ws.list_items(dataset_id, after=after, limit=limit, q=q, meta=meta, scanned=scanned)
    return json({"items": rows, "next_after": nxt, **scanned})


@router.get("/datasets/{dataset_id}/imports")
def list_imports(dataset_id: int, ws: WS, user: Staff):
    """The dataset's imports, newest first: provenance (source, license,
    consent), items added and skipped, and the kind of content."""
    ws.require_dataset_access(dataset_id, user, count=False)
    return json({"imports": ws.list_imports(dataset_id)})


@router.get("/items")
def get_items(ws: WS, user: Staff,
              ids: str = Query(..., max_length=2000, description="item ids, comma-separated (at most 100)")):
    """Several items in one request, each readable exactly when ``GET
    /items/{id}`` would answer it: ``{"items": [...], "missing": [ids]}``, in
    the order asked; an id that does not exist or is not yours to see is
    ``missing``."""
    try:
        wanted = [int(x) for x in ids.split(",") if x.strip()]
    except ValueError:
        raise InvalidInput("ids must be whole numbers separated by commas, e.g. ids=3,17,42") from None
    return json(ws.items_for(wanted, user))


@router.get("/items/{item_id}")
def get_item(item_id: int, ws: WS, user: Staff):
    if not ws.can_see_item(item_id, user):
        raise NotFound(f"item {item_id} does not exist")
    return json(ws.get_item(item_id))


@router.get("/items/{item_id}/content", response_class=Response, responses={200: {
    "description": "the item's bytes", "content": {"image/*": {}, "text/plain": {}}}})
def item_content(item_id: int, ws: WS, user: User):
    """The item's raw content: image bytes, or the text as text/plain."""
    if not ws.can_see_item(item_id, user):
        raise NotFound(f"item {item_id} does not exist")
    data, media = ws.item_content(item_id)
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=3600"})
