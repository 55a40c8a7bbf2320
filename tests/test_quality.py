"""Truth inference (``assay.quality``): hand-computed golden outputs, edge
cases, properties every aggregator must keep, and one real crowd set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.errors import InvalidInput
from assay.quality import (
    GLAD, MACE, METHODS, Auto, DawidSkene, MajorityVote, OneCoinDawidSkene, Wawa, aggregate,
    make_aggregator,
)
from factories import idiosyncratic_crowd, liar_crowd

ALL = sorted(METHODS)

# A small crowd used by several golden tests:
#   item 0: w0=0 w1=0 w2=1    item 1: w0=1 w1=1    item 2: w0=0 w2=1 (a tie)
# label totals: class 0 three times, class 1 four times.
SMALL = (np.array([0, 0, 0, 1, 1, 2, 2]), np.array([0, 1, 2, 0, 1, 0, 2]), np.array([0, 0, 1, 1, 1, 0, 1]))


_crowd = liar_crowd


# ------------------------------------------------------------ golden outputs


def test_majority_vote_by_hand():
    m = MajorityVote().fit(*SMALL)
    np.testing.assert_allclose(m.proba_, [[2 / 3, 1 / 3], [0, 1], [0.5, 0.5]])
    # the tie on item 2 goes to the class more common overall (class 1)
    assert m.labels_.tolist() == [0, 1, 1]
    assert m.history_.size == 0 and m.n_iter_ == 0


def test_wawa_by_hand():
    # majority labels 0, 1, 1 -> agreement: w0 2/3, w1 1, w2 1/2
    m = Wawa().fit(*SMALL)
    np.testing.assert_allclose(m.skills_, [2 / 3, 1.0, 0.5])
    np.testing.assert_allclose(m.proba_, [[10 / 13, 3 / 13], [0, 1], [4 / 7, 3 / 7]])
    assert m.labels_.tolist() == [0, 1, 0]


# One worker, items 0-3 gold (0, 1, 0, 1), item 4 unknown. The worker said
# 0, 0, 0, 1 on the gold items and 1 on item 4. One EM round by hand:
#   counts (true row, given column) incl. item 4's initial posterior [0, 1]:
#     true 0: [2, 0]   true 1: [1, 2]
#   + pseudo-counts [[2, 1], [1, 2]]  ->  rows [4, 1]/5 and [2, 4]/6
#   class prior (posterior sums + 1): [3, 4] / 7
#   item 4: [3/7 * 1/5, 4/7 * 4/6] = [3/35, 16/21]  ->  [9/49, 40/49]
GOLD_FIXTURE = dict(items=[0, 1, 2, 3, 4], workers=[0] * 5, labels=[0, 0, 0, 1, 1], gold=[0, 1, 0, 1, -1])


def test_dawid_skene_one_em_round_by_hand():
    f = GOLD_FIXTURE
    m = DawidSkene(max_iter=1).fit(f["items"], f["workers"], f["labels"], gold=np.array(f["gold"]))
    np.testing.assert_allclose(m.proba_[4], [9 / 49, 40 / 49])
    np.testing.assert_allclose(m.confusion_[0], [[0.8, 0.2], [1 / 3, 2 / 3]])
    np.testing.assert_allclose(m.prior_, [3 / 7, 4 / 7])
    np.testing.assert_allclose(m.proba_[:4], np.eye(2)[[0, 1, 0, 1]])  # gold stays clamped


def test_one_coin_one_em_round_by_hand():
    # right on 4 of 5 (item 4 counts as right under its initial posterior):
    # p = (4 + 2) / (5 + 3) = 0.75; uniform class prior -> item 4 = [0.25, 0.75]
    f = GOLD_FIXTURE
    m = OneCoinDawidSkene(max_iter=1).fit(f["items"], f["workers"], f["labels"], gold=np.array(f["gold"]))
    np.testing.assert_allclose(m.skills_, [0.75])
    np.testing.assert_allclose(m.proba_[4], [0.25, 0.75])


@pytest.mark.parametrize("method", ["ds", "auto", "one-coin"])  # MACE cannot: a liar is "spam" to it
def test_consistent_liar_is_read_backwards(method):
    items, workers, labels, truth = _crowd()
    m = make_aggregator(method).fit(items, workers, labels)
    # items 0..49 have only the liar's answer: majority vote copies it, a
    # confusion model reads it backwards and gets them right
    assert (MajorityVote().fit(items, workers, labels).labels_[:50] != truth[:50]).all()
    assert (m.labels_[:50] == truth[:50]).mean() > 0.95
    assert m.confusion_[2, 0, 1] > 0.9 and m.confusion_[2, 1, 0] > 0.9
    assert m.accuracy_[2] < 0.1 and m.accuracy_[0] > 0.8


def test_glad_gives_the_liar_negative_ability():
    items, workers, labels, truth = _crowd()
    m = GLAD().fit(items, workers, labels)
    assert m.alpha_[2] < 0 < m.alpha_[0]
    assert (m.labels_[50:] == truth[50:]).mean() > 0.95


def test_mace_finds_the_spammer():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 200)
    items = np.repeat(np.arange(200), 4)
    workers = np.tile(np.arange(4), 200)
    labels = np.where(workers == 3, 0, truth[items])  # worker 3 always says 0
    m = MACE().fit(items, workers, labels)
    assert m.competence_[3] < 0.2 and m.competence_[:3].min() > 0.9
    assert m.strategy_[3, 0] > 0.9
    assert (m.labels_ == truth).all()


def test_auto_reports_its_choice():
    items, workers, labels, _ = _crowd()
    m = Auto().fit(items, workers, labels)
    assert set(m.scores_) == {"mv", "mace", "ds", "minimax", "ebcc", "habits"}
    assert m.method_ == "ds" and m.scores_["ds"] > m.scores_["habits"] > m.scores_["mv"]
    assert m.scores_["mace"] < m.scores_["ds"]  # MACE cannot read a consistent liar backwards
    assert m.scores_["minimax"] < m.scores_["ds"]  # no item effects here: the richer model does not win
    assert m.model_.labels_ is m.labels_
    np.testing.assert_array_equal(m.proba_, DawidSkene().fit(items, workers, labels).proba_)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auto_keeps_majority_vote_when_workers_are_alike(seed):
    # one answer per worker, all of the same skill: nothing per-worker to
    # learn, so Dawid-Skene must not earn its place
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, 400)
    items = np.repeat(np.arange(400), 5)
    workers = np.arange(items.size)
    labels = np.where(rng.random(items.size) < 0.6, truth[items], rng.integers(0, 3, items.size))
    auto = Auto().fit(items, workers, labels)
    # MACE may tie with the pooled model: with one answer per worker its
    # per-worker parameters stay at their prior, and its labels are the vote's
    assert auto.method_ in ("mv", "mace"), auto.scores_
    np.testing.assert_array_equal(auto.labels_, MajorityVote().fit(items, workers, labels).labels_)


def _noisy_sparse_crowd(seed=0, n_items=500, n_workers=2000, k=3, per_item=7):
    """Workers with their own confusion matrices, accuracy ~ Beta(2, 2), 20 %
    spammers answering from a fixed distribution; ~1.75 answers per worker."""
    return idiosyncratic_crowd(seed, n_items=n_items, n_workers=n_workers, k=k, per_item=per_item)


def test_auto_refuses_a_collapsed_dawid_skene():
    # here the hierarchical DS explains every answer as worker habit, one
    # class for nearly all items; it predicts held-out answers no better than
    # the habits alone, so auto must not take it (nor lose to majority vote)
    items, workers, labels, truth = _noisy_sparse_crowd()
    mv = (MajorityVote().fit(items, workers, labels).labels_ == truth).mean()
    collapsed = DawidSkene(prior="learned").fit(items, workers, labels)
    assert (collapsed.labels_ == truth).mean() < mv - 0.05  # the trap is real
    auto = Auto().fit(items, workers, labels)
    assert (auto.labels_ == truth).mean() >= mv - 0.01, auto.scores_


# ------------------------------------------------------------ edge cases


@pytest.mark.parametrize("method", ALL)
def test_empty_input_is_invalid(method):
    with pytest.raises(InvalidInput, match="empty"):
        make_aggregator(method).fit([], [], [])


@pytest.mark.parametrize("method", ALL)
def test_item_with_one_answer_and_worker_with_one_answer(method):
    items, workers, labels, truth = _crowd(seed=3, flip_worker=False)
    # a newcomer (worker 9) answers one item, nobody else answers it
    n = truth.size
    items, workers, labels = np.r_[items, n], np.r_[workers, 9], np.r_[labels, 1]
    m = make_aggregator(method).fit(items, workers, labels)
    assert m.labels_[n] == 1  # a lone answer from an unknown worker is believed
    assert 0.5 < m.proba_[n, 1] <= 1.0
    conf = m.confusion_[9]
    assert np.isfinite(conf).all() and np.allclose(conf.sum(axis=1), 1)
    if method in ("ds", "one-coin", "mace", "auto", "bcc", "ebcc", "minimax"):  # smoothed: never a 0/1 row from one answer
        assert (conf > 0).all() and (conf < 1).all()
    assert np.isnan(m.accuracy_[5:9]).all()  # workers 5..8 have no answers


@pytest.mark.parametrize("method", ALL)
def test_class_nobody_used(method):
    items, workers, labels, _ = _crowd(seed=4, flip_worker=False)
    m = make_aggregator(method).fit(items, workers, labels, n_classes=3)
    assert m.proba_.shape == (items.max() + 1, 3) and m.confusion_.shape[1:] == (3, 3)
    assert (m.labels_ != 2).all()
    np.testing.assert_allclose(m.proba_.sum(axis=1), 1)


def test_duplicates_keep_last_or_count_all():
    # item 0: w0 says 0 three times, w1 and w2 say 1
    items, workers, labels = [0, 0, 0, 0, 0], [0, 0, 0, 1, 2], [0, 0, 0, 1, 1]
    last = MajorityVote().fit(items, workers, labels)
    assert last.labels_[0] == 1 and last.n_duplicates_ == 2
    np.testing.assert_allclose(last.proba_[0], [1 / 3, 2 / 3])
    every = MajorityVote(duplicates="all").fit(items, workers, labels)
    assert every.labels_[0] == 0
    np.testing.assert_allclose(every.proba_[0], [0.6, 0.4])
    # "last" means the last row in input order
    assert MajorityVote().fit([0, 0, 0], [0, 0, 1], [1, 0, 0]).proba_[0, 0] == 1.0


def test_items_without_answers_get_the_prior():
    m = DawidSkene().fit([0, 0, 2, 2], [0, 1, 0, 1], [1, 1, 1, 0], n_items=4)
    np.testing.assert_allclose(m.proba_[1], m.prior_)
    np.testing.assert_allclose(m.proba_[3], m.prior_)


@pytest.mark.parametrize("bad, match", [
    (dict(items=["a"], workers=[0], labels=[0]), "integer codes"),
    (dict(items=[-1], workers=[0], labels=[0]), "non-negative"),
    (dict(items=[0, 1], workers=[0], labels=[0]), "differ in length"),
    (dict(items=[[0]], workers=[[0]], labels=[[0]]), "1-d"),
])
def test_bad_codes_are_invalid_input(bad, match):
    with pytest.raises(InvalidInput, match=match):
        DawidSkene().fit(**bad)


def test_bad_gold_and_method():
    with pytest.raises(InvalidInput, match="gold"):
        DawidSkene().fit([0, 1], [0, 0], [0, 1], gold=np.array([0, 5]), n_classes=2)
    with pytest.raises(InvalidInput, match="unknown method"):
        make_aggregator("nope")
    with pytest.raises(InvalidInput, match="duplicates"):
        MajorityVote(duplicates="first").fit([0], [0], [0])


# ------------------------------------------------------------ gold


@pytest.mark.parametrize("method", ALL)
def test_gold_is_clamped(method):
    items, workers, labels, truth = _crowd(seed=5)
    gold = np.full(truth.size, -1)
    gold[60:70] = 1 - truth[60:70]  # even a "wrong" gold label wins on its item
    m = make_aggregator(method).fit(items, workers, labels, gold=gold)
    np.testing.assert_array_equal(m.labels_[60:70], gold[60:70])
    np.testing.assert_allclose(m.proba_[60:70].max(axis=1), 1.0)


def test_gold_teaches_dawid_skene_who_is_reliable():
    # worker 0 is right, worker 1 always wrong; each item has exactly one
    # answer from each, so without gold nothing tells them apart
    truth = np.array([0, 1] * 20)
    items = np.repeat(np.arange(40), 2)
    workers = np.tile([0, 1], 40)
    labels = np.where(workers == 0, truth[items], 1 - truth[items])
    gold = np.full(40, -1)
    gold[:6] = truth[:6]
    m = DawidSkene().fit(items, workers, labels, gold=gold)
    assert (m.labels_ == truth).all()
    assert m.accuracy_[0] > 0.95 > 0.05 > m.accuracy_[1]


# ------------------------------------------------------------ properties

answers = st.integers(1, 30).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 7), min_size=n, max_size=n),
    st.lists(st.integers(0, 4), min_size=n, max_size=n),
    st.lists(st.integers(0, 3), min_size=n, max_size=n),
))


@pytest.mark.parametrize("method", ALL)
@settings(max_examples=25, deadline=None, database=None)
@given(data=answers, gold_at=st.integers(-1, 7))
def test_posteriors_sum_to_one_and_labels_are_argmax(method, data, gold_at):
    items, workers, labels = map(np.array, data)
    gold = None
    if 0 <= gold_at <= items.max():
        gold = np.full(items.max() + 1, -1)
        gold[gold_at] = labels.max()
    m = make_aggregator(method).fit(items, workers, labels, gold=gold)
    p = m.proba_
    assert p.shape == (items.max() + 1, labels.max() + 1)
    assert np.isfinite(p).all() and (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(p[np.arange(len(p)), m.labels_], p.max(axis=1), rtol=1e-9)
    np.testing.assert_allclose(m.confusion_.sum(axis=2), 1.0, atol=1e-9)
    if gold is not None:
        assert m.labels_[gold_at] == gold[gold_at]


# ------------------------------------------------------------ string ids


def test_aggregate_codes_and_decodes():
    r = aggregate(["q1", "q1", "q2", "q2", "q2"], ["ann", "bob", "ann", "bob", "cy"],
                  ["cat", "cat", "dog", "cat", "dog"], method="mv", classes=["cat", "dog", "bird"])
    assert r.to_frame().to_dict("list") == {
        "item": ["q1", "q2"], "label": ["cat", "dog"], "confidence": [1.0, pytest.approx(2 / 3)]}
    assert r.classes.tolist() == ["cat", "dog", "bird"] and r.proba.shape == (2, 3)
    assert r.workers_frame()["worker"].tolist() == ["ann", "bob", "cy"]


def test_aggregate_gold_may_add_a_class():
    r = aggregate(["a", "a", "b"], ["x", "y", "x"], ["1", "1", "2"], method="ds", gold={"b": "10", "zz": "1"})
    assert r.classes.tolist() == ["1", "2", "10"]  # numeric-looking labels sort as numbers
    assert r.labels.tolist() == ["1", "10"]


# ------------------------------------------------------------ real data


def _load(folder):
    a = pd.read_csv(folder / "answers.csv", dtype=str)
    t = pd.read_csv(folder / "truth.csv", dtype=str)
    return a, dict(zip(t["item"], t["label"]))


def _accuracy(result, truth):
    pred = dict(zip(result.item_ids, result.labels))
    hits = [pred[i] == lab for i, lab in truth.items() if i in pred]
    return sum(hits) / len(hits)


def test_auto_beats_majority_vote_on_real_crowd(shared_data):
    answers, truth = _load(shared_data / "crowd" / "rte")
    cols = answers["item"].to_numpy(), answers["worker"].to_numpy(), answers["label"].to_numpy()
    auto = _accuracy(aggregate(*cols, method="auto"), truth)
    mv = _accuracy(aggregate(*cols, method="mv"), truth)
    assert auto >= mv - 0.01, (auto, mv)
    assert auto > 0.9


@pytest.mark.parametrize("method", ["ds", "one-coin", "mace"])
def test_em_objective_never_decreases(method):
    items, workers, labels, _ = _crowd(seed=6)
    m = make_aggregator(method).fit(items, workers, labels)
    assert m.converged_ and m.n_iter_ == m.history_.size > 1
    assert np.all(np.diff(m.history_) >= -1e-8 * abs(m.history_[-1]))
