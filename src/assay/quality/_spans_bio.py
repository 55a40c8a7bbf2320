"""Span answers <-> token-level BIO tags, over arrays.

Tag codes for ``n_types`` entity types: ``0`` = O, ``1 + 2x`` = B-x,
``2 + 2x`` = I-x (x = the type's index). A token's *class* is ``(tag + 1) // 2``:
0 outside an entity, ``1 + x`` inside one of type x.

Rows become token answers in three steps: :func:`validate_rows` (one Python
pass that checks every row and flattens the spans into arrays),
:func:`build_tokens` (each item's token boundaries) and :func:`encode_answers`
(vectorised: every span to its first and last token, then the tags of every
answer row laid out row after row).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np

from assay.errors import InvalidInput

_WORD = re.compile(r"\S+")


class SpanInputError(InvalidInput, ValueError):
    """A bad span row or item: the message says which row and what to fix."""


def whitespace_tokens(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Token boundaries of ``text`` split on whitespace: ``(starts, ends)``,
    character offsets, end exclusive."""
    pairs = [m.span() for m in _WORD.finditer(text)]
    arr = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return arr[:, 0].copy(), arr[:, 1].copy()


def tag_names(types: list[str]) -> list[str]:
    """The tag names in code order: ``["O", "B-PER", "I-PER", ...]``."""
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def spans_to_bio(span_starts, span_ends, span_types, token_starts, token_ends) -> np.ndarray:
    """One sentence's spans as BIO tag codes over its tokens.

    ``span_types`` are type indices; a span covers every token it overlaps.
    Where spans overlap, the one that starts first (the longer on a tie) is
    kept and the others dropped. A span that overlaps no token raises
    :class:`SpanInputError`."""
    ts, te = np.asarray(token_starts, np.int64), np.asarray(token_ends, np.int64)
    ss, se = np.asarray(span_starts, np.int64), np.asarray(span_ends, np.int64)
    first, last = _span_tokens(ss, se, ts, te)
    bad = first > last
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SpanInputError(f"span [{ss[i]}, {se[i]}) covers no token")
    tags = np.zeros(ts.size, np.int64)
    keep = _non_overlapping(np.zeros(ss.size, np.int64), first, last)
    _paint(tags, first[keep], last[keep], np.asarray(span_types, np.int64)[keep])
    return tags


def bio_to_spans(tags, token_starts, token_ends) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BIO tag codes back to spans ``(starts, ends, type indices)``; an I-x
    that does not continue a B-x or I-x opens a new span (the usual fix-up)."""
    tags = np.asarray(tags, np.int64)
    first, last, typ = tag_runs(tags, np.array([0, tags.size]))
    return np.asarray(token_starts)[first], np.asarray(token_ends)[last], typ


def tag_runs(tags: np.ndarray, sent_ptr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entity runs in concatenated sentences: ``(first token, last token, type)``.
    A run starts at every B-x, and at every I-x whose previous token (in the
    same sentence) is not of class x."""
    n = tags.size
    cls = (tags + 1) // 2
    prev = np.zeros(n, np.int64)
    prev[1:] = cls[:-1]
    starts_sentence = np.zeros(n, bool)
    starts_sentence[sent_ptr[:-1][sent_ptr[:-1] < n]] = True
    prev[starts_sentence] = 0
    is_i = (tags > 0) & (tags % 2 == 0)
    opens = (tags % 2 == 1) | (is_i & (prev != cls))
    first = np.flatnonzero(opens)
    # a run continues over following I- tokens of the same type in the same sentence
    cont = is_i & ~opens
    run_id = np.cumsum(opens) - 1
    last = first.copy()
    idx = np.flatnonzero(cont)
    if idx.size:
        np.maximum.at(last, run_id[idx], idx)
    return first, last, cls[first] - 1


def _span_tokens(gs, ge, tok_start, tok_end):
    """First and last token overlapping each span [gs, ge) (first > last: none)."""
    first = np.searchsorted(tok_end, gs, side="right")
    last = np.searchsorted(tok_start, ge, side="left") - 1
    return first, last


def _non_overlapping(group, first, last) -> np.ndarray:
    """Mask of spans kept: within a group, ordered by (first, -last), a span
    that starts inside one before it is dropped."""
    if first.size == 0:
        return np.zeros(0, bool)
    order = np.lexsort((-last, first, group))
    g, f, la = group[order], first[order], last[order]
    new_group = np.ones(g.size, bool)
    new_group[1:] = g[1:] != g[:-1]
    # running max of `last` within each group, over the spans before
    big = (np.cumsum(new_group) * (int(la.max()) + 2)).astype(np.int64)
    run = np.maximum.accumulate(la + big) - big
    prev_max = np.empty_like(run)
    prev_max[0] = -1
    prev_max[1:] = run[:-1]
    prev_max[new_group] = -1
    keep_sorted = f > prev_max
    keep = np.empty(g.size, bool)
    keep[order] = keep_sorted
    return keep


def _paint(tags, first, last, types) -> None:
    """Write B-x at ``first`` and I-x through ``last`` (positions into ``tags``)."""
    tags[first] = 1 + 2 * types
    n_in = last - first
    if n_in.sum():
        pos = np.repeat(first - np.cumsum(n_in) + n_in, n_in) + np.arange(int(n_in.sum())) + 1
        tags[pos] = np.repeat(2 + 2 * types, n_in)


@dataclass
class FlatRows:
    """Validated rows: one entry per (item, worker) answer (the last one kept)
    and one per span."""

    items: list  # item ids in order of first appearance
    workers: list  # worker ids in order of first appearance
    row_item: np.ndarray  # (R,) item index of each answer row
    row_worker: np.ndarray  # (R,)
    span_row: np.ndarray  # (Z,) answer row of each span
    span_start: np.ndarray  # (Z,) character offsets
    span_end: np.ndarray
    span_type: np.ndarray  # (Z,) type index
    types: list  # type names, sorted


def _check_span(span, where: str, text_len):
    if not isinstance(span, list | tuple) or len(span) != 3:
        raise SpanInputError(f"{where}: a span must be [start, end, label], got {span!r}")
    s, e, lab = span
    if type(s) is not int or type(e) is not int:
        raise SpanInputError(f"{where}: span offsets must be integers, got {span!r}")
    if not isinstance(lab, str) or not lab:
        raise SpanInputError(f"{where}: a span's label must be a non-empty string, got {lab!r}")
    if s < 0 or s >= e:
        raise SpanInputError(f"{where}: span needs 0 <= start < end, got [{s}, {e})")
    if text_len is not None and e > text_len:
        raise SpanInputError(f"{where}: span [{s}, {e}) ends past the item's text ({text_len} characters)")


def validate_rows(rows, items=None, labels=None) -> FlatRows:
    """Check every row (keys, types, offsets, labels) and flatten; raises
    :class:`SpanInputError` naming the row. A repeated (item, worker) answer
    replaces the earlier one. The rows are checked one by one, their spans
    in bulk (and one by one only to name the first bad one)."""
    item_ix: dict = {}
    worker_ix: dict = {}
    latest: dict = {}
    row_no: dict = {}
    text_len: list = []
    for n, row in enumerate(rows):
        try:
            item, worker, spans = row["item"], row["worker"], row["spans"]
        except (KeyError, TypeError, IndexError):
            _bad_row(n, row)
        if type(row) is not dict or type(item) not in (str, int) or type(worker) not in (str, int) or type(spans) not in (list, tuple):
            _bad_row(n, row)
        i = item_ix.get(item)
        if i is None:
            i = item_ix[item] = len(item_ix)
            text_len.append(_text_len(n, item, items))
        w = worker_ix.get(worker)
        if w is None:
            w = worker_ix[worker] = len(worker_ix)
        latest[(i, w)] = spans
        row_no[(i, w)] = n
    return _flatten(item_ix, worker_ix, latest, row_no, text_len, labels)


def _bad_row(n: int, row) -> None:
    where = f"row {n}"
    if not isinstance(row, dict):
        raise SpanInputError(f"{where}: expected an object with item, worker, spans; got {type(row).__name__}")
    missing = [k for k in ("item", "worker", "spans") if k not in row]
    if missing:
        raise SpanInputError(f"{where}: missing key(s) {', '.join(missing)}")
    for name in ("item", "worker"):
        if type(row[name]) not in (str, int):
            raise SpanInputError(f"{where}: {name} must be a string or integer, got {row[name]!r}")
    raise SpanInputError(f"{where}: spans must be a list of [start, end, label], got {row['spans']!r}")


def _text_len(n: int, item, items):
    if items is None:
        return None
    if item not in items:
        raise SpanInputError(f"row {n}: unknown item {item!r} (not in items)")
    spec = items[item]
    text = spec.get("text") if isinstance(spec, dict) else None
    return len(text) if isinstance(text, str) else None


def _flatten(item_ix, worker_ix, latest, row_no, text_len, labels) -> FlatRows:
    keys = list(latest)
    n_sp = np.fromiter((len(latest[k]) for k in keys), np.int64, len(keys))
    flat = [sp for k in keys for sp in latest[k]]
    ok = set(map(type, flat)) <= {list, tuple} and set(map(len, flat)) <= {3}
    if ok:
        cols = [[sp[c] for sp in flat] for c in range(3)]
        ok = set(map(type, cols[0])) <= {int} and set(map(type, cols[1])) <= {int} and set(map(type, cols[2])) <= {str}
    if ok:
        starts, ends = np.array(cols[0], np.int64), np.array(cols[1], np.int64)
        ri = np.fromiter((k[0] for k in keys), np.int64, len(keys))
        span_row = np.repeat(np.arange(len(keys)), n_sp)
        limit = np.array([-1 if t is None else t for t in text_len], np.int64)[ri[span_row]]
        ok = not ((starts < 0) | (starts >= ends) | ((limit >= 0) & (ends > limit))).any() and "" not in cols[2]
    if not ok:  # name the first bad span
        for k in keys:
            for sp in latest[k]:
                _check_span(sp, f"row {row_no[k]}", text_len[k[0]])
    present = set(cols[2])
    if labels is not None and not present <= set(labels):
        extra = sorted(present - set(labels))
        raise SpanInputError(f"unknown label(s) {extra}; expected one of {sorted(set(labels))}")
    type_names = sorted(present | set(labels or ()))
    t_ix = {t: k for k, t in enumerate(type_names)}
    typ = np.array([t_ix[x] for x in cols[2]], np.int64)
    rw = np.fromiter((k[1] for k in keys), np.int64, len(keys))
    return FlatRows(list(item_ix), list(worker_ix), ri, rw, span_row, starts, ends, typ, type_names)


@dataclass
class Tokens:
    """Every item's tokens, concatenated: token t of item i sits at
    ``sent_ptr[i] + t``; ``base[i]`` shifts item i's character offsets into
    one global line (items never touch)."""

    sent_ptr: np.ndarray  # (I + 1,)
    start: np.ndarray  # (N,) character offsets within the item
    end: np.ndarray
    base: np.ndarray  # (I,)


def _item_tokens(flat: FlatRows, items) -> Tokens:
    """Tokens from ``items``: each item's ``tokens``, else whitespace tokens of its text."""
    lens, widths, chunks = [], [], []
    for it in flat.items:
        spec = items[it]
        if not isinstance(spec, dict):
            raise SpanInputError(f"item {it!r}: expected an object with text and/or tokens")
        text, toks = spec.get("text"), spec.get("tokens")
        if toks is None:
            if not isinstance(text, str):
                raise SpanInputError(f"item {it!r}: needs text or tokens")
            toks = [m.span() for m in _WORD.finditer(text)]
        elif not isinstance(toks, list | tuple):
            raise SpanInputError(f"item {it!r}: tokens must be [[start, end], ...]")
        lens.append(len(toks))
        widths.append(len(text) if isinstance(text, str) else -1)
        chunks.append(toks)
    lens_a = np.array(lens, np.int64)
    try:
        pairs = np.fromiter(itertools.chain.from_iterable(itertools.chain.from_iterable(chunks)), np.int64)
    except (TypeError, ValueError):
        raise SpanInputError("tokens must be [[start, end], ...] integer pairs") from None
    if pairs.size != 2 * lens_a.sum():
        raise SpanInputError("tokens must be [[start, end], ...] integer pairs")
    start, end = pairs[0::2], pairs[1::2]
    sent_ptr = np.concatenate([[0], np.cumsum(lens_a)]).astype(np.int64)
    owner = np.repeat(np.arange(lens_a.size), lens_a)
    width = np.array(widths, np.int64)
    last_end = np.zeros(lens_a.size, np.int64)
    np.maximum.at(last_end, owner, end)
    width = np.where(width < 0, last_end, width)
    same = owner[1:] == owner[:-1]
    bad = (start >= end) | (start < 0) | (end > width[owner])
    bad[1:] |= same & (start[1:] < end[:-1])
    if bad.any():
        raise SpanInputError(f"item {flat.items[owner[np.flatnonzero(bad)[0]]]!r}: tokens must be non-empty, "
                             "ordered, non-overlapping and inside the text")
    base = np.concatenate([[0], np.cumsum(width + 1)])[:-1].astype(np.int64)
    return Tokens(sent_ptr, start, end, base)


def build_tokens(flat: FlatRows, items=None) -> Tokens:
    """Token boundaries of every answered item: the item's ``tokens``, else
    whitespace tokens of its ``text``; without ``items``, the segments between
    consecutive span boundaries that the item's answers mark, from offset 0
    (so every answered span is a whole number of tokens, and the text before
    the first span is one token)."""
    n_items = len(flat.items)
    if items is not None:
        return _item_tokens(flat, items)
    item_of_span = flat.row_item[flat.span_row]
    width = np.zeros(n_items, np.int64)
    if flat.span_end.size:
        np.maximum.at(width, item_of_span, flat.span_end)
    base = np.concatenate([[0], np.cumsum(width + 1)])[:-1].astype(np.int64)
    bounds = np.unique(np.concatenate([flat.span_start + base[item_of_span], flat.span_end + base[item_of_span],
                                       base[item_of_span]]))  # offset 0 too: the text before the first span
    owner = np.searchsorted(base, bounds, side="right") - 1
    pair = owner[1:] == owner[:-1]
    g_start, g_end, tok_item = bounds[:-1][pair], bounds[1:][pair], owner[:-1][pair]
    lens = np.bincount(tok_item, minlength=n_items)
    return Tokens(np.concatenate([[0], np.cumsum(lens)]), g_start - base[tok_item], g_end - base[tok_item], base)


@dataclass
class TokenAnswers:
    """Each answer row's tags over its item's tokens, rows laid end to end:
    row r covers ``tags[row_ptr[r]:row_ptr[r + 1]]``."""

    lengths: np.ndarray  # (I,) tokens per item
    row_item: np.ndarray  # (R,)
    row_worker: np.ndarray  # (R,)
    tags: np.ndarray  # (sum of lengths[row_item],)
    n_types: int


def encode_answers(flat: FlatRows, toks: Tokens) -> TokenAnswers:
    """Every span to the tokens it overlaps, then to tags (overlapping spans
    of one answer: the first kept, see :func:`spans_to_bio`)."""
    it = flat.row_item[flat.span_row]
    g_tok_start = toks.start + np.repeat(toks.base, np.diff(toks.sent_ptr))
    g_tok_end = toks.end + np.repeat(toks.base, np.diff(toks.sent_ptr))
    first, last = _span_tokens(flat.span_start + toks.base[it], flat.span_end + toks.base[it], g_tok_start, g_tok_end)
    bad = (first > last) | (first < toks.sent_ptr[it]) | (last >= toks.sent_ptr[it + 1])
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise SpanInputError(f"item {flat.items[it[k]]!r}: span [{flat.span_start[k]}, {flat.span_end[k]}) "
                             "covers no token")
    lengths = np.diff(toks.sent_ptr)
    row_len = lengths[flat.row_item]
    row_ptr = np.concatenate([[0], np.cumsum(row_len)]).astype(np.int64)
    tags = np.zeros(int(row_ptr[-1]), np.int64)
    keep = _non_overlapping(flat.span_row, first, last)
    local = row_ptr[flat.span_row] - toks.sent_ptr[it]
    _paint(tags, (first + local)[keep], (last + local)[keep], flat.span_type[keep])
    return TokenAnswers(lengths, flat.row_item, flat.row_worker, tags, len(flat.types))
