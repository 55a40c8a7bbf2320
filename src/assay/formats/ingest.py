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
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from assay.engine import ledger
from assay.errors import Conflict, InvalidInput
from assay.store import BlobStore, Database
from assay.store.schema import datasets, imports, items

IMAGE_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
TABLE_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet")
#: text files of the label formats whose texts import as items: CoNLL (one token
#: a line; the text is the tokens one space apart) and Label Studio's JSON export
LABELED_TEXT_SUFFIXES = (".conll", ".bio", ".iob", ".json")
#: files an image import sets aside (not items, not errors): the labels of a YOLO
#: (.txt under a labels/ folder, classes.txt, a .yaml), Pascal VOC (.xml) or COCO
#: (.json) folder, which a project imports as gold from the same folder or zip
#: (assay.formats.shapes); a stray notes.txt is still refused
LABEL_FILE_SUFFIXES = (".xml", ".yaml", ".yml", ".json")
BATCH = 5000


@dataclass(frozen=True)
class Limits:
    """Bounds on what an import may unpack (decompression bombs).

    Each comes from an environment variable (:mod:`assay.config`), read when an import starts.
    """

    image_pixels: int = 89_478_485     # ASSAY_MAX_IMAGE_PIXELS (Pillow's default); frames count
    image_bytes: int = 64 << 20        # ASSAY_MAX_IMAGE_MB: one image file
    zip_bytes: int = 2 << 30           # ASSAY_MAX_ZIP_MB: a zip's members, unpacked, together
    zip_ratio: float = 100.0           # ASSAY_MAX_ZIP_RATIO: unpacked / packed size of one member
    zip_members: int = 200_000         # ASSAY_MAX_ZIP_MEMBERS: entries in one zip

    @classmethod
    def from_env(cls) -> Limits:
        """The limits of :func:`assay.config.config` (read when an import starts)."""
        from assay.config import config

        c = config()
        return cls(image_pixels=c.max_image_pixels, image_bytes=int(c.max_image_mb * (1 << 20)),
                   zip_bytes=int(c.max_zip_mb * (1 << 20)), zip_ratio=c.max_zip_ratio,
                   zip_members=c.max_zip_members)


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
    if suffix not in TABLE_SUFFIXES + LABELED_TEXT_SUFFIXES:
        raise InvalidInput(
            f"cannot import {path.name!r}: use a .csv, .jsonl or .parquet file, CoNLL (.conll) or a Label "
            "Studio export (.json) (or a folder of images)"
        )
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    if suffix in LABELED_TEXT_SUFFIXES:
        rows = _labeled_text_rows(path, text_column)
        for start in range(0, len(rows), batch):
            yield rows[start:start + batch]
        return
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


def _labeled_text_rows(path: Path, text_column: str) -> list[dict]:
    """The items of a CoNLL file (a row per document: ``text_column`` the
    tokens one space apart, ``doc`` its place, ``item_id`` comments kept as
    ``source_item_id``) or of a Label Studio export (its texts:
    :func:`assay.formats.labelstudio.data_rows`). Read whole: these formats
    hold no more than their labels' text."""
    import orjson

    if path.suffix.lower() == ".json":
        from assay.formats import labelstudio

        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"{path.name} could not be parsed: {exc}") from None
        return labelstudio.data_rows(data, text_column, path.name)
    from assay.formats import spans

    docs = spans.read_conll_file(path)
    return [{text_column: spans.conll_text(d["tokens"]), "doc": n,
             **({"source_item_id": d["item_id"]} if "item_id" in d else {})} for n, d in enumerate(docs, 1)]


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


def is_label_file(name: str) -> bool:
    """Whether an image import sets the file (a path inside the folder or
    zip) aside as a label file: :data:`LABEL_FILE_SUFFIXES`, a YOLO label
    ``.txt`` under a ``labels/`` folder, or ``classes.txt``."""
    pp = PurePosixPath(name)
    if pp.suffix.lower() == ".txt":
        return pp.name.lower() == "classes.txt" or any(part.lower() == "labels" for part in pp.parts[:-1])
    return pp.suffix.lower() in LABEL_FILE_SUFFIXES


def scan_image_folder(folder: Path, on_invalid: str = "error",
                      label_files: list | None = None) -> tuple[list[Path], Path | None]:
    """List image files under ``folder`` (recursive, sorted) and its sidecar CSV.

    A sidecar is ``metadata.csv`` at the top with a ``file`` column holding
    paths relative to the folder. Label files (:func:`is_label_file`) are set
    aside into ``label_files``. Any other visible file that is not an image
    is an error (or skipped with ``on_invalid='skip'``).
    """
    if not folder.is_dir():
        raise InvalidInput(f"no such folder: {folder}")
    folder = folder.resolve()  # relative paths work; links inside are judged against the real folder
    sidecar = folder / "metadata.csv"
    found, bad = [], []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for d in dirs:  # os.walk does not follow links to folders: refuse those that leave
            _check_link(Path(root) / d, folder)
        for name in sorted(files):
            if name.startswith("."):
                continue
            p = Path(root) / name
            _check_link(p, folder)
            if p == sidecar:
                continue
            if p.suffix.lower() in IMAGE_SUFFIXES:
                found.append(p)
            elif is_label_file(p.relative_to(folder).as_posix()):
                if label_files is not None:
                    label_files.append(p)
            else:
                bad.append(p)
    if bad and on_invalid == "error":
        shown = ", ".join(str(p.relative_to(folder)) for p in bad[:5])
        raise InvalidInput(
            f"{len(bad)} file(s) in {folder} are neither images (png/jpg/webp) nor label files "
            f"(YOLO labels/*.txt, VOC .xml, COCO .json): {shown}. Remove them or skip them (--skip-invalid)."
        )
    if not found:
        raise InvalidInput(f"no png/jpg/webp images found in {folder}")
    return found, (sidecar if sidecar.is_file() else None)


def _check_link(p: Path, folder: Path) -> None:
    """A symbolic link inside an import folder may point only inside it:
    otherwise importing a folder someone else prepared could copy any file
    the importing user can read (``~/.ssh/id_rsa.png -> ../../.ssh/id_rsa``)."""
    if not p.is_symlink():
        return
    target = p.resolve()
    if target != folder and folder not in target.parents:
        raise InvalidInput(
            f"refusing {p.relative_to(folder)}: it is a link to {target}, outside {folder}. "
            "Copy the file into the folder instead."
        )


def read_sidecar(path: Path | None, data: bytes | None = None) -> dict[str, dict]:
    if path is None:
        return {}
    if data is None:
        data = path.read_bytes()
    try:
        fh = io.StringIO(data.decode("utf-8-sig"), newline="")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path.name} is not UTF-8 text") from None
    reader = csv.DictReader(fh)
    if not reader.fieldnames or "file" not in reader.fieldnames:
        raise InvalidInput(f"{path.name} needs a 'file' column with image paths relative to the folder")
    return {row.pop("file").replace("\\", "/"): row for row in reader}


def _pillow(max_pixels: int):
    """Pillow with its decompression-bomb limit set to ours.

    Pillow warns above ``MAX_IMAGE_PIXELS`` and raises above twice that; an
    import checks the header's size itself first and refuses with a clear
    message, so the warning would only repeat that: it is silenced.
    """
    from PIL import Image

    if Image.MAX_IMAGE_PIXELS != max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels
    # at the front of the filters each time (a duplicate is replaced, not added)
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    return Image


def check_image(data: bytes, name: str, max_pixels: int | None = None) -> str:
    """Return the media type of an image or raise InvalidInput.

    Reads the header only: width × height (× frames) is checked against
    ``max_pixels`` (``ASSAY_MAX_IMAGE_PIXELS``) before anything is decoded.
    """
    if max_pixels is None:
        max_pixels = Limits.from_env().image_pixels
    Image = _pillow(max_pixels)
    from PIL import UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = (im.format or "").upper()
            media = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}.get(fmt)
            if media is None:
                raise InvalidInput(f"{name} is a {fmt or 'unknown'} image; use png, jpg or webp")
            w, h = im.size
            frames = max(1, int(getattr(im, "n_frames", 1) or 1))
            if w * h * frames > max_pixels:
                raise InvalidInput(_too_many_pixels(name, w, h, frames, max_pixels))
            im.verify()
    except Image.DecompressionBombError:
        raise InvalidInput(f"{name} has more pixels than the limit of {max_pixels:,} "
                           "(ASSAY_MAX_IMAGE_PIXELS)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidInput(f"{name} is not a readable image ({exc.__class__.__name__})") from None
    return media


def _too_many_pixels(name: str, w: int, h: int, frames: int, limit: int) -> str:
    size = f"{w}×{h}" + (f"×{frames} frames" if frames > 1 else "")
    return (f"{name} is {size} = {w * h * frames:,} pixels, more than the limit of {limit:,}; "
            "shrink it, or raise ASSAY_MAX_IMAGE_PIXELS if you trust the file")


def read_image_file(path: Path, rel: str, limits: Limits) -> bytes:
    """An image file's bytes, refusing files larger than the per-image limit."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInput(f"cannot read {rel}: {exc.strerror}") from None
    if size > limits.image_bytes:
        raise InvalidInput(f"{rel} is {size:,} bytes, more than the limit of {limits.image_bytes:,} "
                           "for one image (ASSAY_MAX_IMAGE_MB)")
    with path.open("rb") as fh:
        data = fh.read(limits.image_bytes + 1)
    if len(data) > limits.image_bytes:  # grew since the stat
        raise InvalidInput(f"{rel} is larger than the limit of {limits.image_bytes:,} bytes (ASSAY_MAX_IMAGE_MB)")
    return data


def image_rows(
    files: Iterable[tuple[str, bytes | Path]],
    blobs: BlobStore,
    sidecar: dict[str, dict],
    uri_prefix: str,
    written: list[str],
    on_invalid: str = "error",
    batch: int = 500,
    limits: Limits | None = None,
) -> Iterator[list[dict]]:
    """Check, store and describe images; ``written`` (a list or a blob
    journal) gets each new blob key before the blob is written."""
    limits = limits or Limits.from_env()
    out = []
    for rel, src in files:
        try:
            data = read_image_file(src, rel, limits) if isinstance(src, Path) else src
            media = check_image(data, rel, limits.image_pixels)
        except InvalidInput:
            if on_invalid == "skip":
                continue
            raise
        digest = content_hash(data)
        key = blobs.key_for(digest, Path(rel).suffix)
        if not blobs.exists(key):
            written.append(key)
            blobs.put(key, data)
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
    dataset_id: int | str,
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
    items in the same transaction. A dataset *name* (str) creates that
    dataset in the same transaction: an import that fails or is killed
    leaves no empty dataset behind."""
    from tqdm.auto import tqdm

    from assay import audit

    now = time.time()
    seen_rows = 0
    bar = tqdm(total=total, desc=desc, unit="rows", disable=not progress, leave=False)
    try:
        with db.write() as conn:
            if isinstance(dataset_id, str):
                try:
                    dataset_id = conn.execute(
                        insert(datasets).values(name=dataset_id, created_at=now).returning(datasets.c.id)
                    ).scalar_one()
                except IntegrityError:
                    raise Conflict(f"dataset {dataset_id!r} already exists") from None
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
            audit.record(conn, "dataset.import", target_kind="dataset", target_id=dataset_id,
                         details={"import_id": import_id, "added": added, "skipped": seen_rows - added,
                                  "source": (prov.source or "")[:200], "source_uri": (source_uri or "")[:500]})
            for p in conn.execute(text(f"SELECT p.id, p.overlap, {HAS_GOLD} AS has_gold FROM projects p "
                                       "WHERE p.dataset_id = :d ORDER BY p.id"), {"d": dataset_id}).all():
                ledger.create_tasks(conn, p.id, dataset_id, p.overlap, "1 = 1" if p.has_gold else "1 = 0",
                                    import_id=import_id)
    finally:
        bar.close()
    _refresh_stats(db, added)
    return ImportResult(dataset_id, import_id, added, seen_rows - added)


#: PostgreSQL re-reads the items' statistics after an import this big: with
#: the stale ones it plans a keyset page as a scan of the whole dataset and a
#: sort (100k items: 28 ms a page, 2 ms once analyzed).
ANALYZE_AFTER = 10_000


def _refresh_stats(db: Database, added: int) -> None:
    if added >= ANALYZE_AFTER and not db.is_sqlite:
        with db.write() as conn:
            conn.execute(text("ANALYZE items"))


# a project with gold hands its pool out shuffled (assay.engine.handout)
HAS_GOLD = "EXISTS (SELECT 1 FROM tasks g WHERE g.project_id = p.id AND g.is_gold)"


def _insert_ignore(db: Database, table):
    if db.is_sqlite:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    return dialect_insert(table).on_conflict_do_nothing(index_elements=["dataset_id", "content_hash"])
