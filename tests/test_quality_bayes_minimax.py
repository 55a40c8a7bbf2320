"""BCC / EBCC (variational Bayes) and minimax conditional entropy: golden
one-round outputs against a plain-loop re-derivation, objective and
posterior properties, and what ``auto`` does with minimax."""

from __future__ import annotations

import math

import numpy as np
import pytest

from assay.quality import BCC, EBCC, Auto, DawidSkene, MajorityVote, MinimaxEntropy
from assay.quality._special import digamma
from factories import liar_crowd

# item 0: w0=0 w1=0 w2=1    item 1: w0=1 w1=1    item 2: w0=0 w2=1
SMALL = (np.array([0, 0, 0, 1, 1, 2, 2]), np.array([0, 1, 2, 0, 1, 0, 2]), np.array([0, 0, 1, 1, 1, 0, 1]))


_crowd = liar_crowd


# ------------------------------------------------------------ golden, by loops


def _bcc_one_round_by_hand(items, workers, labels, a_v=4.0, b_v=1.0):
    """One VB round of BCC written out answer by answer."""
    k = 2
    votes = {}
    for i, l in zip(items, labels):
        votes.setdefault(int(i), [0.0] * k)[int(l)] += 1
    z = {i: [c / sum(v) for c in v] for i, v in votes.items()}
    nu = [sum(z[i][c] for i in z) + 1e-2 for c in range(k)]  # empirical prior: vote-share class counts
    nu_post = [nu[c] + sum(z[i][c] for i in z) for c in range(k)]
    mu = {}
    for w in set(workers.tolist()):
        mu[w] = [[a_v if c == l else b_v for l in range(k)] for c in range(k)]
    for i, w, l in zip(items, workers, labels):
        for c in range(k):
            mu[int(w)][c][int(l)] += z[int(i)][c]
    post = {}
    for i in sorted(z):
        s = [float(digamma(nu_post[c]) - digamma(sum(nu_post))) for c in range(k)]
        for ii, w, l in zip(items, workers, labels):
            if ii == i:
                for c in range(k):
                    row = mu[int(w)][c]
                    s[c] += float(digamma(row[int(l)]) - digamma(sum(row)))
        m = max(s)
        e = [math.exp(x - m) for x in s]
        post[i] = [x / sum(e) for x in e]
    return np.array([post[i] for i in sorted(post)])


def test_bcc_one_round_by_hand():
    items, workers, labels = SMALL
    m = BCC(max_iter=1).fit(items, workers, labels)
    np.testing.assert_allclose(m.proba_, _bcc_one_round_by_hand(items, workers, labels), rtol=1e-10)
    assert m.labels_.tolist() == [0, 1, int(m.proba_[2, 1] > m.proba_[2, 0])]


def _minimax_one_round_by_hand(items, workers, labels, lw, lt):
    """One round of categorical minimax entropy (one majorise-minimise sweep
    over workers, then items, then the E-step), answer by answer."""
    k = 2
    votes = {}
    for i, l in zip(items, labels):
        votes.setdefault(int(i), [0.0] * k)[int(l)] += 1
    mu = {i: [c / sum(v) for c in v] for i, v in votes.items()}
    sigma = {int(w): np.zeros((k, k)) for w in workers}
    tau = {int(i): np.zeros((k, k)) for i in items}

    def probs(w, i):
        x = sigma[w] + tau[i]
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    for block, params, lam in (("w", sigma, lw), ("i", tau, lt)):
        grads = {key: -lam * p for key, p in params.items()}
        bounds = {key: np.full((k, k), lam) for key in params}
        for i, w, l in zip(items.tolist(), workers.tolist(), labels.tolist()):
            p = probs(w, i)
            key = w if block == "w" else i
            for c in range(k):
                for ll in range(k):
                    grads[key][c, ll] += mu[i][c] * ((ll == l) - p[c, ll])
                    bounds[key][c, ll] += 0.5 * mu[i][c]
        for key in params:
            params[key] = params[key] + grads[key] / bounds[key]
    post = []
    for i in sorted(mu):
        s = np.log(np.full(k, 1.0 / k))
        for ii, w, l in zip(items.tolist(), workers.tolist(), labels.tolist()):
            if ii == i:
                s += np.log(probs(w, i)[:, l])
        e = np.exp(s - s.max())
        post.append(e / e.sum())
    return np.array(post)


def test_minimax_one_round_by_hand():
    items, workers, labels = SMALL
    m = MinimaxEntropy(max_iter=1, inner_iter=1).fit(items, workers, labels)
    # the authors' defaults: lambda_worker = K^2 / 4; lambda_item scaled by
    # answers per worker (7/3) over answers per item (7/3)
    lw = 0.25 * 4
    lt = lw * (7 / 3) / (7 / 3)
    np.testing.assert_allclose(m.proba_, _minimax_one_round_by_hand(items, workers, labels, lw, lt), rtol=1e-10)


# ------------------------------------------------------------ models behave


def test_ebcc_with_one_subtype_is_bcc():
    items, workers, labels, _ = _crowd(seed=1)
    a = EBCC(n_subtypes=1).fit(items, workers, labels)
    b = BCC().fit(items, workers, labels)
    np.testing.assert_allclose(a.proba_, b.proba_)
    assert a.elbo_ == pytest.approx(b.elbo_)


@pytest.mark.parametrize("make", [BCC, lambda: EBCC(n_restarts=2), MinimaxEntropy])
def test_objective_never_decreases_and_liar_is_read_backwards(make):
    items, workers, labels, truth = _crowd(seed=2)
    m = make().fit(items, workers, labels)
    assert m.converged_ and m.n_iter_ == m.history_.size > 1
    assert np.all(np.diff(m.history_) >= -1e-8 * abs(m.history_[-1]))
    assert (m.labels_[:50] == truth[:50]).mean() > 0.95  # only the liar answered these
    assert m.confusion_[2, 0, 1] > 0.8 and m.confusion_[2, 1, 0] > 0.8


def test_ebcc_keeps_the_restart_with_the_best_elbo():
    items, workers, labels, _ = _crowd(seed=3)
    runs = [EBCC(n_restarts=1, random_state=s).fit(items, workers, labels).elbo_ for s in range(3)]
    best = EBCC(n_restarts=3, random_state=0).fit(items, workers, labels).elbo_
    assert best >= max(runs[:1]) - 1e-9
    assert np.isfinite(runs).all()


def test_ebcc_subtype_posteriors_sum_to_the_class_posterior():
    items, workers, labels, _ = _crowd(seed=4)
    m = EBCC(n_subtypes=3, n_restarts=1).fit(items, workers, labels)
    assert m.subtype_proba_.shape == (300, 2, 3)
    np.testing.assert_allclose(m.subtype_proba_.sum(axis=2), m.proba_, atol=1e-12)


def _decoy_crowd(seed=0, n_items=200, n_workers=25, k=3):
    """Everybody answers everything; when a worker errs on an item they
    nearly always pick that item's own decoy label: an item effect no
    per-worker confusion matrix can express."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    decoy = (truth + rng.integers(1, k, n_items)) % k
    skill = rng.uniform(0.55, 0.9, n_workers)
    items = np.repeat(np.arange(n_items), n_workers)
    workers = np.tile(np.arange(n_workers), n_items)
    right = rng.random(items.size) < skill[workers]
    labels = np.where(right, truth[items], decoy[items])
    return items, workers, labels, truth


def test_auto_takes_an_item_effect_model_when_items_have_their_own_confusions():
    # minimax (a confusion per item) and EBCC (a confusion per item subtype)
    # both express a decoy per item; EBCC's subtypes explain it better here
    items, workers, labels, truth = _decoy_crowd()
    m = Auto().fit(items, workers, labels)
    assert m.method_ == "ebcc", m.scores_
    assert m.scores_["ebcc"] > m.scores_["minimax"] > m.scores_["ds"] > m.scores_["mv"]
    np.testing.assert_array_equal(m.proba_, EBCC().fit(items, workers, labels).proba_)
    assert (m.labels_ == truth).mean() >= (MajorityVote().fit(items, workers, labels).labels_ == truth).mean()


def test_auto_leaves_minimax_out_of_large_crowds(monkeypatch):
    import assay.quality.auto as auto_mod

    items, workers, labels, _ = _crowd(seed=5)
    monkeypatch.setattr(auto_mod, "MINIMAX_MAX_CELLS", items.size * 4 - 1)  # one cell short
    m = Auto().fit(items, workers, labels)
    assert set(m.scores_) == {"mv", "mace", "ds", "ebcc", "habits"}
    monkeypatch.setattr(auto_mod, "EBCC_MAX_CELLS", items.size * 4 * auto_mod.EBCC_SUBTYPES - 1)
    m = Auto().fit(items, workers, labels)
    assert set(m.scores_) == {"mv", "mace", "ds", "habits"}
    np.testing.assert_array_equal(m.labels_, DawidSkene().fit(items, workers, labels).labels_)


def test_minimax_lambdas_follow_the_authors_defaults():
    items, workers, labels, _ = _crowd(seed=6)
    m = MinimaxEntropy().fit(items, workers, labels)
    explicit = MinimaxEntropy(lambda_worker=1.0, lambda_item=(items.size / 3) / (items.size / 300)).fit(
        items, workers, labels)
    np.testing.assert_allclose(m.proba_, explicit.proba_)
    stronger = MinimaxEntropy(lambda_worker=100.0, lambda_item=100.0).fit(items, workers, labels)
    assert np.abs(stronger.sigma_).max() < np.abs(m.sigma_).max()  # regularisation shrinks the parameters
