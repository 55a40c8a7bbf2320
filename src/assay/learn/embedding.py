"""Embed a dataset's items and store the vectors (a service beside the
workspace): only items without a vector in the model's space are embedded,
in batches, with the next batch read (database rows and image files) on a
second thread while the model works on the current one."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import numpy as np
from sqlalchemy import text

from assay.errors import InvalidInput
from assay.store.vectors import space_name

CHUNK = 256  # items read and embedded per step
SHARD = 8192  # vectors per file written


def pending(ws, dataset_id: int, name: str, kind: str) -> dict | None:
    """The result of embedding when every item already has a vector, else None."""
    space = space_name(name)
    with ws.db.read() as conn:
        ids = np.fromiter((r[0] for r in conn.execute(text(
            "SELECT id FROM items WHERE dataset_id = :d AND kind = :k"), {"d": dataset_id, "k": kind})),
            dtype=np.int64)
    if ids.size == 0 or not np.isin(ids, ws.vectors.ids(space)).all():
        return None
    meta = ws.vectors.meta(space)
    return {"space": space, "model": meta.get("model", name), "dim": meta.get("dim"), "embedded": 0,
            "already": int(ids.size), "skipped_other_kind": None, "seconds": 0.0}


def embed_dataset(ws, dataset_id: int, embedder, *, progress: bool = True, chunk: int = CHUNK,
                  shard: int = SHARD) -> dict[str, Any]:
    t0 = time.perf_counter()
    space = space_name(embedder.name)
    with ws.db.read() as conn:
        ids = np.fromiter((r[0] for r in conn.execute(text(
            "SELECT id FROM items WHERE dataset_id = :d AND kind = :k ORDER BY id"),
            {"d": dataset_id, "k": embedder.kind})), dtype=np.int64)
        other = conn.execute(text("SELECT count(*) FROM items WHERE dataset_id = :d AND kind <> :k"),
                             {"d": dataset_id, "k": embedder.kind}).scalar_one()
    if ids.size == 0:
        raise InvalidInput(f"the dataset has no {embedder.kind} items for {embedder.name}"
                           + (f" ({other} items of another kind)" if other else ""))
    have = ws.vectors.ids(space)
    todo = ids[~np.isin(ids, have)]
    meta = {"model": embedder.name, "kind": embedder.kind}
    result = {"space": space, "model": embedder.name, "dim": embedder.dim, "embedded": int(todo.size),
              "already": int(ids.size - todo.size), "skipped_other_kind": int(other)}
    if todo.size == 0:
        result["seconds"] = round(time.perf_counter() - t0, 3)
        return result

    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    # The model's own batch size; a model that splits decoding from its
    # forward pass (images) decodes on the reader thread, beside the model.
    step = max(1, min(chunk, getattr(embedder, "batch_size", chunk) or chunk))
    split = callable(getattr(embedder, "preprocess", None)) and callable(getattr(embedder, "forward", None))

    def reader() -> None:
        try:
            for lo in range(0, todo.size, step):
                if stop.is_set():
                    return
                part = todo[lo:lo + step]
                contents = _contents(ws, embedder.kind, part)
                q.put((part, embedder.preprocess(contents) if split else contents))
            q.put(None)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            q.put(e)

    th = threading.Thread(target=reader, name="assay-embed-reader", daemon=True)
    th.start()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(todo.size), unit="item", desc=f"embedding ({embedder.name})")
    buf_ids: list[np.ndarray] = []
    buf_vecs: list[np.ndarray] = []
    buffered = 0
    try:
        while True:
            got = q.get()
            if got is None:
                break
            if isinstance(got, BaseException):
                raise got
            part, contents = got
            vecs = embedder.forward(contents) if split else embedder.embed(contents)
            if vecs.shape != (len(part), embedder.dim):
                raise InvalidInput(f"{embedder.name} returned shape {vecs.shape} for {len(part)} items")
            buf_ids.append(part)
            buf_vecs.append(vecs)
            buffered += len(part)
            if buffered >= shard:
                ws.vectors.add(space, np.concatenate(buf_ids), np.concatenate(buf_vecs), meta)
                buf_ids, buf_vecs, buffered = [], [], 0
            if bar is not None:
                bar.update(len(part))
        if buffered:
            ws.vectors.add(space, np.concatenate(buf_ids), np.concatenate(buf_vecs), meta)
    finally:
        stop.set()
        if bar is not None:
            bar.close()
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result


def _contents(ws, kind: str, part: np.ndarray) -> list:
    lo, hi = int(part[0]), int(part[-1])
    with ws.db.read() as conn:
        rows = conn.execute(text("SELECT id, text, blob FROM items WHERE id >= :lo AND id <= :hi"),
                            {"lo": lo, "hi": hi}).all()
    by_id = {r.id: r for r in rows}
    if kind == "text":
        return [by_id[int(i)].text or "" for i in part]
    return [ws.blobs.get(by_id[int(i)].blob) for i in part]
