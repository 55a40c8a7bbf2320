"""Gold label files: CSV or JSONL with ``item_id`` (or a metadata column
named by ``key``) and ``label``, and optionally ``nuance`` (the edge case the
item stands for), ``explanation`` and ``reference_items`` (item ids; in a CSV
joined by ``|``) and ``purpose`` ('check' or 'exam'), read into the rows :func:`assay.engine.gold.match_rows`
takes. Multi-label CSV cells list classes joined by ``|`` (the label kind
parses them); JSONL may give a list. Span projects also take spaCy-compatible
JSON lines (:func:`assay.formats.spans.read_spacy`)."""

from __future__ import annotations

import os
from pathlib import Path

from assay.errors import InvalidInput
from assay.formats import spans as _spans
from assay.kinds import LabelKind

#: columns a gold file may add to ``item_id``/``label`` (see :func:`assay.engine.gold.nuance_fields`)
OPTIONAL = ("nuance", "explanation", "reference_items", "purpose")


def read_rows(path: str | os.PathLike, label_kind: LabelKind, key: str | None = None) -> list[dict]:
    """The file's ``{key or "item_id", "label"}`` rows, text labels parsed by
    ``label_kind``; InvalidInput for a missing file, an unreadable one or a
    missing column."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file")
    if "spacy" in label_kind.formats and path.suffix.lower() in (".jsonl", ".ndjson") and _spans.is_spacy(path):
        return _spans.read_spacy(path)  # spaCy lines: items by item_id, or by text (found by the caller)
    try:
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            df = pd.read_json(path, lines=True, dtype=False)
        else:
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise InvalidInput(f"cannot read {path.name}: {e}") from None
    need = [key or "item_id", "label"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InvalidInput(f"{path.name} needs the column(s) {', '.join(missing)}")
    need += [c for c in OPTIONAL if c in df.columns]
    rows = []
    for rec in df[need].to_dict("records"):
        if isinstance(rec["label"], str):
            rec["label"] = label_kind.parse_text(rec["label"])
        rows.append(rec)
    return rows
