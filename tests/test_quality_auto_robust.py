"""``auto`` on synthetic crowds where one of its candidates is a trap: it must
never end up much below majority vote, whichever candidate it takes."""

from __future__ import annotations

import numpy as np
import pytest

from assay.quality import Auto, DawidSkene, MajorityVote, MinimaxEntropy
from factories import idiosyncratic_crowd


def _sparse_idiosyncratic(seed, n_items=3000, n_workers=400, k=5, per_item=3):
    """Few answers per item, middling workers (accuracy ~ Beta(2, 2)) with
    their own error patterns, 20 % spammers: full Dawid-Skene overfits
    (~22 answers per worker for 20 confusion cells)."""
    return idiosyncratic_crowd(seed, n_items=n_items, n_workers=n_workers, k=k, per_item=per_item)


def _dense_with_hard_items(seed, n_items=120, n_workers=30):
    """Binary, everybody answers everything, each worker biased to one side
    and a quarter of the class-0 items read as class 1 by many."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n_items)
    hard = rng.random(n_items) < 0.25
    tpr, tnr = rng.beta(6, 2, n_workers), rng.beta(6, 2, n_workers)
    items = np.repeat(np.arange(n_items), n_workers)
    workers = np.tile(np.arange(n_workers), n_items)
    t = truth[items]
    p1 = np.where(t == 1, tpr[workers], 1 - tnr[workers])
    p1 = np.where(hard[items] & (t == 0), 0.5 + 0.5 * p1, p1)
    labels = (rng.random(items.size) < p1).astype(int)
    return items, workers, labels, truth


def _acc(model, truth):
    return float((model.labels_ == truth).mean())


@pytest.mark.parametrize("seed", [0, 1])
def test_auto_avoids_an_overfitted_dawid_skene(seed):
    items, workers, labels, truth = _sparse_idiosyncratic(seed)
    mv = _acc(MajorityVote().fit(items, workers, labels), truth)
    ds = _acc(DawidSkene().fit(items, workers, labels), truth)
    assert ds < mv - 0.05  # the trap is real
    auto = Auto().fit(items, workers, labels)
    assert auto.method_ != "ds", auto.scores_
    assert _acc(auto, truth) >= mv - 0.01, auto.scores_


@pytest.mark.parametrize("seed", [0, 1])
def test_auto_not_below_majority_vote_on_dense_crowds(seed):
    items, workers, labels, truth = _dense_with_hard_items(seed)
    mv = _acc(MajorityVote().fit(items, workers, labels), truth)
    auto = Auto().fit(items, workers, labels)
    assert _acc(auto, truth) >= mv - 0.01, auto.scores_
    # whatever it took, it returns exactly that model's fit
    if auto.method_ == "minimax":
        np.testing.assert_array_equal(auto.proba_, MinimaxEntropy().fit(items, workers, labels).proba_)
