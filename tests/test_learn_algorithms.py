"""The pure learning algorithms: calibration, the in-loop classifier, the
auto-label threshold's guarantee, audits, and active-learning selection."""

from __future__ import annotations

import numpy as np
import pytest

from assay.errors import InvalidInput
from assay.learn.active import kcenter_greedy, margin_uncertainty, select_batch
from assay.learn.autolabel import audit_verdict, choose_threshold, clopper_pearson, precision_from_answers
from assay.learn.calibration import expected_calibration_error, fit_temperature, softmax
from assay.learn.model import EmbeddingClassifier


def _blobs(n=600, k=3, d=16, spread=1.0, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (k, d))
    y = rng.integers(k, size=n)
    return (centers[y] + rng.normal(0, spread * 3, (n, d))).astype(np.float32), y


def test_temperature_scaling_undoes_overconfidence():
    rng = np.random.default_rng(1)
    n, k = 4000, 4
    true_logits = rng.normal(0, 1.5, (n, k))
    y = np.array([rng.choice(k, p=p) for p in softmax(true_logits)])
    over = 3.0 * true_logits  # an overconfident model: same ranking, too sharp
    t = fit_temperature(over, y)
    assert 2.5 < t < 3.6
    assert expected_calibration_error(softmax(over / t), y) < 0.5 * expected_calibration_error(softmax(over), y)


def test_classifier_is_accurate_calibrated_and_handles_edge_cases():
    X, y = _blobs(spread=0.9)
    m = EmbeddingClassifier().fit(X[:400], y[:400], n_classes=4)  # class 3 never seen
    p = m.predict_proba(X[400:])
    assert np.allclose(p.sum(axis=1), 1) and (p[:, 3] < 1e-6).all()
    acc = (p.argmax(1) == y[400:]).mean()
    assert acc > 0.75
    assert m.oof_proba_.shape == (400, 4)
    # out-of-fold confidence tracks out-of-fold accuracy (calibrated), within a few points
    oof_acc = (m.oof_proba_.argmax(1) == y[:400]).mean()
    assert abs(m.oof_proba_.max(1).mean() - oof_acc) < 0.06
    one = EmbeddingClassifier().fit(X[:5], np.zeros(5, int), n_classes=2)
    assert (one.predict(X[:3]) == 0).all()
    with pytest.raises(InvalidInput):
        EmbeddingClassifier().fit(X[:5], np.array([0, 1, 2, 5, 0]), n_classes=3)


def test_threshold_meets_the_target_with_the_stated_confidence():
    """Calibrated synthetic model: P(right | confidence c) = c, c ~ U(0.5, 1).
    The true accuracy above a threshold t is (1 + t) / 2. Over many draws of
    the held-out set, the chosen threshold may miss the target in at most
    about alpha of them."""
    target, alpha, trials = 0.9, 0.05, 300
    rng = np.random.default_rng(7)
    misses = found = 0
    for _ in range(trials):
        c = rng.uniform(0.5, 1.0, 2000)
        right = rng.random(2000) < c
        t = choose_threshold(c, right, target=target, alpha=alpha)
        if t is None:
            continue
        found += 1
        misses += (1 + t) / 2 < target
    assert found > 0.9 * trials  # it does find thresholds (not uselessly conservative)
    assert misses / found <= alpha + 0.03
    # a model that is right only 70 % of the time at every confidence never qualifies
    c = rng.uniform(0.5, 1.0, 2000)
    assert choose_threshold(c, rng.random(2000) < 0.7, target=0.9) is None


def test_clopper_pearson_and_audits():
    assert float(clopper_pearson(95, 100, 0.05, "lower")) == pytest.approx(0.8975, abs=2e-3)
    assert float(clopper_pearson(100, 100, 0.05, "upper")) == 1.0
    assert audit_verdict(80, 100, target=0.95) == "fail"
    assert audit_verdict(97, 100, target=0.95) == "ok"
    assert audit_verdict(9, 10, target=0.95) == "ok"  # 90 % of 10 does not prove < 95 %
    assert audit_verdict(0, 0) == "ok"


def test_active_selection_is_uncertain_diverse_and_random_in_part():
    X, y = _blobs(n=500, k=5, spread=0.15, seed=3)
    labeled = np.zeros(500, bool)
    cold = select_batch(X, None, labeled, 5)
    assert len(set(y[cold])) == 5  # one per cluster: diverse cold start
    proba = np.full((500, 2), 0.5)
    proba[:, 0] = np.linspace(0.5, 1.0, 500)
    proba[:, 1] = 1 - proba[:, 0]
    labeled[:10] = True
    batch = select_batch(X, proba, labeled, 20, random_share=0.25, pool_factor=3)
    assert len(batch) == len(set(batch)) == 20 and not labeled[batch].any()
    # 15 from the 45 most uncertain unlabeled rows, 5 random
    assert (batch[:15] < 55).all()
    assert margin_uncertainty(proba[batch[:15]]).min() > margin_uncertainty(proba[400:]).max()
    idx = kcenter_greedy(X, 3, anchors=X[:1])
    assert 0 not in idx.tolist()


def _noisy_answers(rng, truth, k, acc, per_item):
    """Each class's log-likelihood of ``per_item[i]`` answers from annotators
    right with ``acc``, wrong uniformly otherwise."""
    ll = np.zeros((truth.size, k))
    for i, t in enumerate(truth):
        for _ in range(per_item[i]):
            a = t if rng.random() < acc else (t + rng.integers(1, k)) % k
            row = np.full(k, np.log((1 - acc) / (k - 1)))
            row[a] = np.log(acc)
            ll[i] += row
    return ll


@pytest.mark.parametrize("pi", [0.8, 0.95])
def test_precision_from_few_answers_is_not_pulled_to_the_prior(pi):
    rng = np.random.default_rng(int(pi * 100))
    k, n = 10, 3000
    truth = rng.integers(k, size=n)
    model = np.where(rng.random(n) < pi, truth, (truth + rng.integers(1, k, size=n)) % k)
    ll = _noisy_answers(rng, truth, k, 0.7, rng.integers(1, 3, size=n))  # one or two answers each
    est = precision_from_answers(ll, model, np.full(k, 1 / k))
    assert abs(est - (model == truth).mean()) < 0.03
    # the mean posterior that the model's label is right sits far below it
    post = np.exp(ll - ll.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    assert post[np.arange(n), model].mean() < pi - 0.2
    with pytest.raises(InvalidInput):
        precision_from_answers(ll[:0], model[:0], np.full(k, 1 / k))
    with pytest.raises(InvalidInput):
        precision_from_answers(ll, model[:5], np.full(k, 1 / k))
