"""Consensus for text spans (named entities and the like): one set of spans
per item from several workers' span answers, with a confidence per span and
per item, and each worker's skill per entity type.

    from assay.quality.spans import aggregate_spans
    out = aggregate_spans(rows, items=items, method="auto")
    # [{"item": ..., "spans": [[start, end, label, confidence], ...], "confidence": 0.93}, ...]

Answers become token-level BIO tags (``assay.quality._spans_bio``); the
estimators work on those arrays (``TokenMajorityVote``, ``TokenDawidSkene``,
``SequenceCrowd``; see ``docs/spans.md``).
"""

from __future__ import annotations

import numpy as np

from assay.quality._spans_bio import (
    FlatRows, SpanInputError, TokenAnswers, Tokens, bio_to_spans, build_tokens, encode_answers, spans_to_bio,
    tag_names, validate_rows, whitespace_tokens,
)
from assay.quality._spans_models import TokenDawidSkene, TokenMajorityVote, _Data, _valid_obs
from assay.quality._spans_seq import SequenceCrowd

#: method name -> estimator class ("auto" picks one of them, see :func:`choose_method`)
SPAN_METHODS = {"mv": TokenMajorityVote, "ds": TokenDawidSkene, "seq": SequenceCrowd}

#: auto: the share of multiply-answered items that lend one answer to the held-out check
HELDOUT_SHARE = 0.2
#: auto: fewer held-out answers than this and the check is not trusted (majority vote is kept)
MIN_HELDOUT = 30
#: auto: the check runs on at most this many items (a random sample), so its cost stays bounded
CHECK_ITEMS = 20_000


def encode_span_rows(rows, items=None, *, labels=None) -> tuple[FlatRows, Tokens, TokenAnswers]:
    """Validate ``rows`` and turn them into token-level tag arrays.

    Returns ``(flat, tokens, answers)``: the validated rows (item, worker and
    type names in ``flat.items``, ``flat.workers``, ``flat.types``), every
    item's token boundaries, and the answers as arrays ready for an
    estimator's ``fit(answers.lengths, answers.row_item, answers.row_worker,
    answers.tags, n_types=answers.n_types)``."""
    flat = validate_rows(rows, items, labels)
    toks = build_tokens(flat, items)
    return flat, toks, encode_answers(flat, toks)


def _fit(method: str, ta: TokenAnswers, keep=None, n_workers=None):
    model = SPAN_METHODS[method]()
    if keep is None:
        return model.fit(ta.lengths, ta.row_item, ta.row_worker, ta.tags, n_types=ta.n_types, n_workers=n_workers)
    row_len = ta.lengths[ta.row_item]
    tags = ta.tags[np.repeat(keep, row_len)]
    return model.fit(ta.lengths, ta.row_item[keep], ta.row_worker[keep], tags, n_types=ta.n_types,
                     n_workers=n_workers)


def _sample_items(ta: TokenAnswers, n_max: int, rng) -> TokenAnswers:
    """The answers of at most ``n_max`` random answered items (renumbered)."""
    answered = np.flatnonzero(np.bincount(ta.row_item, minlength=ta.lengths.size))
    if answered.size <= n_max and answered.size == ta.lengths.size:
        return ta
    pick = np.sort(rng.choice(answered, size=min(n_max, answered.size), replace=False))
    new_ix = np.full(ta.lengths.size, -1)
    new_ix[pick] = np.arange(pick.size)
    keep = new_ix[ta.row_item] >= 0
    tags = ta.tags[np.repeat(keep, ta.lengths[ta.row_item])]
    return TokenAnswers(ta.lengths[pick], new_ix[ta.row_item[keep]], ta.row_worker[keep], tags, ta.n_types)


def _holdout(ta: TokenAnswers, seed: int) -> np.ndarray:
    """Mask of the rows held out: one random answer from a random
    ``HELDOUT_SHARE`` of the items with three or more answers."""
    rng = np.random.default_rng(seed)
    per_item = np.bincount(ta.row_item, minlength=ta.lengths.size)
    eligible = np.flatnonzero((per_item >= 3) & (ta.lengths > 0))
    chosen = eligible[rng.random(eligible.size) < HELDOUT_SHARE]
    out = np.zeros(ta.row_item.size, bool)
    if chosen.size == 0:
        return out
    order = rng.permutation(ta.row_item.size)  # a random row of each chosen item
    first = {}
    for r in order[np.isin(ta.row_item[order], chosen)]:
        first.setdefault(int(ta.row_item[r]), r)
    out[list(first.values())] = True
    return out


def _heldout_loglik(model, ta: TokenAnswers, held: np.ndarray, n_workers: int) -> float:
    """Mean log probability per held-out token answer: the model's token
    posterior (fitted without those answers) times the worker's confusion
    given the worker's previous class (a model without that condition: its
    confusion renormalised over the tags the worker could give there)."""
    row_len = ta.lengths[ta.row_item]
    d = _Data(ta.lengths, ta.row_item[held], ta.row_worker[held], ta.tags[np.repeat(held, row_len)],
              ta.n_types, n_workers, prev_aware=True)
    conf = getattr(model, "confusion_", None)  # (W, P, K_obs, K_true)
    if conf is None:
        conf = _pooled_confusion(model.proba_, ta, ~held, n_workers)
    if conf.shape[1] == 1:  # a model blind to the previous tag: its confusion over the tags possible there
        ok = _valid_obs(ta.n_types)[None, :, :, None]
        conf = np.where(ok, conf, 0.0)
        conf = conf / conf.sum(axis=2, keepdims=True)
    worker = np.repeat(d.row_worker, d.lengths[d.row_item])
    like = (model.proba_[d.tok] * conf[worker, d.prev, d.tags]).sum(axis=1)
    return float(np.log(np.maximum(like, 1e-300)).mean())


def _pooled_confusion(proba, ta, keep, n_workers) -> np.ndarray:
    """Majority vote read as a generative model: every worker alike, one
    pooled confusion P(tag | true tag, previous class), learned against the
    vote shares (add-one smoothed over the possible tags)."""
    row_len = ta.lengths[ta.row_item]
    d = _Data(ta.lengths, ta.row_item[keep], ta.row_worker[keep], ta.tags[np.repeat(keep, row_len)],
              ta.n_types, n_workers, prev_aware=True)
    counts = np.asarray(d.xt @ proba).reshape(d.n_workers, d.n_prev, d.k, d.k).sum(axis=0)
    ok = _valid_obs(ta.n_types)[:, :, None]
    alpha = np.where(ok, counts + 1.0, 0.0)
    conf = alpha / alpha.sum(axis=1, keepdims=True)
    return np.broadcast_to(conf[None], (n_workers,) + conf.shape)


def choose_method(ta: TokenAnswers, *, seed: int = 0, candidates=("mv", "ds", "seq")) -> tuple[str, dict]:
    """The "auto" rule: on a random sample of at most ``CHECK_ITEMS`` items,
    hold out one answer from a random fifth of the items with three or more
    answers, fit majority vote, token Dawid-Skene and the sequence model on
    the rest, and keep the method that predicts the held-out answers best
    (mean log probability per token answer) among ``candidates``. Majority
    vote is kept on ties and when fewer than ``MIN_HELDOUT`` answers could be
    held out. Returns ``(method, {method: score})``."""
    ta = _sample_items(ta, CHECK_ITEMS, np.random.default_rng(seed))
    held = _holdout(ta, seed)
    if held.sum() < MIN_HELDOUT:
        return "mv", {}
    n_workers = int(ta.row_worker.max(initial=-1) + 1)
    scores = {}
    for name in dict.fromkeys(("mv",) + tuple(candidates)):
        model = _fit(name, ta, ~held, n_workers)
        scores[name] = _heldout_loglik(model, ta, held, n_workers)
    best = max(scores, key=lambda m: (scores[m], m == "mv"))
    return best, scores


def aggregate_spans(rows, items=None, method: str = "auto", *, labels=None, seed: int = 0) -> list[dict]:
    """Consensus spans per item.

    ``rows``: iterable of ``{"item", "worker", "spans": [[start, end, label], ...]}``
    (character offsets, end exclusive; an empty list = the worker marked
    nothing). A repeated (item, worker) answer replaces the earlier one;
    overlapping spans within one answer keep the one that starts first.
    ``items``: optional ``{item: {"text", "tokens": [[start, end], ...]}}``;
    an item without ``tokens`` is split on whitespace. Without ``items`` the
    tokens are the segments between consecutive boundaries of all spans
    answered for the item (so no text is needed). ``labels``: optional list
    of the allowed labels. ``method``: "mv", "ds", "seq" or "auto" (see
    :func:`choose_method`; without ``items`` it chooses between "mv" and "ds").

    Returns one dict per answered item, in order of first appearance:
    ``{"item", "spans": [[start, end, label, confidence], ...], "confidence"}``,
    with each span's posterior probability (see docs/spans.md) and the
    item's probability that all its spans are right. Raises
    :class:`SpanInputError` (a ``ValueError``) on bad rows."""
    if method not in SPAN_METHODS and method != "auto":
        raise SpanInputError(f"unknown method {method!r}; choose one of: auto, {', '.join(SPAN_METHODS)}")
    flat, toks, ta = encode_span_rows(rows, items, labels=labels)
    if ta.tags.size == 0:
        return [{"item": it, "spans": [], "confidence": 1.0} for it in flat.items]
    if method == "auto":
        # without the items' tokens, the tokens are cut where the answers' spans
        # begin and end: a sequence prior learned over them is biased (docs/spans.md)
        method, _ = choose_method(ta, seed=seed, candidates=("mv", "ds") if items is None else ("mv", "ds", "seq"))
    model = _fit(method, ta)
    return _result(model, flat, toks)


def _result(model, flat: FlatRows, toks: Tokens) -> list[dict]:
    owner = np.searchsorted(toks.sent_ptr, model.span_first_, side="right") - 1
    cut = np.searchsorted(owner, np.arange(len(flat.items) + 1)).tolist()  # spans come in item order
    names = np.array(flat.types, dtype=object)[model.span_type_].tolist()
    spans = [list(x) for x in zip(toks.start[model.span_first_].tolist(), toks.end[model.span_last_].tolist(),
                                  names, model.span_confidence_.tolist())]
    return [{"item": it, "spans": spans[cut[i]:cut[i + 1]], "confidence": c}
            for i, (it, c) in enumerate(zip(flat.items, model.item_confidence_.tolist()))]


def worker_skills(model, flat: FlatRows) -> list[dict]:
    """Each worker's token-level precision and recall per entity type, from a
    fitted estimator: ``[{"worker", "type", "precision", "recall", "tokens"}]``
    (NaN where the worker never marked / never saw that type)."""
    out = []
    for w, name in enumerate(flat.workers):
        for x, typ in enumerate(flat.types):
            out.append({"worker": name, "type": typ, "precision": float(model.worker_precision_[w, x]),
                        "recall": float(model.worker_recall_[w, x]), "tokens": int(model.worker_tokens_[w])})
    return out


__all__ = [
    "SPAN_METHODS", "SequenceCrowd", "SpanInputError", "TokenDawidSkene", "TokenMajorityVote", "aggregate_spans",
    "bio_to_spans", "choose_method", "encode_span_rows", "spans_to_bio", "tag_names", "whitespace_tokens",
    "worker_skills",
]
