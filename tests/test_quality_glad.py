"""GLAD's options: prior mean of the log-easiness, the EM start and the
M-step's Newton rounds."""

from __future__ import annotations

import numpy as np
import pytest

from assay.errors import InvalidInput
from assay.quality import GLAD, MajorityVote


def _glad_crowd(seed: int = 0, n_items: int = 400, n_workers: int = 12, k: int = 3, per_item: int = 5):
    """Answers drawn from the GLAD model itself."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    alpha = rng.normal(1.0, 1.0, n_workers)
    beta = np.exp(rng.normal(0.5, 0.5, n_items))
    items = np.repeat(np.arange(n_items), per_item)
    workers = np.concatenate([rng.choice(n_workers, per_item, replace=False) for _ in range(n_items)])
    p_right = 1.0 / (1.0 + np.exp(-alpha[workers] * beta[items]))
    right = rng.random(items.size) < p_right
    wrong = (truth[items] + rng.integers(1, k, items.size)) % k
    labels = np.where(right, truth[items], wrong)
    return items, workers, labels, truth


def test_defaults_are_crowd_kits_prior_and_start():
    m = GLAD()
    assert (m.alpha_mean, m.b_mean, m.init, m.newton_steps) == (1.0, 1.0, "params", 2)


@pytest.mark.parametrize("params", [{}, {"b_mean": 0.0, "init": "votes"}, {"newton_steps": 25}])
def test_beats_majority_vote_on_its_own_model(params):
    items, workers, labels, truth = _glad_crowd()
    m = GLAD(**params).fit(items, workers, labels)
    mv = MajorityVote().fit(items, workers, labels)
    assert (m.labels_ == truth).mean() >= (mv.labels_ == truth).mean()
    assert (m.labels_ == truth).mean() > 0.8
    assert m.converged_


def test_item_without_answers_keeps_the_prior_easiness():
    items, workers, labels, _ = _glad_crowd(n_items=50)
    for b_mean in (0.0, 1.0):
        m = GLAD(b_mean=b_mean).fit(items, workers, labels, n_items=51)
        assert m.beta_[50] == pytest.approx(np.exp(b_mean))
        np.testing.assert_allclose(m.proba_[50], 1.0 / 3)


def test_m_tol_stops_newton_rounds_early():
    items, workers, labels, _ = _glad_crowd(seed=1)
    one = GLAD(newton_steps=1, max_iter=5, tol=0).fit(items, workers, labels)
    capped = GLAD(newton_steps=25, m_tol=np.inf, max_iter=5, tol=0).fit(items, workers, labels)
    np.testing.assert_allclose(capped.alpha_, one.alpha_)
    np.testing.assert_allclose(capped.proba_, one.proba_)
    full = GLAD(newton_steps=25, m_tol=0.0, max_iter=5, tol=0).fit(items, workers, labels)
    assert not np.allclose(full.alpha_, one.alpha_)


def test_full_m_step_reaches_a_stationary_point():
    """After many Newton rounds on a fixed posterior the gradient of the
    M-step objective is ~0 (the rounds solve the M-step, not just improve it)."""
    items, workers, labels, _ = _glad_crowd(seed=2)
    m = GLAD(newton_steps=200, m_tol=1e-10, max_iter=1)
    m.fit(items, workers, labels)
    # recompute the posterior the single M-step used and the gradient there
    from assay.quality._answers import Answers

    data = Answers(items, workers, labels)
    none = np.zeros(0, np.intp)
    prior = np.full(3, 1.0 / 3)
    post, _ = m._e_step(data, np.full(data.n_workers, 1.0), np.full(data.n_items, 1.0), prior, none, none)
    alpha, b = m.alpha_, np.log(m.beta_)
    p_right = data.at_answers(post)
    x = alpha[data.workers] * m.beta_[data.items]
    s = 1.0 / (1.0 + np.exp(-x))
    g_alpha = data.worker_sum((p_right - s) * m.beta_[data.items]) - (alpha - 1.0)
    g_b = data.item_sum((p_right - s) * x) - (b - 1.0)
    assert np.abs(g_alpha).max() < 1e-6 and np.abs(g_b).max() < 1e-6


def test_init_params_starts_from_a_sharpened_majority_vote():
    """With equal abilities and easiness, the first E-step ranks classes by
    their vote counts, so one EM iteration's start is majority vote."""
    items, workers, labels, _ = _glad_crowd(seed=3)
    from assay.quality._answers import Answers

    data = Answers(items, workers, labels)
    none = np.zeros(0, np.intp)
    post, _ = GLAD()._e_step(data, np.ones(data.n_workers), np.ones(data.n_items), np.full(3, 1 / 3), none, none)
    votes = data.votes
    clear = np.sort(votes, axis=1)[:, -1] > np.sort(votes, axis=1)[:, -2]
    assert (post.argmax(axis=1)[clear] == votes.argmax(axis=1)[clear]).all()


def test_gold_is_clamped_with_either_start():
    items, workers, labels, truth = _glad_crowd(seed=4)
    gold = np.full(truth.size, -1)
    gold[:40] = (truth[:40] + 1) % 3  # deliberately "wrong" gold still wins on those items
    for init in ("params", "votes"):
        m = GLAD(init=init).fit(items, workers, labels, gold=gold)
        assert (m.labels_[:40] == gold[:40]).all()


def test_bad_init_is_rejected():
    with pytest.raises(InvalidInput):
        GLAD(init="random")
    with pytest.raises(InvalidInput):
        GLAD(newton_steps=0)
