"""The target that matches a k-vote majority (assay.quality.matching), the
model as a per-item prior in Dawid-Skene, and both inside the ML loop."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assay.errors import InvalidInput
from assay.learn.step import ml_step
from assay.quality import DawidSkene
from assay.quality.matching import baseline_accuracy, matching_target, predicted_accuracy
from factories import answer_item, embedded_dataset


def _one_coin(p: float, k: int = 2) -> np.ndarray:
    c = np.full((1, k, k), (1 - p) / (k - 1))
    np.fill_diagonal(c[0], p)
    return c


@pytest.mark.parametrize("p", [0.6, 0.8, 0.95])
def test_baseline_accuracy_is_the_closed_form_majority(p):
    # binary, symmetric: the majority of 3 is right when 2 or 3 are right
    got = baseline_accuracy([0.5, 0.5], _one_coin(p), [1.0], k=3, n=40000, seed=1)
    assert got == pytest.approx(3 * p**2 - 2 * p**3, abs=0.01)


def test_ten_classes_and_ties_are_broken_at_random():
    # 3 answers from a 0.69-accurate annotator over 10 classes: 2+ right, or
    # three different answers one of which is right and wins the tie 1 in 3
    p = 0.69
    exact = 3 * p**2 * (1 - p) + p**3 + 3 * p * (1 - p) ** 2 * (8 / 9) * (1 / 3)
    got = baseline_accuracy(np.full(10, 0.1), _one_coin(p, 10), [1.0], k=3, n=60000, seed=2)
    assert got == pytest.approx(exact, abs=0.01)


def test_higher_targets_predict_more_accurate_labels():
    lp = np.zeros((4000, 2))
    accs = [predicted_accuracy(lp, np.zeros(4000), np.ones(4000, bool), _one_coin(0.8), [1.0], tau=t,
                               max_answers=7, seed=0) for t in (0.75, 0.9, 0.97, 0.995)]
    assert accs == sorted(accs) and accs[-1] > accs[0] + 0.1
    # finished items keep their labels: no answers drawn for them
    done = predicted_accuracy(lp, np.zeros(4000), np.zeros(4000, bool), _one_coin(0.8), [1.0], tau=0.99,
                              max_answers=7, seed=0)
    assert done == pytest.approx(0.5, abs=0.03)


def test_the_matching_target_reaches_the_majority_in_a_real_replay():
    """Pick the target on a crowd model, then run that policy on answers drawn
    from a crowd that really is that model: its accuracy must reach the
    3-vote majority's on the same items, with fewer answers."""
    rng = np.random.default_rng(5)
    skills = rng.uniform(0.55, 0.95, 30)
    conf = np.stack([_one_coin(s)[0] for s in skills])
    w = np.ones(30)
    n = 6000
    tau, pred, base = matching_target(np.zeros((n, 2)), np.zeros(n), np.ones(n, bool), [0.5, 0.5], conf, w,
                                      max_answers=5, k=3, seed=0)
    assert 0.5 <= tau < 0.99 and pred >= base
    truth = rng.integers(2, size=n)
    right_policy = right_mv = used = 0
    for i in range(n):
        who = rng.choice(30, 5, replace=False)
        ans = [truth[i] if rng.random() < skills[x] else 1 - truth[i] for x in who]
        lp = np.zeros(2)
        for x, a in zip(who, ans):
            lp += np.log(conf[x][:, a])
            used += 1
            if np.exp(lp.max()) / np.exp(lp).sum() >= tau:
                break
        right_policy += lp.argmax() == truth[i]
        right_mv += round(np.mean(ans[:3])) == truth[i]
    assert right_policy / n >= right_mv / n - 0.01
    assert used < 3 * n


def test_matching_target_checks_its_inputs():
    with pytest.raises(InvalidInput):
        baseline_accuracy([0.5, 0.5], np.ones((2, 2)), [1.0])
    with pytest.raises(InvalidInput):
        baseline_accuracy([0.5, 0.5], _one_coin(0.8), [0.0])


def test_a_per_item_prior_lets_single_answers_teach_skills():
    """Every item answered once: without a prior Dawid-Skene cannot tell good
    from bad annotators (each only agrees with itself); with a good per-item
    prior (a model's held-out prediction) it can."""
    rng = np.random.default_rng(0)
    n, acc = 4000, np.array([0.95, 0.6])
    truth = rng.integers(2, size=n)
    worker = rng.integers(2, size=n)
    label = np.where(rng.random(n) < acc[worker], truth, 1 - truth)
    prior = np.full((n, 2), 0.15)
    prior[np.arange(n), truth] = 0.85
    with_prior = DawidSkene().fit(np.arange(n), worker, label, item_prior=prior)
    plain = DawidSkene().fit(np.arange(n), worker, label)
    est = lambda m: np.array([np.mean(np.diag(m.confusion_[w])) for w in range(2)])  # noqa: E731
    assert np.abs(est(with_prior) - acc).max() < 0.05
    assert np.abs(est(plain) - acc).max() > 0.2
    # rows of NaN fall back to the class prior; bad shapes are refused
    half = prior.copy()
    half[::2] = np.nan
    assert np.abs(est(DawidSkene().fit(np.arange(n), worker, label, item_prior=half)) - acc).max() < 0.1
    with pytest.raises(InvalidInput):
        DawidSkene().fit(np.arange(n), worker, label, item_prior=prior[:, :1])
    with pytest.raises(InvalidInput):
        DawidSkene().fit(np.arange(n), worker, label, item_prior=prior * 2)


def test_target_match_needs_a_model_and_adaptive_redundancy(ws):
    ds, ids, y = embedded_dataset(ws, 60, seed=1)
    fixed = ws.create_project("fixed", ds["id"], ["a", "b"], overlap=1)
    with pytest.raises(InvalidInput):
        ws.update_project(fixed["id"], ml_space="f", target_match=3)
    p = ws.create_project("p", ds["id"], ["a", "b"], overlap=1, target_confidence=0.95, max_answers=5)
    with pytest.raises(InvalidInput):
        ws.update_project(p["id"], target_match=3)  # no model
    for bad in (0, 2.5, True, "3"):
        with pytest.raises(InvalidInput):
            ws.update_project(p["id"], ml_space="f", target_match=bad)
    assert ws.get_project(p["id"])["target_match"] is None
    assert ws.update_project(p["id"], ml_space="f", target_match=3)["target_match"] == 3


def test_ml_step_sets_the_matching_target_and_model_informed_skills(ws):
    n = 800
    ds, ids, y = embedded_dataset(ws, n, seed=4)
    p = ws.create_project("p", ds["id"], ["a", "b"], overlap=1, target_confidence=0.95, max_answers=5)
    ws.update_project(p["id"], ml_space="f", auto_label_target=None, target_match=3)
    for u in range(6):
        ws.add_user(f"u{u}", role="annotator")
        ws.add_member(p["id"], f"u{u}")
    rng = np.random.default_rng(0)
    skill = [0.95, 0.9, 0.85, 0.8, 0.75, 0.7]
    answered = 0
    for _ in range(700):  # people answer what the hand-out gives them
        u = int(rng.integers(6))
        t = ws.next_task(p["id"], f"u{u}")
        if t is None:
            continue
        i = ids.index(t["item"]["id"])
        lab = y[i] if rng.random() < skill[u] else 1 - y[i]
        ws.submit(t["id"], f"u{u}", "ab"[lab])
        answered += 1
        if answered in (200, 500):
            ws.refit_quality(p["id"])  # as the server does in the background
            step = ml_step(ws, p["id"])
    assert step["version"] is not None and step["skills_refit"] >= 4
    assert 0.5 <= step["target"] <= 0.99
    assert ws.get_project(p["id"])["target_confidence"] == pytest.approx(step["target"])
    with ws.db.read() as conn:
        from sqlalchemy import text

        acc = dict(conn.execute(text("SELECT annotator_id, accuracy FROM annotator_skills WHERE project_id = :p"),
                                {"p": p["id"]}).all())
    users = {u["username"]: u["id"] for u in ws.list_users()}
    # the best annotator is estimated better than the worst
    assert acc[users["u0"]] > acc[users["u5"]]


def test_a_tasks_own_target_replaces_the_projects(ws):
    ds, ids, y = embedded_dataset(ws, 4, seed=2)
    p = ws.create_project("p", ds["id"], ["a", "b"], overlap=1, target_confidence=0.6, max_answers=5)
    ws.add_user("ann", role="annotator")
    ws.add_member(p["id"], "ann")
    from sqlalchemy import text

    with ws.db.write() as conn:
        conn.execute(text("UPDATE tasks SET target = 0.99 WHERE project_id = :p AND item_id = :i"),
                     {"p": p["id"], "i": ids[1]})
    for i in ids[:2]:
        answer_item(ws, p["id"], i, "ann", "a")
    # one answer from an annotator nobody knows yet: 2/3 sure, enough for 0.6 only
    with ws.db.read() as conn:
        rows = dict(conn.execute(text("SELECT item_id, needed FROM tasks WHERE project_id = :p"),
                                 {"p": p["id"]}).all())
        status = dict(conn.execute(text("SELECT item_id, status FROM item_consensus WHERE project_id = :p"),
                                   {"p": p["id"]}).all())
    assert status[ids[0]] == "resolved" and rows[ids[0]] == 1
    assert status[ids[1]] == "open" and rows[ids[1]] == 2  # its own 0.99: one more answer


def test_labels_that_check_auto_labels_are_held_to_a_stricter_target(ws):
    n = 160
    ds, ids, y = embedded_dataset(ws, n, seed=3)
    p = ws.create_project("p", ds["id"], ["a", "b"], overlap=1, target_confidence=0.9, max_answers=5)
    ws.update_project(p["id"], ml_space="f", auto_label_target=0.9, audit_rate=0.2)
    ws.import_gold(p["id"], [{"item_id": ids[i], "label": "ab"[y[i]]} for i in range(100)])
    step = ml_step(ws, p["id"])
    assert step["auto_state"] == "on" and step["auto_labeled"] > 5
    # a tenth of the auto-label error budget: 1 - 0.1 / 10
    assert step["verify_target"] == pytest.approx(0.99)
    from sqlalchemy import text

    from assay.learn.step import validation_mask

    with ws.db.read() as conn:
        strict = {r.item_id for r in conn.execute(text(
            "SELECT item_id FROM tasks WHERE project_id = :p AND target = 0.99"), {"p": p["id"]})}
        audits = {r.item_id for r in conn.execute(text(
            "SELECT item_id FROM auto_labels WHERE project_id = :p AND audit"), {"p": p["id"]})}
        suggested = {r.item_id for r in conn.execute(text(
            "SELECT item_id FROM predictions WHERE project_id = :p"), {"p": p["id"]})}
    val = {i for i, v in zip(ids, validation_mask(np.array(ids), n)) if v}
    assert audits and strict == val | audits
    assert not (val & suggested)  # people label them unaided: no suggestion shown
    from assay.learn.step import PRIORITY_VERIFY

    with ws.db.read() as conn:
        first = {r.priority for r in conn.execute(text(
            "SELECT priority FROM tasks WHERE project_id = :p AND target = 0.99 AND open_slots > 0"), {"p": p["id"]})}
    assert first == {PRIORITY_VERIFY}  # the certification waits on them: they are handed out first


def test_simulate_target_must_be_a_number_or_match(tmp_path):
    from typer.testing import CliRunner

    from assay.cli import app

    (tmp_path / "a.csv").write_text("item,worker,label\ni1,w1,a\ni1,w2,b\n")
    (tmp_path / "t.csv").write_text("item,label\ni1,a\n")
    base = ["simulate", "--answers", str(tmp_path / "a.csv"), "--truth", str(tmp_path / "t.csv")]
    for extra in (["--target", "most"], ["--target", "match"]):  # 'match' only with --ml
        res = CliRunner().invoke(app, base + extra)
        assert res.exit_code != 0 and "--target must be a number" in res.output
    res = CliRunner().invoke(app, base + ["--ml", "--target", "1.5", "--features", str(tmp_path / "f.npy"),
                                          "--feature-ids", str(tmp_path / "ids.txt")])
    assert res.exit_code != 0 and "--target" in res.output


def test_only_the_top_of_the_validation_share_needs_surer_labels():
    from assay.learn.autolabel import first_test_size
    from assay.learn.step import verification_region

    conf = np.random.default_rng(0).uniform(0.5, 1.0, 1000)
    first = first_test_size(0.95, 0.05)
    margin = int(np.ceil(first / 4))
    assert first == 118  # 2 * ceil(ln 0.05 / ln 0.95)
    r = verification_region(conf, None, 0.95)
    assert len(r) == first + margin
    assert conf[r].min() >= np.delete(conf, r).max()  # the most confident ones
    t = float(np.quantile(conf, 0.6))  # a certified threshold with 400 items above it
    r = verification_region(conf, t, 0.95)
    assert len(r) == int((conf >= t).sum()) + margin and conf[r].min() < t
    assert len(verification_region(conf[:50], None, 0.95)) == 50  # a small share: all of it


def test_the_refit_of_an_ml_project_learns_skills_with_the_model_prior(ws):
    from sqlalchemy import text

    from assay.learn.step import validation_mask
    from factories import answer_item

    n = 160
    ds, ids, y = embedded_dataset(ws, n, seed=4)
    p = ws.create_project("p", ds["id"], ["a", "b"], overlap=2, target_confidence=0.95, max_answers=3)
    ws.update_project(p["id"], ml_space="f")
    ws.import_gold(p["id"], [{"item_id": ids[i], "label": "ab"[y[i]]} for i in range(60)])
    val = validation_mask(np.array(ids), n)
    free = [j for j in range(60, n) if not val[j]]
    for name in ("u1", "u2", "solo"):
        ws.add_user(name, role="annotator")
        ws.add_member(p["id"], name)
    for j in free[:10]:  # two annotators on the same items
        for name in ("u1", "u2"):
            answer_item(ws, p["id"], ids[j], name, "ab"[y[j]])
    ml_step(ws, p["id"])  # the model's predictions
    for j in free[10:40]:  # one answer each, all right
        answer_item(ws, p["id"], ids[j], "solo", "ab"[y[j]])
    ws.refit_quality(p["id"])
    users = {u["username"]: u["id"] for u in ws.list_users()}
    with ws.db.read() as conn:
        acc = dict(conn.execute(text("SELECT annotator_id, accuracy FROM annotator_skills WHERE project_id = :p"),
                                {"p": p["id"]}).all())
        prior = conn.execute(text("SELECT prior FROM quality_models WHERE project_id = :p"),
                             {"p": p["id"]}).scalar_one()
    # answers alone say nothing about an annotator who never shares an item;
    # with the model's prior their 30 agreeing answers do
    assert users["solo"] in acc and acc[users["solo"]] > 0.8
    prior = json.loads(prior) if isinstance(prior, str) else prior
    assert min(prior) > 0.2  # two balanced classes: no collapse onto one
