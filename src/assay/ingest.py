"""Ingest: rows of text (CSV, JSONL, Parquet, DataFrame) and folders of
images become items. Streams in batches in constant memory; the whole import
is one transaction, so a failure leaves nothing behind."""

from __future__ import annotations

import csv
import decimal
import hashlib
import io
import math
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from assay.errors import InvalidInput
from assay.store import BlobStore, Database
from assay.store.schema import imports, items

IMAGE_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
TABLE_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet")
BATCH = 5000


@dataclass
class ImportResult:
    dataset_id: int
    import_id: int
    added: int
    skipped: int

    def as_dict(self) -> dict:
        return {"dataset_id": self.dataset_id, "import_id": self.import_id,
                "added": self.added, "skipped": self.skipped}


@dataclass
class Provenance:
    source: str | None = None
    license: str | None = None
    consent: str | None = None


def content_hash(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- tables


def iter_table(path: Path, text_column: str, batch: int = BATCH) -> Iterator[list[dict]]:
    """Yield lists of row dicts from a CSV / JSONL / Parquet file.

    Checks the text column on the first batch so a wrong file fails before
    anything is written.
    """
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InvalidInput(
            f"cannot import {path.name!r}: use a .csv, .jsonl or .parquet file (or a folder of images)"
        )
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:
            raise InvalidInput(f"{path.name} is not a readable Parquet file: {exc}") from None
        _check_column(text_column, pf.schema_arrow.names, path.name)
        for rb in pf.iter_batches(batch_size=batch):
            yield rb.to_pylist()
        return
    if suffix in (".jsonl", ".ndjson"):
        yield from _iter_jsonl(path, text_column, batch)
        return
    import pandas as pd

    try:
        reader = pd.read_csv(path, chunksize=batch, dtype=str, keep_default_na=False, na_values=[""])
        first = True
        for chunk in reader:
            if first:
                _check_column(text_column, list(chunk.columns), path.name)
                first = False
            yield _records(chunk)
        if first:
            raise InvalidInput(f"{path.name} has no rows")
    except InvalidInput:
        raise
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path.name} could not be parsed: {exc}") from None


def _iter_jsonl(path: Path, text_column: str, batch: int) -> Iterator[list[dict]]:
    """JSON lines as they are written (pandas would turn integers with gaps into floats)."""
    import json

    import orjson

    rows: list[dict] = []
    first = True
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                try:
                    row = json.loads(line)  # NaN / Infinity, as Python's json writes them
                except ValueError as exc:
                    raise InvalidInput(f"{path.name} could not be parsed: line {n}: {exc}") from None
            if not isinstance(row, dict):
                raise InvalidInput(f"{path.name} could not be parsed: line {n} is not a JSON object")
            rows.append(row)
            if len(rows) >= batch:
                if first:
                    _check_column(text_column, list(dict.fromkeys(k for r in rows for k in r)), path.name)
                    first = False
                yield rows
                rows = []
    if first:
        if not rows:
            raise InvalidInput(f"{path.name} has no rows")
        _check_column(text_column, list(dict.fromkeys(k for r in rows for k in r)), path.name)
    if rows:
        yield rows


def iter_dataframe(df, text_column: str, batch: int = BATCH) -> Iterator[list[dict]]:
    _check_column(text_column, [str(c) for c in df.columns], "the DataFrame")
    for start in range(0, len(df), batch):
        yield _records(df.iloc[start : start + batch])


def _records(chunk) -> list[dict]:
    return chunk.to_dict(orient="records")


def _check_column(column: str, columns: list[str], where: str) -> None:
    if column not in columns:
        shown = ", ".join(repr(c) for c in columns[:20])
        raise InvalidInput(
            f"{where} has no text column {column!r}; its columns are {shown}. "
            f"Pass the right one with --text-column / text_column="
        )


def _clean(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item") and not isinstance(v, (list, dict, str, bytes)):
        try:
            return v.item()  # numpy scalar
        except (ValueError, AttributeError):
            pass
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        raise InvalidInput("binary columns cannot be imported as metadata; drop or encode them first")
    if hasattr(v, "isoformat"):
        return None if v != v else v.isoformat()  # NaT is the one date not equal to itself
    return v


def text_rows(
    batches: Iterable[list[dict]], text_column: str, source_uri: str, start: int = 0
) -> Iterator[list[dict]]:
    """Turn raw row dicts into item rows (without dataset/import ids)."""
    n = start
    for rows in batches:
        out = []
        for row in rows:
            n += 1
            t = row.get(text_column)
            if t is None or (isinstance(t, float) and math.isnan(t)):
                raise InvalidInput(f"row {n} of {source_uri} has an empty {text_column!r}")
            t = str(t)
            if not t.strip():
                raise InvalidInput(f"row {n} of {source_uri} has an empty {text_column!r}")
            meta = {str(k): _clean(v) for k, v in row.items() if k != text_column}
            out.append({
                "content_hash": content_hash(t),
                "kind": "text",
                "text": t,
                "source_uri": f"{source_uri}#row={n}",
                "meta": meta or None,
            })
        yield out


# ---------------------------------------------------------------- images


def scan_image_folder(folder: Path, on_invalid: str = "error") -> tuple[list[Path], Path | None]:
    """List image files under ``folder`` (recursive, sorted) and its sidecar CSV.

    A sidecar is ``metadata.csv`` at the top with a ``file`` column holding
    paths relative to the folder. Any other visible file that is not an
    image is an error (or skipped with ``on_invalid='skip'``).
    """
    if not folder.is_dir():
        raise InvalidInput(f"no such folder: {folder}")
    sidecar = folder / "metadata.csv"
    found, bad = [], []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            p = Path(root) / name
            if p == sidecar:
                continue
            (found if p.suffix.lower() in IMAGE_SUFFIXES else bad).append(p)
    if bad and on_invalid == "error":
        shown = ", ".join(str(p.relative_to(folder)) for p in bad[:5])
        raise InvalidInput(
            f"{len(bad)} file(s) in {folder} are not images (png/jpg/webp): {shown}. "
            "Remove them or skip them (--skip-invalid)."
        )
    if not found:
        raise InvalidInput(f"no png/jpg/webp images found in {folder}")
    return found, (sidecar if sidecar.is_file() else None)


def read_sidecar(path: Path | None) -> dict[str, dict]:
    if path is None:
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "file" not in reader.fieldnames:
            raise InvalidInput(f"{path.name} needs a 'file' column with image paths relative to the folder")
        return {row.pop("file").replace("\\", "/"): row for row in reader}


def check_image(data: bytes, name: str) -> str:
    """Return the media type of an image or raise InvalidInput."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = (im.format or "").upper()
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(f"{name} is not a readable image ({exc.__class__.__name__})") from None
    media = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}.get(fmt)
    if media is None:
        raise InvalidInput(f"{name} is a {fmt or 'unknown'} image; use png, jpg or webp")
    return media


def image_rows(
    files: list[tuple[str, bytes | Path]],
    blobs: BlobStore,
    sidecar: dict[str, dict],
    uri_prefix: str,
    written: list[str],
    on_invalid: str = "error",
    batch: int = 500,
) -> Iterator[list[dict]]:
    """Check, store and describe images; ``written`` collects new blob keys."""
    out = []
    for rel, src in files:
        data = src.read_bytes() if isinstance(src, Path) else src
        try:
            media = check_image(data, rel)
        except InvalidInput:
            if on_invalid == "skip":
                continue
            raise
        digest = content_hash(data)
        key = blobs.key_for(digest, Path(rel).suffix)
        if not (blobs.root / key).exists():
            blobs.put(key, data)
            written.append(key)
        out.append({
            "content_hash": digest,
            "kind": "image",
            "blob": key,
            "media_type": media,
            "source_uri": f"{uri_prefix}{rel}",
            "meta": {"file": rel, **{k: v for k, v in sidecar.get(rel, {}).items()}},
        })
        if len(out) >= batch:
            yield out
            out = []
    if out:
        yield out


# ---------------------------------------------------------------- writing


def write_items(
    db: Database,
    dataset_id: int,
    batches: Iterable[list[dict]],
    prov: Provenance,
    source_uri: str,
    *,
    progress: bool = False,
    total: int | None = None,
    desc: str = "import",
) -> ImportResult:
    """Insert item rows in one transaction; duplicates (same content in the
    same dataset) are skipped. Projects on the dataset get tasks for the new
    items in the same transaction."""
    from tqdm.auto import tqdm

    now = time.time()
    seen_rows = 0
    bar = tqdm(total=total, desc=desc, unit="rows", disable=not progress, leave=False)
    try:
        with db.write() as conn:
            import_id = conn.execute(
                insert(imports).values(
                    dataset_id=dataset_id, source_uri=source_uri, source=prov.source,
                    license=prov.license, consent=prov.consent, created_at=now,
                ).returning(imports.c.id)
            ).scalar_one()
            stmt = _insert_ignore(db, items)
            for rows in batches:
                batch_seen: set[str] = set()
                payload = []
                for r in rows:
                    if r["content_hash"] in batch_seen:
                        continue
                    batch_seen.add(r["content_hash"])
                    payload.append({
                        "dataset_id": dataset_id, "text": None, "blob": None, "media_type": None,
                        "source": prov.source, "license": prov.license, "consent": prov.consent,
                        "import_id": import_id, "created_at": now, **r,
                    })
                seen_rows += len(rows)
                if payload:
                    conn.execute(stmt, payload)
                bar.update(len(rows))
            if seen_rows == 0:
                raise InvalidInput(f"nothing to import from {source_uri}")
            added = conn.execute(
                select(func.count()).select_from(items).where(items.c.import_id == import_id)
            ).scalar_one()
            conn.execute(
                imports.update().where(imports.c.id == import_id)
                .values(added=added, skipped=seen_rows - added)
            )
            conn.execute(
                text(
                    "INSERT INTO tasks (project_id, item_id, priority, needed, answer_count, open_slots) "
                    "SELECT p.id, i.id, 0, p.overlap, 0, p.overlap FROM items i "
                    "JOIN projects p ON p.dataset_id = i.dataset_id WHERE i.import_id = :imp"
                ),
                {"imp": import_id},
            )
    finally:
        bar.close()
    return ImportResult(dataset_id, import_id, added, seen_rows - added)


def _insert_ignore(db: Database, table):
    if db.is_sqlite:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    return dialect_insert(table).on_conflict_do_nothing(index_elements=["dataset_id", "content_hash"])
