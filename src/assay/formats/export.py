"""Export a project's labels as JSONL, CSV or Parquet, streaming in constant
memory: tasks are read in keyset pages and written page by page.

CSV is made safe to open in a spreadsheet (the OWASP rule against formula
injection): every text cell that starts with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return gets a single quote ``'`` in front, so Excel,
LibreOffice and Google Sheets show it as text instead of running it. This
applies to every text cell, including text that looks like a negative number
(``-5`` is written ``'-5``: a number typed into a text column is data an
annotator or an importer controls, and ``-1+cmd|...`` also starts with
``-``). Numbers assay itself writes (``item_id``, ``confidence``,
``n_answers``) are not text and are left alone. JSONL and Parquet are not
changed: they are the lossless formats.
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
import tempfile
import unicodedata
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import JSON, bindparam, text

from assay import kinds
from assay.engine import resolver
from assay.errors import InvalidInput
from assay.formats import spans as _spans
from assay.kinds import LabelKind
from assay.store import Database

FORMATS = ("jsonl", "csv", "parquet")
PAGE = 2000

_TASKS_SELECT = (
    "SELECT t.id AS task_id, t.item_id, i.kind, i.text, i.source_uri, i.meta, i.source, "
    f"i.license, i.consent, i.content_hash, {resolver.LABEL_COLUMNS} "
    f"FROM tasks t JOIN items i ON i.id = t.item_id {resolver.LABEL_JOINS}"
    "WHERE t.project_id = :p AND t.id > :after "
)
_ORDER = "ORDER BY t.id LIMIT :n"
# Restrictions done by the database (a page is read through the index, nothing is held beyond it).
_IN_SLICE = "AND t.item_id IN (SELECT item_id FROM slice_items WHERE slice_id = :slice) "
_WITH_TAG = "AND t.item_id IN (SELECT item_id FROM item_tags WHERE tag = :tag) "
_TASKS = {
    (False, False): text(_TASKS_SELECT + _ORDER).columns(meta=JSON, **resolver.LABEL_TYPES),
    (True, False): text(_TASKS_SELECT + _IN_SLICE + _ORDER).columns(meta=JSON, **resolver.LABEL_TYPES),
    (False, True): text(_TASKS_SELECT + _WITH_TAG + _ORDER).columns(meta=JSON, **resolver.LABEL_TYPES),
    (True, True): text(_TASKS_SELECT + _IN_SLICE + _WITH_TAG + _ORDER).columns(meta=JSON, **resolver.LABEL_TYPES),
}
_ANSWERS = text(
    "SELECT a.task_id, a.annotator_id, u.username, a.label, a.created_at FROM answers a "
    "JOIN users u ON u.id = a.annotator_id "
    "WHERE a.project_id = :p AND a.task_id > :lo AND a.task_id <= :hi ORDER BY a.task_id, a.id"
).columns(label=JSON)
# A filtered page's tasks are sparse: their answers by task id, not by range.
_ANSWERS_OF = text(
    "SELECT a.task_id, a.annotator_id, u.username, a.label, a.created_at FROM answers a "
    "JOIN users u ON u.id = a.annotator_id "
    "WHERE a.project_id = :p AND a.task_id IN :ids ORDER BY a.task_id, a.id"
).bindparams(bindparam("ids", expanding=True)).columns(label=JSON)


def _page(conn, project_id: int, after: int, page: int, slice_id: int | None, tag: str | None):
    """One page of tasks (after ``after``) and their answers by task."""
    params = {"p": project_id, "after": after, "n": page, "slice": slice_id, "tag": tag}
    rows = conn.execute(_TASKS[slice_id is not None, tag is not None], params).all()
    by_task: dict[int, list] = {}
    if rows:
        if slice_id is None and tag is None:
            answers = conn.execute(_ANSWERS, {"p": project_id, "lo": after, "hi": rows[-1].task_id})
        else:
            answers = conn.execute(_ANSWERS_OF, {"p": project_id, "ids": [r.task_id for r in rows]})
        for a in answers:
            by_task.setdefault(a.task_id, []).append(a)
    return rows, by_task


def iter_records(db: Database, project: dict, *, labeled_only: bool = False,
                 page: int | None = None, slice_id: int | None = None, tag: str | None = None) -> Iterator[dict]:
    """One dict per item of the project, in task order.

    ``label``, ``label_method``, ``label_source`` and ``confidence`` are the
    item's final label from :mod:`assay.engine.resolver` (gold > reviewer's
    decision > the project's consensus > auto-label > majority vote);
    ``label_method`` is the source without ``consensus:`` (``gold``,
    ``review``, the quality model such as ``ds`` or ``online``, ``auto``,
    ``majority``). ``labeled_only``: items without a final label are left out.
    ``slice_id`` (an explicit slice's id) and ``tag``: only those items, chosen
    in SQL, so memory stays one page whatever the sizes.
    """
    page = page or PAGE
    project_id = project["id"]
    rules = None
    after = 0
    while True:
        with db.read() as conn:
            rules = (rules or resolver.Resolver(conn, project)).using(conn)
            rows, by_task = _page(conn, project_id, after, page, slice_id, tag)
            if not rows:
                return
            finals = [rules.resolve(r, by_task.get(r.task_id, [])) for r in rows]
        for r, fin in zip(rows, finals):
            if labeled_only and fin.label is None:
                continue
            ans = by_task.get(r.task_id, [])
            yield {
                "item_id": r.item_id,
                "kind": r.kind,
                "text": r.text,
                "source_uri": r.source_uri,
                "label": fin.label,
                "label_method": fin.method,
                "label_source": fin.source,
                "confidence": fin.confidence,
                "consensus_status": r.c_status,
                "n_answers": len(ans),
                "answers": [
                    {"annotator_id": a.annotator_id, "annotator": a.username,
                     "label": a.label, "created_at": a.created_at}
                    for a in ans
                ],
                "meta": r.meta,
                "provenance": {"source": r.source, "license": r.license, "consent": r.consent,
                               "content_hash": r.content_hash},
            }
        after = rows[-1].task_id
        if len(rows) < page:
            return


def jsonl_chunks(records: Iterator[dict], per_chunk: int = 500) -> Iterator[bytes]:
    buf = []
    for i, rec in enumerate(records, 1):
        buf.append(orjson.dumps(rec))
        if i % per_chunk == 0:
            yield b"\n".join(buf) + b"\n"
            buf = []
    if buf:
        yield b"\n".join(buf) + b"\n"


CSV_COLUMNS = ["item_id", "kind", "text", "source_uri", "label", "label_method", "confidence",
               "consensus_status", "n_answers",
               "answers", "meta", "source", "license", "consent", "content_hash", "label_source"]


#: first characters that make a spreadsheet read a cell as a formula (OWASP)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text: strings starting with a
    formula character get a leading ``'``; anything else is returned as is."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _csv_row(rec: dict, label_kind: LabelKind) -> list:
    return [csv_safe(v) for v in _csv_cells(rec, label_kind)]


def _csv_cells(rec: dict, label_kind: LabelKind) -> list:
    lab = label_kind.export_columns(rec["label"])["label"]
    prov = rec["provenance"]
    return [
        rec["item_id"], rec["kind"], rec["text"] or "", rec["source_uri"] or "",
        "" if lab is None else lab,
        rec["label_method"] or "", "" if rec["confidence"] is None else rec["confidence"],
        rec["consensus_status"] or "", rec["n_answers"], orjson.dumps(rec["answers"]).decode(),
        orjson.dumps(rec["meta"]).decode() if rec["meta"] is not None else "",
        prov["source"] or "", prov["license"] or "", prov["consent"] or "", prov["content_hash"],
        rec.get("label_source") or "",
    ]


def csv_chunks(records: Iterator[dict], per_chunk: int = 500, *,
               label_kind: LabelKind | None = None) -> Iterator[bytes]:
    """CSV byte chunks; ``label_kind`` (default single-label) writes the label cell."""
    label_kind = label_kind or kinds.get("single")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    for i, rec in enumerate(records, 1):
        w.writerow(_csv_row(rec, label_kind))
        if i % per_chunk == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


def parquet_chunks(records: Iterator[dict], chunk_bytes: int = 1 << 20, *,
                   label_kind: LabelKind | None = None) -> Iterator[bytes]:
    """The Parquet file as byte chunks. Parquet is written whole before its
    first byte can go out (the footer points back into the file), so it is
    built in an anonymous temporary file, one with no name in any folder,
    which the system removes when it is closed or the process dies: a failed
    or abandoned export leaves nothing behind."""
    with tempfile.TemporaryFile() as fh:
        write_parquet(records, fh, label_kind=label_kind)
        fh.seek(0)
        while chunk := fh.read(chunk_bytes):
            yield chunk


#: formats a label kind adds (those in its ``formats``): name -> writer of byte chunks
KIND_FORMATS = {"spacy": _spans.spacy_chunks, "conll": _spans.conll_chunks}
#: media type and file suffix of each format
MEDIA = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8",
         "parquet": "application/vnd.apache.parquet", "spacy": "application/x-ndjson",
         "conll": "text/plain; charset=utf-8", "coco": "application/json",
         "labelstudio": "application/json"}
SUFFIX = {"spacy": ".jsonl", "coco": ".json", "labelstudio": ".json"}


def check_format(fmt: str, label_kind: LabelKind | None = None) -> str:
    """``fmt`` if it is one of :data:`FORMATS` or of ``label_kind``'s own
    formats; InvalidInput otherwise."""
    own = tuple(f for f in (label_kind.formats if label_kind is not None else ()) if f in KIND_FORMATS)
    if fmt in FORMATS or fmt in own:
        return fmt
    if fmt in KIND_FORMATS and label_kind is not None:
        raise InvalidInput(f"{label_kind.title} projects have no {fmt} export: use one of {', '.join(FORMATS + own)}")
    if fmt not in KIND_FORMATS:
        raise InvalidInput(f"unknown export format {str(fmt)[:20]!r}: use one of {', '.join(FORMATS + own)}")
    return fmt


def chunks(records: Iterator[dict], fmt: str, label_kind: LabelKind) -> Iterator[bytes]:
    """The export in format ``fmt`` as a stream of byte chunks (a Parquet
    file is built in an anonymous temporary file first)."""
    check_format(fmt, label_kind)
    if fmt in KIND_FORMATS:
        return KIND_FORMATS[fmt](records)
    if fmt == "jsonl":
        return jsonl_chunks(records)
    if fmt == "csv":
        return csv_chunks(records, label_kind=label_kind)
    return parquet_chunks(records, label_kind=label_kind)


def write_file(records: Iterator[dict], path: Path, fmt: str, label_kind: LabelKind) -> int:
    """Write the export to ``path``; how many items it holds. Written to a
    new file next to it and renamed, so a failed export leaves no partial
    file and a reader never sees half of one."""
    check_format(fmt, label_kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_file_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            if fmt == "parquet":
                n = write_parquet(records, fh, label_kind=label_kind)
            else:
                counted = _Counting(records)
                for chunk in chunks(counted, fmt, label_kind):
                    fh.write(chunk)
                n = counted.n
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def _new_file_beside(path: Path) -> tuple[int, str]:
    """A new hidden file next to ``path``, to be renamed onto it: created with
    the mode a plain ``open(path, "w")`` would give (0666 less the umask, or
    the mode of the file it replaces), not mkstemp's 0600."""
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666  # the kernel applies the umask
    for _ in range(100):
        tmp = path.parent / f".{path.name[:80]}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
        except FileExistsError:
            continue
        if mode != 0o666:
            os.chmod(fd if os.chmod in os.supports_fd else tmp, mode)  # exactly the replaced file's mode
        return fd, str(tmp)
    raise FileExistsError(f"no free temporary name next to {path}")


class _Counting:
    """Passes records through, counting them."""

    def __init__(self, records: Iterator[dict]):
        self.records, self.n = records, 0

    def __iter__(self) -> Iterator[dict]:
        for rec in self.records:
            self.n += 1
            yield rec


_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


def download_name(name: str, suffix: str) -> str:
    """A file name for ``name`` (a project name in any script): control
    characters (CR/LF included), slashes and the characters Windows forbids
    become ``_``; at most 150 characters before ``suffix``."""
    clean = _UNSAFE_NAME.sub("_", unicodedata.normalize("NFC", str(name))).strip(" ._")
    return (clean[:150] or "export") + suffix


def content_disposition(name: str, suffix: str) -> str:
    """A ``Content-Disposition: attachment`` value for ``name`` + ``suffix``
    that any name can go in: an ASCII ``filename`` fallback and the real
    name as RFC 5987 / RFC 6266 ``filename*=UTF-8''…``."""
    full = download_name(name, suffix)
    ascii_name = unicodedata.normalize("NFKD", full).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).strip("._-") or "export"
    if not ascii_name.endswith(suffix):
        ascii_name += suffix
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{urllib.parse.quote(full, safe='')}"


def _parquet_schema():
    import pyarrow as pa

    answer = pa.struct([("annotator_id", pa.int64()), ("annotator", pa.string()),
                        ("label", pa.string()), ("created_at", pa.float64())])
    return pa.schema([
        ("item_id", pa.int64()), ("kind", pa.string()), ("text", pa.string()),
        ("source_uri", pa.string()), ("label", pa.string()), ("label_method", pa.string()),
        ("confidence", pa.float64()), ("consensus_status", pa.string()),
        ("n_answers", pa.int32()), ("answers", pa.list_(answer)), ("meta", pa.string()),
        ("source", pa.string()), ("license", pa.string()), ("consent", pa.string()),
        ("content_hash", pa.string()), ("label_source", pa.string()),
    ])


def write_parquet(records: Iterator[dict], sink, rows_per_group: int = 10000, *,
                  label_kind: LabelKind | None = None) -> int:
    """Write records to ``sink`` (a path or a writable file) in row groups.

    Labels are stored as strings, as ``label_kind`` (default single-label)
    writes them for flat formats: the class name, or a JSON list for
    multi-label projects.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _parquet_schema()
    flat = (label_kind or kinds.get("single")).export_columns
    n = 0
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        buf: list[dict] = []
        for rec in records:
            prov = rec["provenance"]
            buf.append({
                "item_id": rec["item_id"], "kind": rec["kind"], "text": rec["text"],
                "source_uri": rec["source_uri"],
                "label": flat(rec["label"])["label"],
                "label_method": rec["label_method"], "confidence": rec["confidence"],
                "consensus_status": rec["consensus_status"], "n_answers": rec["n_answers"],
                "answers": [
                    {**a, "label": flat(a["label"])["label"]}
                    for a in rec["answers"]
                ],
                "meta": orjson.dumps(rec["meta"]).decode() if rec["meta"] is not None else None,
                "source": prov["source"], "license": prov["license"], "consent": prov["consent"],
                "content_hash": prov["content_hash"], "label_source": rec.get("label_source"),
            })
            if len(buf) >= rows_per_group:
                writer.write_table(pa.Table.from_pylist(buf, schema=schema))
                n += len(buf)
                buf = []
        if buf:
            writer.write_table(pa.Table.from_pylist(buf, schema=schema))
            n += len(buf)
    return n
