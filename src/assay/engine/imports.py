"""Importing items into a dataset: which reader a file needs, and the blobs.

The readers and the all-or-nothing write are :mod:`assay.formats.ingest`;
this module picks the reader for a path (a table of texts, a folder or a zip
of images), bounds zip archives, and keeps the blob store clean. Functions
take the :class:`~assay.store.Database` and the
:class:`~assay.store.BlobStore`, never the workspace.

``target`` is a dataset id, or the name of a dataset to create: the import
then creates it in its own transaction, so a failed import leaves no
dataset behind.

Blobs are written before their rows commit: the blob journal keeps their
keys until the commit, so whatever stops an import (an error, or kill -9)
the unreferenced ones are removed, now or by :func:`sweep_litter` when a
workspace next opens.
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from assay.engine import datasets as _datasets
from assay.errors import InvalidInput
from assay.formats import ingest, zips


def import_path(db, blobs, target: int | str, p: Path, *, text_column: str, source: str | None,
                license: str | None, consent: str | None, progress: bool, on_invalid: str,
                source_uri: str | None) -> dict:
    """Import a CSV / JSONL / Parquet file of texts, a zip or a folder of
    images: ``{"added", "skipped", "dataset_id", "import_id"}``; images also
    ``label_files``, the YOLO / VOC / COCO label files set aside (a project
    imports them as gold)."""
    prov = ingest.Provenance(source or str(p), license, consent)
    if p.is_dir():
        return _import_image_folder(db, blobs, target, p, prov, progress, on_invalid)
    if p.suffix.lower() == ".zip":
        return import_zip(db, blobs, target, p, ingest.Provenance(source or p.name, license, consent),
                          progress, on_invalid)
    batches = ingest.iter_table(p, text_column)
    rows = ingest.text_rows(batches, text_column, p.name)
    return ingest.write_items(db, target, rows, prov, source_uri or str(p), progress=progress,
                              desc=f"import {p.name}").as_dict()


def import_dataframe(db, dataset_id: int, df, *, text_column: str, prov: ingest.Provenance,
                     progress: bool) -> dict:
    """Import a pandas DataFrame with a text column; other columns become metadata."""
    rows = ingest.text_rows(ingest.iter_dataframe(df, text_column), text_column, prov.source)
    return ingest.write_items(db, dataset_id, rows, prov, prov.source, progress=progress,
                              total=len(df)).as_dict()


def _import_image_folder(db, blobs, target: int | str, folder: Path, prov, progress, on_invalid) -> dict:
    folder = folder.resolve()  # a relative folder works (and names a stable file:// URI)
    labels: list[Path] = []
    found, sidecar_path = ingest.scan_image_folder(folder, on_invalid, labels)
    sidecar = ingest.read_sidecar(sidecar_path)
    files = [(p.relative_to(folder).as_posix(), p) for p in found]
    return {**_write_images(db, blobs, target, files, sidecar, f"{folder.as_uri()}/", prov, progress,
                            on_invalid, len(files)), "label_files": len(labels)}


def import_zip(db, blobs, target: int | str, p: Path, prov, progress, on_invalid) -> dict:
    """Import a zip archive of images (with an optional ``metadata.csv``),
    bounded against zip bombs (:class:`assay.formats.ingest.Limits`)."""
    limits = ingest.Limits.from_env()
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput(f"{p.name} is not a readable zip archive: {exc}") from None
    with zf:
        members = {i.filename: i for i in zips.zip_members(zf, p.name, limits)}
        reader = zips.ZipReader(zf, p.name, limits)
        sidecar = {}
        if "metadata.csv" in members:
            sidecar = ingest.read_sidecar(Path("metadata.csv"), reader.read(members.pop("metadata.csv")))
        labels = [n for n in members if ingest.is_label_file(n)]  # set aside: a project's gold upload reads them
        bad = [n for n in members if PurePosixPath(n).suffix.lower() not in ingest.IMAGE_SUFFIXES
               and not ingest.is_label_file(n)]
        if bad and on_invalid == "error":
            raise InvalidInput(f"{len(bad)} file(s) in {p.name} are neither images (png/jpg/webp) nor label "
                               "files (YOLO labels/*.txt, VOC .xml, COCO .json): " + ", ".join(bad[:5]))
        names = sorted(n for n in members if PurePosixPath(n).suffix.lower() in ingest.IMAGE_SUFFIXES)
        if not names:
            raise InvalidInput(f"no png/jpg/webp images found in {p.name}")
        files = ((n, reader.read(members[n])) for n in names)
        return {**_write_images(db, blobs, target, files, sidecar, f"zip:{p.name}!/", prov, progress,
                                on_invalid, len(names)), "label_files": len(labels)}


def _write_images(db, blobs, target, files, sidecar, prefix, prov, progress, on_invalid, total) -> dict:
    limits = ingest.Limits.from_env()
    try:
        with blobs.session() as journal:
            rows = ingest.image_rows(files, blobs, sidecar, prefix, journal, on_invalid, limits=limits)
            r = ingest.write_items(db, target, rows, prov, prefix, progress=progress,
                                   total=total, desc="import images").as_dict()
            blobs.finish(journal)
        return r
    except BaseException:
        sweep_litter(db, blobs)  # this import's new blobs (later, if another import is running)
        raise


def sweep_litter(db, blobs) -> int:
    """Remove what an import killed mid-way left: blobs no item references
    (written before the rows that never committed) and half-written blob
    files. Never touches a running import's blobs. Returns the number of
    blobs removed (0 where the folder is read-only)."""
    def referenced(keys: list[str]) -> list[str]:
        with db.read() as conn:
            return _datasets.referenced_blobs(conn, keys)

    try:
        return blobs.sweep(referenced)
    except OSError:
        return 0  # a read-only workspace folder: nothing we may clean
