"""Formats of span projects (label kind ``spans``), beside JSONL/CSV/Parquet:

- **spaCy-compatible JSON lines** (``spacy``), one item per line, as spaCy's
  and Prodigy's tools read them::

      {"text": "Ada met Bob", "spans": [{"start": 0, "end": 3, "label": "PER"}, ...],
       "meta": {"item_id": 7, "label_method": "majority", "confidence": 1.0}}

  Written for every item with a final label (``"spans": []`` is "no
  entity"); read back as gold (:func:`read_spacy`): an item is named by
  ``item_id`` (on the line or in its ``meta``), else found by its text.
- **CoNLL, BIO tags** (``conll``): one token per line, ``token<TAB>tag``
  (``B-PER``, ``I-PER``, ``O``), a ``# item_id = 7`` line before each item
  and a blank line after it. Tokens are words and single punctuation marks,
  cut at every span boundary too, so each span is whole tokens. BIO has no
  overlaps: of overlapping spans the first (earliest start, then longest)
  is written, the others are left out.

Everything here works on export records (:func:`assay.formats.export.iter_records`)
or on lines; nothing reads the database.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from assay.errors import InvalidInput

#: words and single punctuation marks (the browser editor snaps to the same words)
_WORD = re.compile(r"\w+|[^\w\s]")
PER_CHUNK = 500


def _labelled(records: Iterable[dict]) -> Iterator[dict]:
    return (r for r in records if isinstance(r.get("label"), list) and isinstance(r.get("text"), str))


def spacy_row(rec: dict) -> dict:
    """One export record as a spaCy-compatible line."""
    return {"text": rec["text"],
            "spans": [{"start": s, "end": e, "label": lab} for s, e, lab in rec["label"]],
            "meta": {"item_id": rec["item_id"], "label_method": rec.get("label_method"),
                     "confidence": rec.get("confidence")}}


def spacy_chunks(records: Iterable[dict]) -> Iterator[bytes]:
    """The items with a final label as spaCy-compatible JSON lines, in chunks."""
    buf = []
    for rec in _labelled(records):
        buf.append(orjson.dumps(spacy_row(rec)))
        if len(buf) == PER_CHUNK:
            yield b"\n".join(buf) + b"\n"
            buf = []
    if buf:
        yield b"\n".join(buf) + b"\n"


def bio_tokens(text: str, spans: list) -> list[tuple[str, str]]:
    """``(token, tag)`` pairs of ``text`` with ``spans`` ([start, end, label])
    as BIO tags; tokens are cut at every span boundary."""
    kept, end = [], -1
    for s, e, lab in sorted(spans, key=lambda x: (x[0], -x[1], x[2])):
        if s >= end:  # BIO has no overlaps: the first span wins
            kept.append((s, e, lab))
            end = e
    cuts = sorted({b for s, e, _ in kept for b in (s, e)})
    out, k = [], 0
    for m in _WORD.finditer(text):
        a, b = m.start(), m.end()
        pieces = [a] + [c for c in cuts if a < c < b] + [b]
        for x, y in zip(pieces, pieces[1:]):
            while k < len(kept) and kept[k][1] <= x:
                k += 1
            if k < len(kept) and kept[k][0] <= x < kept[k][1]:
                out.append((text[x:y], ("B-" if x == kept[k][0] else "I-") + kept[k][2]))
            else:
                out.append((text[x:y], "O"))
    return out


def conll_chunks(records: Iterable[dict]) -> Iterator[bytes]:
    """The items with a final label as CoNLL BIO text, in chunks."""
    buf: list[str] = []
    n = 0
    for rec in _labelled(records):
        buf.append(f"# item_id = {rec['item_id']}\n")
        buf.extend(f"{tok}\t{tag}\n" for tok, tag in bio_tokens(rec["text"], rec["label"]))
        buf.append("\n")
        n += 1
        if n % PER_CHUNK == 0:
            yield "".join(buf).encode("utf-8")
            buf = []
    if buf:
        yield "".join(buf).encode("utf-8")


def read_conll(lines: Iterable[str]) -> list[dict]:
    """CoNLL BIO text (as :func:`conll_chunks` writes it; any ``# key = value``
    comment lines, the last column the tag) as ``{"item_id" (if given),
    "tokens", "spans"}`` per item; spans are ``[first token, last token + 1,
    label]`` (token offsets: the text's spacing is not in the format)."""
    docs: list[dict] = []
    cur: dict | None = None
    for n, raw in enumerate(lines, 1):
        line = raw.rstrip("\n")
        if not line.strip():
            cur = None
            continue
        if cur is None:
            cur = {"tokens": [], "tags": []}
            docs.append(cur)
        if line.startswith("# "):
            key, _, value = line[2:].partition(" = ")
            if key.strip() == "item_id" and value.strip().isdigit():
                cur["item_id"] = int(value)
            continue
        cols = line.split("\t") if "\t" in line else line.split()
        tag = cols[-1]
        if len(cols) < 2 or not (tag == "O" or re.fullmatch(r"[BI]-\S+", tag)):
            raise InvalidInput(f"CoNLL line {n}: expected 'token<TAB>tag' with a BIO tag, got {line[:80]!r}")
        cur["tokens"].append(cols[0])
        cur["tags"].append(tag)
    return [{**({"item_id": d["item_id"]} if "item_id" in d else {}), "tokens": d["tokens"],
             "spans": _bio_spans(d["tags"])} for d in docs if d["tokens"]]


def read_conll_file(path: Path) -> list[dict]:
    """:func:`read_conll` of a UTF-8 file; a file that is not UTF-8 or holds no token is an error naming it."""
    try:
        with path.open(encoding="utf-8") as fh:
            docs = read_conll(fh)
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path.name} is not UTF-8 text ({exc})") from None
    if not docs:
        raise InvalidInput(f"{path.name} holds no tokens")
    return docs


def conll_text(tokens: list[str]) -> str:
    """The text an item imported from CoNLL holds: its tokens, one space
    apart (the format keeps no spacing); its gold spans are found in it."""
    return " ".join(tokens)


def _bio_spans(tags: list[str]) -> list[list]:
    out: list[list] = []
    for i, tag in enumerate(tags):
        if tag == "O":
            continue
        kind, lab = tag[0], tag[2:]
        if kind == "I" and out and out[-1][1] == i and out[-1][2] == lab:
            out[-1][1] = i + 1
        else:  # B-, or an I- that starts a span (IOB1)
            out.append([i, i + 1, lab])
    return out


def is_spacy(path: str | os.PathLike) -> bool:
    """Whether a JSON-lines file looks like spaCy's: its first line an object
    with a ``spans`` list and no ``label``."""
    with Path(path).open("rb") as fh:
        for line in fh:
            if line.strip():
                try:
                    doc = orjson.loads(line)
                except orjson.JSONDecodeError:
                    return False
                return isinstance(doc, dict) and isinstance(doc.get("spans"), list) and "label" not in doc
    return False


def read_spacy(path: str | os.PathLike) -> list[dict]:
    """Gold rows from spaCy-compatible JSON lines: ``{"item_id", "label"}``
    where the line names its item (``item_id`` on it or in its ``meta``),
    else ``{"text", "label"}`` (the workspace finds the item by its text);
    ``label`` is the spans as ``[start, end, label]``. A bad line raises
    :class:`InvalidInput` naming it."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file")
    rows = []
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise InvalidInput(f"{path.name}, line {n}: not valid JSON ({e})") from None
            rows.append(_spacy_gold(doc, f"{path.name}, line {n}"))
    if not rows:
        raise InvalidInput(f"{path.name} holds no lines")
    return rows


def _spacy_gold(doc, where: str) -> dict:
    if not isinstance(doc, dict) or not isinstance(doc.get("spans"), list):
        raise InvalidInput(f"{where}: expected an object with a 'spans' list")
    label = []
    for s in doc["spans"]:
        if not isinstance(s, dict) or not {"start", "end", "label"} <= set(s):
            raise InvalidInput(f"{where}: each span needs start, end and label, got {str(s)[:80]}")
        label.append([s["start"], s["end"], s["label"]])
    meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
    item = doc.get("item_id", meta.get("item_id"))
    if item is not None:
        return {"item_id": item, "label": label}
    if not isinstance(doc.get("text"), str):
        raise InvalidInput(f"{where}: give the item as 'item_id' (or meta.item_id) or by its 'text'")
    return {"text": doc["text"], "label": label}


def token_offsets(tokens: list[str], text: str) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
    """Each token's ``(start, end)`` in ``text``, the tokens found in order
    with only whitespace between them, and ``None``; or the offsets found so
    far and ``(token index, position)`` of the first token not where it should be."""
    out: list[tuple[int, int]] = []
    pos = 0
    for k, tok in enumerate(tokens):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if not text.startswith(tok, pos):
            return out, (k, pos)
        out.append((pos, pos + len(tok)))
        pos += len(tok)
    return out, None


def conll_gold(doc: dict, text: str, where: str) -> list[list]:
    """A :func:`read_conll` item's spans as character offsets in ``text``, the
    item's text; InvalidInput naming the first token that is not in it."""
    offs, bad = token_offsets(doc["tokens"], text)
    if bad is not None:
        k, pos = bad
        raise InvalidInput(f"{where}: token {k + 1} {doc['tokens'][k][:40]!r} does not match the item's text "
                           f"at character {pos} ({text[pos:pos + 20]!r}); the tokens must be the text's own")
    return [[offs[a][0], offs[b - 1][1], lab] for a, b, lab in doc["spans"]]
