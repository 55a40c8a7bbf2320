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
