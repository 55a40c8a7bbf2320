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


# --------------------------------------------- correlated errors (issue 13, part 0)


def _clique_crowd(seed, n_items=1500):
    """Binary, a quarter positive. Four workers answer every item: two share
    their errors (both call the same third of the negatives positive), two
    mostly answer "0"; one more answer per item comes from a pool of 40
    ordinary workers (80 % right). Each answer is conditionally independent
    of the others given the truth *except* the clique's: the case where held-out
    answer likelihood prefers a model that believes the clique."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n_items) < 0.25).astype(int)
    confusing = (truth == 0) & (rng.random(n_items) < 0.35)
    all_items = np.arange(n_items)
    items, workers, labels = [], [], []
    for w in (0, 1):  # the clique
        lab = np.where(rng.random(n_items) < 0.9, truth, 1 - truth)
        labels.append(np.where(confusing & (rng.random(n_items) < 0.8), 1, lab))
        items.append(all_items)
        workers.append(np.full(n_items, w))
    for w in (2, 3):  # "0" unless quite sure
        p1 = np.where(truth == 1, 0.3, 0.1)
        labels.append((rng.random(n_items) < p1).astype(int))
        items.append(all_items)
        workers.append(np.full(n_items, w))
    labels.append(np.where(rng.random(n_items) < 0.8, truth, 1 - truth))
    items.append(all_items)
    workers.append(4 + rng.integers(0, 40, n_items))
    return np.concatenate(items), np.concatenate(workers), np.concatenate(labels), truth


def test_auto_not_fooled_by_workers_who_share_their_errors():
    # Before issue 13 auto chose by likelihood among mv/mace/ds/minimax and
    # was 10-13 points below majority vote on all eight seeds. Now EBCC (which
    # models workers who err alike) is a candidate, and among the candidates
    # the likelihood cannot tell apart the one that overrules majority vote on
    # the fewest items wins. Measured: within a point of majority vote on 6
    # of these 8 seeds (seed 2 still takes minimax, 11 points below; on seed
    # 5 EBCC itself is 1.2 below).
    within, trapped = 0, 0
    for seed in range(8):
        items, workers, labels, truth = _clique_crowd(seed)
        mv = _acc(MajorityVote().fit(items, workers, labels), truth)
        ds = _acc(DawidSkene().fit(items, workers, labels), truth)
        trapped += ds < mv - 0.05  # the trap is real
        auto = Auto().fit(items, workers, labels)
        within += _acc(auto, truth) >= mv - 0.01
    assert trapped == 8
    assert within >= 6


def test_one_se_choice_prefers_the_candidate_closest_to_majority_vote():
    from assay.quality.auto import one_se_choice

    rng = np.random.default_rng(0)
    base = rng.normal(-0.5, 0.3, 2000)
    lp = {name: base + shift + rng.normal(0, 0.2, base.size)
          for name, shift in (("mv", -0.2), ("mace", 0.0), ("ds", 0.0005), ("ebcc", 0.001))}
    habits = base - 0.3
    best = max(lp, key=lambda n: lp[n].mean())
    for name in ("mace", "ds", "ebcc"):  # the three rich ones tie: within one standard error of the best
        d = lp[best] - lp[name]
        assert d.mean() <= d.std(ddof=1) / np.sqrt(d.size)
    assert one_se_choice(lp, habits) == "mace"  # no departures: the simplest of the tied
    assert one_se_choice(lp, habits, {"mv": 0, "mace": 300, "ds": 310, "ebcc": 120}) == "ebcc"
    assert one_se_choice(lp, habits, {"mv": 0, "mace": 120, "ds": 310, "ebcc": 120}) == "mace"  # a tie: simplest
    # a candidate that departs nowhere *is* majority vote
    assert one_se_choice(lp, habits, {"mv": 0, "mace": 0, "ds": 310, "ebcc": 120}) == "mv"
    # a clear winner is taken however far it departs
    lp["ds"] = lp["ds"] + 0.2
    assert one_se_choice(lp, habits, {"mv": 0, "mace": 10, "ds": 900, "ebcc": 5}) == "ds"


# ------------------------------------------------------------ real crowds

#: best published accuracy on the original seven shared sets (../shared/data/README.md)
BEST_PUBLISHED = {"d_product": 0.940, "d_possent": 0.961, "s_rel": 0.616, "duck": 0.917, "rte": 0.931,
                  "web": 0.822, "sentiment_polarity": 0.917}


def _real_accuracy(folder, method):
    import pandas as pd

    from assay.quality import aggregate

    a = pd.read_csv(folder / "answers.csv", dtype=str, keep_default_na=False)
    t = pd.read_csv(folder / "truth.csv", dtype=str, keep_default_na=False)
    r = aggregate(a["item"].to_numpy(), a["worker"].to_numpy(), a["label"].to_numpy(), method=method)
    pred = pd.Series(r.labels, index=r.item_ids)
    t = t[t["item"].isin(pred.index)]
    acc = float((pred.loc[t["item"]].to_numpy() == t["label"].to_numpy()).mean())
    if method != "mv":
        return acc
    # majority vote with ties split at random, as the literature counts it
    proba = pd.DataFrame(r.proba, index=r.item_ids, columns=r.classes).loc[t["item"]].to_numpy()
    tied = np.isclose(proba, proba.max(axis=1, keepdims=True))
    col = pd.Index(r.classes).get_indexer(t["label"])
    split = np.where(tied[np.arange(len(t)), col], 1.0 / tied.sum(axis=1), 0.0)
    return max(acc, float(split.mean()))


@pytest.mark.slow
def test_auto_on_every_shared_crowd(shared_data):
    """The bar of issue 13: never more than a point below majority vote on
    any shared crowd (``zencrowd_us`` included), and within half a point of
    the best published figure on the original seven."""
    sets = sorted(p.name for p in (shared_data / "crowd").iterdir() if (p / "truth.csv").is_file())
    assert set(BEST_PUBLISHED) <= set(sets) and "zencrowd_us" in sets
    failures = []
    for name in sets:
        folder = shared_data / "crowd" / name
        auto, mv = _real_accuracy(folder, "auto"), _real_accuracy(folder, "mv")
        if auto < mv - 0.01:
            failures.append((name, "below majority vote", auto, mv))
        if name in BEST_PUBLISHED and auto < BEST_PUBLISHED[name] - 0.005:
            failures.append((name, "below the best published figure - 0.5", auto, BEST_PUBLISHED[name]))
    assert not failures, failures
