"""Probable label errors: the confident-learning flags and the crowd score
(assay.quality.label_errors) on synthetic noise with known flipped labels,
and Workspace.label_errors / ``assay project label-errors`` on both DBs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assay.errors import InvalidInput
from assay.quality.label_errors import (
    RULES, class_thresholds, confident_joint, crowd_label_errors, find_label_errors, label_quality,
)
from factories import answer_item, item_ids, predict, project_with_annotators, run_cli


def _noisy(seed: int, n: int = 2000, k: int = 3, noise: float = 0.2):
    """Separable-ish classes, ``noise`` of the given labels flipped to another
    class, and the in-loop model's out-of-fold probabilities fitted on them."""
    from assay.learn.model import EmbeddingClassifier

    rng = np.random.default_rng(seed)
    truth = rng.integers(k, size=n)
    centers = rng.normal(0, 2.0, (k, 6))
    X = centers[truth] + rng.normal(0, 1.0, (n, 6))
    given = truth.copy()
    flip = rng.random(n) < noise
    given[flip] = (truth[flip] + rng.integers(1, k, flip.sum())) % k
    pp = EmbeddingClassifier(random_state=seed).fit(X, given, k).oof_proba_
    return given, truth, pp


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_flags_find_flipped_labels_far_above_chance(seed):
    given, truth, pp = _noisy(seed)
    wrong = given != truth
    res = find_label_errors(given, pp)
    tp = (res.is_error & wrong).sum()
    precision, recall = tp / res.is_error.sum(), tp / wrong.sum()
    # chance: a random flag is wrong with the noise rate (~0.2); recall = share flagged
    assert precision > 3 * wrong.mean()
    assert recall > 2 * res.is_error.mean() and recall > 0.6
    # the estimate of how many labels are wrong is in the right range
    assert 0.6 * wrong.sum() < res.n_estimated < 1.6 * wrong.sum()
    # the ranking: the wrong labels come first far more often than chance
    top = res.order[: wrong.sum()]
    assert wrong[top].mean() > 3 * wrong.mean()


def test_every_rule_beats_chance_and_both_is_a_subset():
    given, truth, pp = _noisy(3)
    wrong = given != truth
    flags = {r: find_label_errors(given, pp, rule=r).is_error for r in RULES}
    for r, f in flags.items():
        assert (f & wrong).sum() / max(f.sum(), 1) > 2 * wrong.mean(), r
    assert not (flags["both"] & ~flags["noise_rate"]).any()
    assert not (flags["both"] & ~flags["by_class"]).any()


def test_perfect_probabilities_flag_exactly_the_flips():
    rng = np.random.default_rng(0)
    truth = rng.integers(3, size=300)
    given = truth.copy()
    flip = rng.random(300) < 0.15
    given[flip] = (truth[flip] + 1) % 3
    pp = np.full((300, 3), 0.05)
    pp[np.arange(300), truth] = 0.9
    res = find_label_errors(given, pp)
    assert (res.is_error == flip).all()
    assert res.n_estimated == flip.sum()
    assert set(res.order[: flip.sum()]) == set(np.flatnonzero(flip))
    assert (res.suggested == truth).all()


def test_thresholds_joint_and_quality_by_hand():
    given = np.array([0, 0, 1, 1])
    pp = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.4, 0.6]])
    assert np.allclose(class_thresholds(given, pp), [0.6, 0.7])
    # item 1 (given 0) is confidently 1 (0.7 >= 0.7); item 3 (given 1) is of neither
    assert np.array_equal(confident_joint(given, pp, calibrate=False), [[1, 1], [0, 1]])
    assert np.allclose(label_quality(given, pp), [0.9, 0.3, 0.8, 0.6])


@pytest.mark.parametrize("bad", [
    {"labels": [0, 1], "pred_probs": [[0.5, 0.5]]},
    {"labels": [0, 2], "pred_probs": [[0.5, 0.5], [0.5, 0.5]]},
    {"labels": [0, 1], "pred_probs": [[0.5, 0.6], [0.5, 0.5]]},
    {"labels": [0.5, 1], "pred_probs": [[0.5, 0.5], [0.5, 0.5]]},
    {"labels": [0], "pred_probs": [[1.0]]},
])
def test_bad_input_is_refused_clearly(bad):
    with pytest.raises(InvalidInput):
        find_label_errors(**bad)
    with pytest.raises(InvalidInput, match="rule"):
        find_label_errors([0, 1], [[0.5, 0.5], [0.5, 0.5]], rule="nope")


def test_crowd_score_ranks_wrong_consensus_first():
    """Three answers per item from workers 65-85 % right; the model's
    probabilities are informative. Items whose consensus is wrong get a
    lower quality than the rest (AUROC well above 0.5)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    n, k = 1500, 2
    truth = rng.integers(k, size=n)
    acc = rng.uniform(0.65, 0.85, 30)
    items, workers, labels = [], [], []
    for i in range(n):
        for w in rng.choice(30, 3, replace=False):
            items.append(i)
            workers.append(w)
            labels.append(truth[i] if rng.random() < acc[w] else 1 - truth[i])
    logit = np.where(truth == 1, 1.0, -1.0) * 1.2 + rng.normal(0, 1.2, n)
    p1 = 1 / (1 + np.exp(-logit))
    pp = np.stack([1 - p1, p1], axis=1)
    res = crowd_label_errors(items, workers, labels, pp)
    wrong = res.consensus != truth
    assert 0 < wrong.sum() < n * 0.3
    assert roc_auc_score(wrong, -res.quality) > 0.75
    assert np.allclose(res.proba.sum(axis=1), 1.0)
    assert wrong[res.order[: wrong.sum()]].mean() > 2 * wrong.mean()


def _model_project(ws, n=40):
    """One annotator labels every item; items 0, 3, 6 of the first twelve get the
    wrong class while the stored model prediction says the true one."""
    p, (ann,) = project_with_annotators(ws, n, 1, name="le")
    ids = sorted(item_ids(ws, p["dataset_id"]))
    truth = {i: ("pos", "neg")[j % 2] for j, i in enumerate(ids)}
    wrong = {ids[0], ids[3], ids[6]}
    for i in ids:
        right = truth[i]
        answer_item(ws, p["id"], i, ann, ("neg" if right == "pos" else "pos") if i in wrong else right)
    predict(ws, p["id"], {i: (truth[i], 0.9 if truth[i] == "pos" else 0.1) for i in ids})
    return p, ids, truth, wrong


def test_workspace_model_method_flags_the_wrong_answers(ws):
    p, ids, truth, wrong = _model_project(ws)
    r = ws.label_errors(p["id"])
    assert r["method"] == "model" and r["items_scored"] == len(ids)
    flagged = {it["item_id"] for it in r["items"] if it["flagged"]}
    assert flagged == wrong and r["flagged"] == 3
    assert {it["item_id"] for it in r["items"][:3]} == wrong
    top = r["items"][0]
    assert top["suggested"] == truth[top["item_id"]] and top["label"] != top["suggested"]
    assert top["quality"] < 0.5 < r["items"][-1]["quality"]
    assert len(ws.label_errors(p["id"], limit=5)["items"]) == 5
    with pytest.raises(InvalidInput, match="method"):
        ws.label_errors(p["id"], method="magic")
    with pytest.raises(InvalidInput, match="limit"):
        ws.label_errors(p["id"], limit=0)


def test_workspace_crowd_method_and_reviewed_items_left_out(ws):
    p, people = project_with_annotators(ws, 30, 3, overlap=3, name="lc")
    ids = sorted(item_ids(ws, p["dataset_id"]))
    truth = {i: ("pos", "neg")[j % 2] for j, i in enumerate(ids)}
    split = set(ids[:4])  # two of three people answer wrongly here
    for i in ids:
        for n, u in enumerate(people):
            lab = truth[i] if not (i in split and n < 2) else ("neg" if truth[i] == "pos" else "pos")
            answer_item(ws, p["id"], i, u, lab)
    predict(ws, p["id"], {i: (truth[i], 0.95 if truth[i] == "pos" else 0.05) for i in ids})
    r = ws.label_errors(p["id"], limit=None)
    assert r["method"] == "crowd" and r["items_scored"] == 30
    assert {it["item_id"] for it in r["items"][:4]} == split
    assert all(it["answers"] == 3 for it in r["items"])
    boss, _ = ws.add_user("le-boss", "reviewer")
    ws.add_member(p["id"], boss["id"])
    ws.review(p["id"], ids[0], truth[ids[0]], boss)
    r2 = ws.label_errors(p["id"], limit=None)
    assert r2["items_scored"] == 29 and ids[0] not in {it["item_id"] for it in r2["items"]}


def test_model_method_without_predictions_and_wrong_kind_say_why(ws):
    p, (ann,) = project_with_annotators(ws, 4, 1, name="np")
    for i in item_ids(ws, p["dataset_id"]):
        answer_item(ws, p["id"], i, ann, "pos")
    with pytest.raises(InvalidInput, match="prediction"):
        ws.label_errors(p["id"])
    m, _ = project_with_annotators(ws, 3, 1, name="ml", kind="multi")
    with pytest.raises(InvalidInput, match="one class per item"):
        ws.label_errors(m["id"])


def test_cli_lists_the_probable_errors(home, tmp_path):
    from assay.workspace import Workspace

    assert run_cli("init").exit_code == 0
    with Workspace(home) as ws:
        p, ids, truth, wrong = _model_project(ws)
    r = run_cli("project", "label-errors", "le", "--limit", "3")
    assert r.exit_code == 0, r.output
    assert "3 flagged" in r.output
    assert sum(line.startswith("! item") for line in r.output.splitlines()) == 3
    r = run_cli("project", "label-errors", "le", "--json", "--limit", "40")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert {it["item_id"] for it in data["items"] if it["flagged"]} == wrong
    r = run_cli("project", "label-errors", "le", "--method", "nope")
    assert r.exit_code != 0 and "method" in r.output


def test_http_label_errors_for_staff_only(ws):
    from fastapi.testclient import TestClient

    from assay.server import create_app

    p, ids, truth, wrong = _model_project(ws)
    _, admin_tok = ws.add_user("le-root", "admin")
    ann = ws.get_user("le-ann0")
    ann_tok = ws.create_token(ann["id"])
    url = f"/api/projects/{p['id']}/label-errors"
    with TestClient(create_app(ws, reclaim_interval=0)) as c:
        assert c.get(url).status_code == 401
        assert c.get(url, headers={"Authorization": f"Bearer {ann_tok}"}).status_code == 403
        r = c.get(url, params={"limit": 3}, headers={"Authorization": f"Bearer {admin_tok}"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["method"] == "model" and body["flagged"] == 3
        assert {it["item_id"] for it in body["items"]} == wrong
        bad = c.get(url, params={"method": "x"}, headers={"Authorization": f"Bearer {admin_tok}"})
        assert bad.status_code in (400, 422) and "method" in bad.text


def test_reviewers_verdicts_move_the_crowd_ranking(ws):
    """Two annotators disagree on ten items, the model cannot tell (0.5 / 0.5).
    Unreviewed, the fit does not side with A there. Once a reviewer sides
    with A on six of them, B's skill drops and the other four go to A's
    label, confidently."""
    p, (a, b) = project_with_annotators(ws, 30, 2, overlap=2, name="rv")
    ids = sorted(item_ids(ws, p["dataset_id"]))
    for j, i in enumerate(ids):
        answer_item(ws, p["id"], i, a, "pos")
        answer_item(ws, p["id"], i, b, "neg" if j < 10 else "pos")
    predict(ws, p["id"], {i: ("pos", 0.5) for i in ids})
    before = {it["item_id"]: it for it in ws.label_errors(p["id"], limit=None)["items"]}
    # unreviewed, A (who always says pos) looks no better than B: not a confident pos
    assert not any(before[i]["label"] == "pos" and before[i]["quality"] > 0.7 for i in ids[6:10])
    boss, _ = ws.add_user("rv-boss", "reviewer")
    ws.add_member(p["id"], boss["id"])
    for i in ids[:6]:
        ws.review(p["id"], i, "pos", boss)
    after = {it["item_id"]: it for it in ws.label_errors(p["id"], limit=None)["items"]}
    assert len(after) == 24
    for i in ids[6:10]:
        assert after[i]["label"] == "pos" and after[i]["quality"] > 0.7, after[i]
