"""CSV in and out for ``assay aggregate``: answers ``item,worker,label``,
gold ``item,label``, results ``item,label,confidence``."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import IO

import pandas as pd

from assay.errors import InvalidInput
from assay.quality.coding import AggregateResult, aggregate


def _read(path: Path, columns: list[str], what: str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{what} file not found: {path}")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise InvalidInput(f"{what} file {path} is empty; expected a header {','.join(columns)}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{what} file {path} is not a readable CSV: {str(exc).strip().splitlines()[-1]}") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InvalidInput(f"{what} file {path} lacks column(s) {', '.join(missing)}; "
                           f"expected a header {','.join(columns)} (found {','.join(df.columns)})")
    df = df[columns]
    if df.empty:
        raise InvalidInput(f"{what} file {path} has a header but no rows")
    blank = (df == "").any(axis=1)
    if blank.any():
        line = int(blank.to_numpy().nonzero()[0][0]) + 2
        raise InvalidInput(f"{what} file {path}: {int(blank.sum())} row(s) with an empty value (first on line {line})")
    return df


def read_answers_csv(path: Path) -> pd.DataFrame:
    """Answers with columns ``item, worker, label`` (as text; extra columns ignored)."""
    return _read(path, ["item", "worker", "label"], "answers")


def read_gold_csv(path: Path) -> dict:
    """Gold labels ``item, label`` as a dict; an item listed twice with
    different labels is an error."""
    df = _read(path, ["item", "label"], "gold").drop_duplicates()
    dup = df["item"].duplicated()
    if dup.any():
        raise InvalidInput(f"gold file {path}: item {df['item'][dup].iloc[0]!r} has more than one label")
    return dict(zip(df["item"], df["label"]))


def write_result_csv(result: AggregateResult, out: IO[str]) -> None:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["item", "label", "confidence"])
    w.writerows(zip(result.item_ids, result.labels, (f"{c:.6f}" for c in result.confidence)))


def aggregate_csv(answers: Path, *, method: str = "auto", gold: Path | None = None,
                  out: Path | None = None) -> AggregateResult:
    """Read answers (and gold), aggregate, write ``item,label,confidence``
    to ``out`` (stdout when None). Returns the result."""
    df = read_answers_csv(answers)
    gold_map = read_gold_csv(gold) if gold is not None else None
    result = aggregate(df["item"].to_numpy(), df["worker"].to_numpy(), df["label"].to_numpy(),
                       method=method, gold=gold_map)
    if out is None:
        write_result_csv(result, sys.stdout)
    else:
        with open(out, "w", newline="", encoding="utf-8") as fh:
            write_result_csv(result, fh)
    return result


# ---------------------------------------------------------------- shapes and spans (long JSON lines)

#: the kinds ``assay aggregate`` reads from JSON lines, by the key that holds each answer's marks
SHAPE_KINDS = ("spans", "boxes")


def read_jsonl(path: Path, what: str = "answers") -> list[dict]:
    """Every line of a JSON-lines file as a dict (blank lines skipped); a
    clear :class:`InvalidInput` naming the line when one is not a JSON object."""
    import orjson

    rows = []
    try:
        f = open(path, "rb")
    except OSError as e:
        raise InvalidInput(f"cannot read {what} file {path}: {e.strerror}") from None
    with f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise InvalidInput(f"{path}, line {n}: not valid JSON ({e})") from None
            if not isinstance(row, dict):
                raise InvalidInput(f"{path}, line {n}: each line must be a JSON object")
            rows.append(row)
    if not rows:
        raise InvalidInput(f"{path} holds no {what}")
    return rows


def read_items(path: Path | None) -> dict | None:
    """JSON lines ``{"item", ...}`` (spans: ``text``, ``tokens``; boxes:
    ``width``, ``height``) as item -> row; None without a path."""
    if path is None:
        return None
    out = {}
    for n, row in enumerate(read_jsonl(path, "items"), 1):
        if "item" not in row:
            raise InvalidInput(f"{path}, item {n} has no 'item'")
        out[row["item"]] = row
    return out


def shape_kind(rows: list[dict], kind: str | None = None) -> str:
    """The kind of long JSON-lines answers (``spans`` or ``boxes``): ``kind``
    if given, else read from the rows (each must hold exactly the same one of
    the keys); rows must have ``item`` and ``worker``."""
    if kind is not None and kind not in SHAPE_KINDS:
        raise InvalidInput(f"--kind must be one of {', '.join(SHAPE_KINDS)}, got {kind!r}")
    seen = set()
    for n, row in enumerate(rows, 1):
        missing = [k for k in ("item", "worker") if k not in row]
        if missing:
            raise InvalidInput(f"answer {n} has no {' or '.join(repr(k) for k in missing)}: {_short(row)}")
        has = [k for k in SHAPE_KINDS if k in row]
        if kind is not None:
            if kind not in row:
                raise InvalidInput(f"answer {n} has no {kind!r} list: {_short(row)}")
        elif len(has) != 1:
            raise InvalidInput(f"answer {n} must hold one of {' or '.join(SHAPE_KINDS)}: {_short(row)}")
        else:
            seen.add(has[0])
    if kind is None and len(seen) > 1:
        raise InvalidInput("the answers mix spans and boxes; give --kind to choose")
    return kind if kind is not None else seen.pop()


def _short(row: dict) -> str:
    text = repr(row)
    return text if len(text) <= 120 else text[:117] + "..."


def aggregate_shapes(rows: list[dict], kind: str, *, items: dict | None = None, method: str = "auto") -> list[dict]:
    """One consensus row per item of span or box answers
    (:func:`assay.quality.spans.aggregate_spans` /
    :func:`assay.quality.boxes.aggregate_boxes`); bad rows raise
    :class:`InvalidInput` naming the problem."""
    if kind == "spans":
        from assay.quality.spans import aggregate_spans as run
    elif kind == "boxes":
        from assay.quality.boxes import aggregate_boxes as run
    else:
        raise InvalidInput(f"unknown kind {kind!r}: one of {', '.join(SHAPE_KINDS)}")
    try:
        return run(rows, items=items, method=method)
    except ValueError as e:
        raise InvalidInput(str(e)) from None


def write_jsonl(rows: list[dict], out: IO[bytes]) -> None:
    import orjson

    for row in rows:
        out.write(orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
