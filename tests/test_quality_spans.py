"""Consensus for text spans: BIO conversion, the estimators on a synthetic
crowd, the auto rule, bad input, and the real CoNLL crowd set (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SHARED_DATA

from assay.quality._spans_synth import synthetic_span_crowd
from assay.quality.spans import (
    MIN_HELDOUT, SequenceCrowd, SpanInputError, TokenDawidSkene, TokenMajorityVote, aggregate_spans, bio_to_spans,
    choose_method, encode_span_rows, spans_to_bio, tag_names, whitespace_tokens, worker_skills,
)

SPANS_VAL = SHARED_DATA / "spans" / "conll_crowd_val"


def exact_f1(out: list[dict], truth: dict) -> tuple[float, float, float]:
    pred = {(o["item"], s, e, lab) for o in out for s, e, lab, _ in o["spans"]}
    gold = {(it, s, e, lab) for it, sp in truth.items() for s, e, lab in sp}
    tp = len(pred & gold)
    p, r = tp / max(len(pred), 1), tp / max(len(gold), 1)
    return (2 * p * r / (p + r) if p + r else 0.0), p, r


# --- BIO conversion --------------------------------------------------------

def test_bio_round_trip_on_random_sentences():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        words = ["x" * int(rng.integers(1, 6)) for _ in range(n)]
        text = " ".join(words)
        ts, te = whitespace_tokens(text)
        assert ts.size == n
        # random non-overlapping token spans
        spans, t = [], 0
        while t < n:
            if rng.random() < 0.3:
                ln = int(min(rng.integers(1, 4), n - t))
                spans.append((int(ts[t]), int(te[t + ln - 1]), int(rng.integers(0, 3))))
                t += ln
            else:
                t += 1
        s, e, x = (np.array(v, np.int64) for v in zip(*spans)) if spans else (np.zeros(0, np.int64),) * 3
        tags = spans_to_bio(s, e, x, ts, te)
        back = bio_to_spans(tags, ts, te)
        assert [tuple(map(int, z)) for z in zip(*back)] == spans


def test_bio_rules_overlap_partial_tokens_and_fixup():
    ts, te = whitespace_tokens("New York City is big")
    # a span inside a token covers it; the later of two overlapping spans is dropped
    tags = spans_to_bio([0, 4], [6, 13], [1, 0], ts, te)
    assert tag_names(["LOC", "ORG"])[1:5] == ["B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    assert tags.tolist() == [3, 4, 0, 0, 0]  # "New York" as ORG, "York City" dropped
    # I- after O (or after another type) opens a span
    s, e, x = bio_to_spans(np.array([0, 2, 2, 4, 0]), ts, te)
    assert list(zip(s.tolist(), e.tolist(), x.tolist())) == [(4, 13, 0), (14, 16, 1)]
    with pytest.raises(SpanInputError, match="covers no token"):
        spans_to_bio([3], [4], [0], ts, te)  # the space between "New" and "York"


def test_without_items_tokens_come_from_the_span_boundaries():
    rows = [{"item": "a", "worker": "u", "spans": [[0, 8, "LOC"]]},
            {"item": "a", "worker": "v", "spans": [[4, 8, "LOC"]]},
            {"item": "a", "worker": "w", "spans": [[0, 8, "LOC"], [12, 20, "PER"]]},
            {"item": "b", "worker": "u", "spans": []}]
    flat, toks, ta = encode_span_rows(rows)
    assert toks.start[: toks.sent_ptr[1]].tolist() == [0, 4, 8, 12]
    assert toks.end[: toks.sent_ptr[1]].tolist() == [4, 8, 12, 20]
    assert ta.lengths.tolist() == [4, 0]
    for method in ("mv", "ds", "seq", "auto"):
        out = aggregate_spans(rows, method=method)
        assert [o["item"] for o in out] == ["a", "b"]
        assert [s[:3] for s in out[0]["spans"]] == [[0, 8, "LOC"]], method
        assert out[1] == {"item": "b", "spans": [], "confidence": 1.0}


def test_items_without_tokens_are_split_on_whitespace_and_repeats_replace():
    items = {"s": {"text": "Angela Merkel met Macron"}}
    rows = [{"item": "s", "worker": "u", "spans": [[18, 24, "PER"]]},
            {"item": "s", "worker": "u", "spans": [[0, 13, "PER"]]},  # replaces the row above
            {"item": "s", "worker": "v", "spans": [[0, 13, "PER"]]}]
    out = aggregate_spans(rows, items, method="mv")
    assert [s[:3] for s in out[0]["spans"]] == [[0, 13, "PER"]]
    assert 0.0 < out[0]["spans"][0][3] <= 1.0


# --- estimators on a synthetic crowd --------------------------------------

@pytest.fixture(scope="module")
def crowd():
    return synthetic_span_crowd(600, 30, 4, seed=11, return_workers=True)


def test_estimators_recover_a_synthetic_crowd_better_than_majority_vote(crowd):
    items, rows, truth, _ = crowd
    f1 = {m: exact_f1(aggregate_spans(rows, items, m), truth)[0] for m in ("mv", "ds", "seq", "auto")}
    print(f1)
    assert f1["ds"] > f1["mv"] + 0.02
    assert f1["seq"] > f1["mv"] + 0.02
    assert f1["auto"] >= f1["mv"]


def test_fitted_worker_skills_follow_the_true_ones(crowd):
    items, rows, _, workers = crowd
    flat, toks, ta = encode_span_rows(rows, items)
    model = SequenceCrowd().fit(ta.lengths, ta.row_item, ta.row_worker, ta.tags, n_types=ta.n_types)
    assert model.worker_recall_.shape == (len(flat.workers), len(flat.types))
    rec = np.nanmean(model.worker_recall_, axis=1)
    prec = np.nanmean(model.worker_precision_, axis=1)
    true_rec = np.array([workers[w][0] for w in flat.workers])
    spam = np.array([workers[w][4] for w in flat.workers])
    good = ~spam
    assert np.corrcoef(rec[good], true_rec[good])[0, 1] > 0.7
    if spam.any():
        assert prec[spam].max() < np.median(prec[good])
    table = worker_skills(model, flat)
    assert len(table) == len(flat.workers) * len(flat.types)
    assert {"worker", "type", "precision", "recall", "tokens"} <= set(table[0])


def test_confidence_separates_right_from_wrong_spans(crowd):
    items, rows, truth, _ = crowd
    gold = {(it, s, e, lab) for it, sp in truth.items() for s, e, lab in sp}
    for method in ("mv", "ds", "seq"):
        out = aggregate_spans(rows, items, method)
        conf = [(c, (o["item"], s, e, lab) in gold) for o in out for s, e, lab, c in o["spans"]]
        c = np.array([x[0] for x in conf])
        ok = np.array([x[1] for x in conf])
        assert ((c >= 0) & (c <= 1)).all()
        assert c[ok].mean() > c[~ok].mean() + 0.1, method
        item_conf = np.array([o["confidence"] for o in out])
        all_right = np.array([{(s, e, lab) for s, e, lab, _ in o["spans"]}
                              == {tuple(x) for x in truth[o["item"]]} for o in out])
        assert item_conf[all_right].mean() > item_conf[~all_right].mean(), method


def test_item_confidence_of_the_sequence_model_is_the_path_probability():
    """One item, two tokens: the decoded path's probability from brute force
    over all 9 tag pairs equals the model's item confidence."""
    items = {"s": {"text": "Paris Hilton"}}
    rows = [{"item": "s", "worker": w, "spans": sp} for w, sp in
            [("a", [[0, 12, "PER"]]), ("b", [[0, 5, "LOC"]]), ("c", [[0, 12, "PER"]]), ("d", [])]]
    flat, toks, ta = encode_span_rows(rows, items)
    m = SequenceCrowd().fit(ta.lengths, ta.row_item, ta.row_worker, ta.tags, n_types=ta.n_types)
    log_e = np.asarray(m._data.x @ m.log_confusion_.reshape(m._data.n_cols, m._data.k))  # rows
    k = log_e.shape[1]
    row = m._data.chain.row_of
    score = (m.log_start_[:, None] + log_e[row[0]][:, None] + m.log_transition_ + log_e[row[1]][None, :])
    p = np.exp(score - np.logaddexp.reduce(score.ravel()))
    t0, t1 = m.tags_
    assert m.item_confidence_[0] == pytest.approx(p[t0, t1], rel=1e-6)
    assert p.argmax() == t0 * k + t1
    # the span's confidence: its exact tags, marginalised over nothing else (2 tokens)
    if m.span_first_.size == 1 and m.span_last_[0] == 1:
        x = m.span_type_[0]
        assert m.span_confidence_[0] == pytest.approx(p[1 + 2 * x, 2 + 2 * x], rel=1e-6)


def test_auto_keeps_majority_vote_without_enough_held_out_answers():
    items, rows, truth = synthetic_span_crowd(40, 10, 3, seed=2)
    flat, toks, ta = encode_span_rows(rows, items)
    method, scores = choose_method(ta)
    assert method == "mv" and scores == {}
    assert aggregate_spans(rows, items, "auto") == aggregate_spans(rows, items, "mv")
    items, rows, truth = synthetic_span_crowd(1000, 30, 4, seed=5)
    method, scores = choose_method(encode_span_rows(rows, items)[2])
    assert set(scores) == {"mv", "ds", "seq"} and method == max(scores, key=scores.get)
    assert MIN_HELDOUT > 0


def test_estimators_take_arrays_directly():
    # two sentences of 3 tokens, three workers; tags O=0 B-0=1 I-0=2
    lengths = np.array([3, 3])
    row_item = np.array([0, 0, 0, 1, 1, 1])
    row_worker = np.array([0, 1, 2, 0, 1, 2])
    tags = np.array([1, 2, 0, 1, 2, 0, 0, 0, 0,
                     0, 1, 0, 0, 1, 0, 0, 2, 0])  # worker 2's lone I- is read as B-
    for cls in (TokenMajorityVote, TokenDawidSkene, SequenceCrowd):
        m = cls().fit(lengths, row_item, row_worker, tags, n_types=1)
        assert m.tags_.tolist() == [1, 2, 0, 0, 1, 0], cls.__name__
        assert m.proba_.shape == (6, 3) and np.allclose(m.proba_.sum(axis=1), 1)
    vb = SequenceCrowd(variational=True).fit(lengths, row_item, row_worker, tags, n_types=1)
    assert vb.tags_.tolist() == [1, 2, 0, 0, 1, 0] and np.allclose(vb.proba_.sum(axis=1), 1)
    with pytest.raises(SpanInputError, match="one tag per token"):
        TokenDawidSkene().fit(lengths, row_item, row_worker, tags[:-1], n_types=1)
    with pytest.raises(ValueError, match="n_workers"):
        SequenceCrowd().fit(lengths, row_item, row_worker, tags, n_types=1, n_workers=2)
    with pytest.raises(ValueError, match="codes in"):
        TokenMajorityVote().fit(lengths, row_item, row_worker, tags + 3, n_types=1)


# --- bad input ---------------------------------------------------------------

@pytest.mark.parametrize("rows, items, match", [
    ([{"item": "a", "spans": []}], None, "missing key"),
    ([["a", "u", []]], None, "expected an object"),
    ([{"item": "a", "worker": "u", "spans": [[5, 5, "X"]]}], None, "start < end"),
    ([{"item": "a", "worker": "u", "spans": [[-1, 2, "X"]]}], None, "start < end"),
    ([{"item": "a", "worker": "u", "spans": [[0, 9, "X"]]}], {"a": {"text": "short"}}, "ends past"),
    ([{"item": "a", "worker": "u", "spans": [[0.0, 2, "X"]]}], None, "integers"),
    ([{"item": "a", "worker": "u", "spans": [[True, 2, "X"]]}], None, "integers"),
    ([{"item": "a", "worker": "u", "spans": [[0, 2, 7]]}], None, "label"),
    ([{"item": "a", "worker": "u", "spans": [[0, 2]]}], None, r"\[start, end, label\]"),
    ([{"item": "a", "worker": "u", "spans": "0-2"}], None, "spans must be a list"),
    ([{"item": ["a"], "worker": "u", "spans": []}], None, "item must be"),
    ([{"item": "b", "worker": "u", "spans": []}], {"a": {"text": "x"}}, "unknown item"),
    ([{"item": "a", "worker": "u", "spans": [[1, 2, "X"]]}], {"a": {"text": "a b"}}, "covers no token"),
    ([{"item": "a", "worker": "u", "spans": []}], {"a": {"text": "a b", "tokens": [[0, 1], [0, 3]]}},
     "non-overlapping"),
])
def test_bad_rows_raise_value_errors(rows, items, match):
    with pytest.raises(ValueError, match=match):
        aggregate_spans(rows, items, method="mv")


def test_unknown_label_and_method():
    rows = [{"item": "a", "worker": "u", "spans": [[0, 2, "GPE"]]}]
    with pytest.raises(SpanInputError, match="unknown label"):
        aggregate_spans(rows, labels=["PER", "LOC"])
    with pytest.raises(ValueError, match="unknown method"):
        aggregate_spans(rows, method="bsc")


# --- the real set --------------------------------------------------------------

def _load(name):
    with open(SPANS_VAL / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.mark.slow
def test_real_conll_crowd_every_method_at_least_token_majority_vote():
    if not SPANS_VAL.is_dir():
        pytest.skip(f"real span data not found at {SPANS_VAL}")
    items = {r["item"]: r for r in _load("items.jsonl")}
    rows = _load("answers.jsonl")
    truth = {r["item"]: r["spans"] for r in _load("truth.jsonl")}
    res = {m: exact_f1(aggregate_spans(rows, items, m), truth) for m in ("mv", "ds", "seq", "auto")}
    print({m: tuple(round(x, 4) for x in v) for m, v in res.items()})
    assert res["mv"][0] == pytest.approx(0.690, abs=0.002)  # the data README's token majority vote
    for m in ("ds", "seq", "auto"):
        assert res[m][0] >= res["mv"][0], m
    # without the items (what `assay aggregate ANSWERS.jsonl` does): tokens cut at the span boundaries
    bare = {m: exact_f1(aggregate_spans(rows, None, m), truth) for m in ("mv", "auto")}
    print("without items", {m: tuple(round(x, 4) for x in v) for m, v in bare.items()})
    assert bare["auto"][0] >= bare["mv"][0]


def test_declared_labels_keep_their_names_when_unused():
    rows = [{"item": "a", "worker": u, "spans": [[0, 3, "PER"]]} for u in ("u", "v")]
    out = aggregate_spans(rows, {"a": {"text": "Bob ran"}}, method="seq", labels=["LOC", "ORG", "PER"])
    assert [s[:3] for s in out[0]["spans"]] == [[0, 3, "PER"]]


def test_expected_f1_pick_takes_sure_spans_then_the_gainful_uncertain_ones():
    from assay.quality._spans_seq import _expected_f1_pick

    first, last, typ = np.array([0, 1, 4, 6, 8]), np.array([1, 2, 4, 6, 8]), np.array([0, 0, 1, 0, 0])
    p = np.array([0.9, 0.3, 0.45, 0.04, 0.2])
    # 0.9 is sure; [1, 2] overlaps it; 0.45 raises 2*sum/(n + 2) from 0.60 to 0.675; 0.2 would lower it
    f, la, t, q = _expected_f1_pick(first, last, typ, p, expected_true=2.0, n_tokens=10)
    assert f.tolist() == [0, 4] and la.tolist() == [1, 4] and t.tolist() == [0, 1] and q.tolist() == [0.9, 0.45]
    f, *_ = _expected_f1_pick(first, last, typ, p, expected_true=0.5, n_tokens=10)
    assert f.tolist() == [0]  # few true spans expected: the uncertain one costs more precision than it adds


def test_sequence_decodings_agree_mostly_and_never_overlap(crowd):
    items, rows, truth, _ = crowd
    flat, toks, ta = encode_span_rows(rows, items)
    fits = {dec: SequenceCrowd(decode=dec).fit(ta.lengths, ta.row_item, ta.row_worker, ta.tags, n_types=ta.n_types)
            for dec in ("expected_f1", "viterbi")}
    for m in fits.values():
        assert (m.span_first_[1:] > m.span_last_[:-1]).all()  # sorted, non-overlapping
    spans = {dec: set(zip(m.span_first_.tolist(), m.span_last_.tolist(), m.span_type_.tolist()))
             for dec, m in fits.items()}
    assert len(spans["expected_f1"] ^ spans["viterbi"]) < 0.1 * len(spans["viterbi"])


def test_no_rows_and_nothing_marked():
    assert aggregate_spans([]) == []
    assert aggregate_spans(iter([]), {}) == []
    rows = ({"item": i, "worker": w, "spans": []} for i in (1, 2) for w in (7, 8, 9))  # a generator, int ids
    for method in ("mv", "ds", "seq", "auto"):
        out = aggregate_spans(list(rows) if method == "mv" else
                              [{"item": i, "worker": w, "spans": []} for i in (1, 2) for w in (7, 8, 9)],
                              {1: {"text": "a b c"}, 2: {"text": "x y"}}, method)
        assert out == [{"item": 1, "spans": [], "confidence": 1.0}, {"item": 2, "spans": [], "confidence": 1.0}]
