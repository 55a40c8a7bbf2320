"""assay.quality.crowd_with_model: consensus and annotator quality from the
crowd's answers plus a model's probabilities (synthetic crowds with known
truth, and a real one)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assay.errors import InvalidInput
from assay.quality import CrowdModel, crowd_with_model
from assay.quality.crowd_model import learn_prior_weight


def _crowd(rng, n, k, accuracies, per_item):
    """Long answers: each item answered by ``per_item`` distinct annotators,
    right with their accuracy, otherwise a uniformly wrong class."""
    truth = rng.integers(k, size=n)
    items, users, labels = [], [], []
    for i in range(n):
        for u in rng.choice(len(accuracies), per_item, replace=False):
            right = rng.random() < accuracies[u]
            lab = truth[i] if right else (truth[i] + rng.integers(1, k)) % k
            items.append(i), users.append(int(u)), labels.append(int(lab))
    return truth, np.array(items), np.array(users), np.array(labels)


def _model(rng, truth, k, accuracy, confidence):
    """Calibrated-looking probabilities: the guess (right with ``accuracy``)
    gets ``confidence``, the rest share what is left."""
    n = truth.size
    guess = np.where(rng.random(n) < accuracy, truth, (truth + rng.integers(1, k, size=n)) % k)
    p = np.full((n, k), (1 - confidence) / (k - 1))
    p[np.arange(n), guess] = confidence
    return p


def _majority(items, labels, n, k, rng):
    votes = np.zeros((n, k))
    np.add.at(votes, (items, labels), 1)
    votes += rng.random((n, k)) * 1e-3  # ties broken at random
    return votes.argmax(axis=1)


def test_a_strong_model_lifts_weak_annotators_above_majority_vote():
    rng = np.random.default_rng(0)
    k, n = 3, 800
    truth, items, users, labels = _crowd(rng, n, k, rng.uniform(0.45, 0.65, 30), per_item=3)
    pp = _model(rng, truth, k, accuracy=0.9, confidence=0.9)
    fit = crowd_with_model(items, users, labels, pp)
    assert isinstance(fit, CrowdModel)
    mv = (_majority(items, labels, n, k, rng) == truth).mean()
    acc = (fit.consensus_label == truth).mean()
    assert acc > mv + 0.1, (acc, mv)
    # quality says how sure: the surest half is more accurate than the rest
    order = np.argsort(-fit.consensus_quality)
    right = fit.consensus_label == truth
    assert right[order[: n // 2]].mean() > right[order[n // 2:]].mean()


def test_a_weak_model_does_not_pull_good_annotators_below_majority_vote():
    """Good annotators, a model barely better than chance: over ten crowds
    the consensus stays with majority vote (within 0.5 points on average,
    1.5 in any one: with three answers an item's vote is already right about
    95 % of the time, and per-annotator skills cost a little noise), and the
    weak model costs nothing against no model at all."""
    with_model, without, mv = [], [], []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        k, n = 3, 800
        truth, items, users, labels = _crowd(rng, n, k, rng.uniform(0.75, 0.95, 30), per_item=3)
        pp = _model(rng, truth, k, accuracy=0.45, confidence=0.4)
        with_model.append((crowd_with_model(items, users, labels, pp).consensus_label == truth).mean())
        none = crowd_with_model(items, users, labels, np.full((n, k), np.nan))
        without.append((none.consensus_label == truth).mean())
        mv.append((_majority(items, labels, n, k, rng) == truth).mean())
    with_model, without, mv = map(np.array, (with_model, without, mv))
    assert with_model.mean() >= mv.mean() - 0.005, (with_model, mv)
    assert (with_model >= mv - 0.015).all(), (with_model, mv)
    assert with_model.mean() >= without.mean() - 0.001, (with_model, without)


def test_annotator_quality_ranks_annotators_and_uses_the_model_on_single_answers():
    rng = np.random.default_rng(2)
    k, n = 2, 1500
    acc = np.r_[np.full(10, 0.9), np.full(10, 0.6)]
    # one answer per item: without the model nothing could be learned
    truth, items, users, labels = _crowd(rng, n, k, acc, per_item=1)
    pp = _model(rng, truth, k, accuracy=0.95, confidence=0.95)
    fit = crowd_with_model(items, users, labels, pp)
    q = dict(zip(fit.annotators_.tolist(), fit.annotator_quality))
    good, poor = np.mean([q[u] for u in range(10)]), np.mean([q[u] for u in range(10, 20)])
    assert good > 0.8 and poor < 0.7, (good, poor)
    assert fit.answers_used.sum() == n
    assert fit.skills()[0] == fit.confusion[0].tolist()
    # no model at all: single answers carry nothing to learn from
    assert crowd_with_model(items, users, labels, np.full((n, k), np.nan)) is None


def test_items_without_answers_or_with_gold():
    rng = np.random.default_rng(3)
    k, n = 2, 300
    truth, items, users, labels = _crowd(rng, n, k, np.full(8, 0.8), per_item=3)
    pp = np.vstack([_model(rng, truth, k, 0.8, 0.8), [[0.3, 0.7]]])  # one more item nobody answered
    gold = np.full(n + 1, -1)
    gold[0] = 1 - truth[0]  # a known class wins over the answers
    fit = crowd_with_model(items, users, labels, pp, gold=gold)
    assert fit.consensus_label[-1] == -1 and np.isnan(fit.consensus_quality[-1])
    # an item nobody answered: the model's prediction as the fit weighs it
    assert fit.proba[-1] == pytest.approx(fit.item_prior(pp)[-1])
    as_given = crowd_with_model(items, users, labels, pp, gold=gold, prior_weight=1.0)
    assert as_given.prior_weight == 1.0 and as_given.proba[-1] == pytest.approx([0.3, 0.7])
    assert fit.consensus_label[0] == 1 - truth[0] and fit.consensus_quality[0] == 1.0


@pytest.mark.parametrize("change, message", [
    (dict(labels=[0, 1]), "same length"),
    (dict(items=[0, 0, 9]), "index the rows"),
    (dict(labels=[0, 1, 2]), "class codes"),
    (dict(pred_probs=[[0.5, 0.6], [0.5, 0.5]]), "sum to 1"),
    (dict(pred_probs=[[np.nan, 1.0], [0.5, 0.5]]), "all NaN"),
    (dict(pred_probs=[0.5, 0.5]), "(n_items, n_classes)"),
    (dict(gold=[0]), "gold"),
], ids=["lengths", "items", "labels", "sums", "half-nan", "shape", "gold"])
def test_bad_input_is_refused_clearly(change, message):
    args = dict(items=[0, 0, 1], annotators=[1, 2, 1], labels=[0, 1, 1], pred_probs=[[0.5, 0.5], [0.5, 0.5]])
    args.update(change)
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        crowd_with_model(**args)


def test_real_crowd_with_a_mediocre_model_beats_majority_vote(shared_data):
    """rte (textual entailment, 164 real MTurk workers, 10 answers per item):
    three real answers per item, and a simulated 75 %-accurate model."""
    d = shared_data / "crowd" / "rte"
    a = pd.read_csv(d / "answers.csv", dtype=str, keep_default_na=False)
    t = pd.read_csv(d / "truth.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(0)
    a = a.sample(frac=1.0, random_state=0).groupby("item", sort=False).head(3)
    item_codes, items = np.unique(a["item"], return_inverse=True)
    classes, labels = np.unique(a["label"], return_inverse=True)
    _, users = np.unique(a["worker"], return_inverse=True)
    truth_of = dict(zip(t["item"], t["label"]))
    truth = np.array([list(classes).index(truth_of[i]) for i in item_codes])
    n, k = item_codes.size, classes.size
    pp = _model(rng, truth, k, accuracy=0.75, confidence=0.75)
    fit = crowd_with_model(items, users, labels, pp)
    mv = (_majority(items, labels, n, k, rng) == truth).mean()
    acc = (fit.consensus_label == truth).mean()
    assert acc >= mv, (acc, mv)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_under_confident_model_is_weighed_by_the_answers(seed):
    """A model 88 % right whose probabilities say ~40 % (its temperature fitted
    on noisy labels) and a weak 8-class crowd (40-65 %, 1-3 answers): taken as
    given, single weak answers overrule it (consensus 10+ points below the
    model); with its weight learned from held-out answers the consensus is
    about as good as the better of the model and majority vote. A model that
    claims what it is gets a weight near 1."""
    rng = np.random.default_rng(seed)
    k, n = 8, 2000
    truth = rng.integers(k, size=n)
    items, users, labels = [], [], []
    acc = rng.uniform(0.40, 0.65, 40)
    for i in range(n):
        for u in rng.choice(40, 1 + rng.integers(3), replace=False):
            lab = truth[i] if rng.random() < acc[u] else (truth[i] + rng.integers(1, k)) % k
            items.append(i), users.append(int(u)), labels.append(int(lab))
    items, users, labels = np.array(items), np.array(users), np.array(labels)
    sharp = _model(rng, truth, k, accuracy=0.88, confidence=0.88)
    soft = sharp ** 0.4
    soft /= soft.sum(axis=1, keepdims=True)  # the same ranking, claims ~40 %
    as_given = crowd_with_model(items, users, labels, soft, prior_weight=1.0)
    fit = crowd_with_model(items, users, labels, soft)
    model = (soft.argmax(axis=1) == truth).mean()
    mv = (_majority(items, labels, n, k, rng) == truth).mean()
    acc_given = (as_given.consensus_label == truth).mean()
    acc_fit = (fit.consensus_label == truth).mean()
    # held out, the weight comes out ~20 % under the 2.5 that undoes the
    # softening (2.0 on seeds 0-4; within 0.05-1.9 points of the model)
    assert acc_fit >= max(model, mv) - 0.02, (acc_fit, model, mv)
    assert acc_given < max(model, mv) - 0.1, (acc_given, model, mv)  # the failure the weight fixes
    assert 1.6 < fit.prior_weight < 3.5, fit.prior_weight
    honest = crowd_with_model(items, users, labels, sharp)
    assert 0.6 < honest.prior_weight < 1.4, honest.prior_weight
    assert learn_prior_weight(items, users, labels, soft) == pytest.approx(fit.prior_weight)
