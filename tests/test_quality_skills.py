"""Annotator skill per class and per class pair with its uncertainty
(assay.quality.skills): recovers planted confusions, shrinks what few answers
cannot tell, and on real crowds predicts an annotator's later answers better
than one accuracy per person or one confusion for everyone."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from assay.errors import InvalidInput
from assay.quality.skills import confused_pairs, estimate_skills


def _crowd(rng, n_workers=12, per_worker=300, k=4, planted=None):
    """Annotators 85 % right; ``planted``: worker -> (truth, answer) they swap 60 % of the time."""
    w, t, y = [], [], []
    for a in range(n_workers):
        for _ in range(per_worker):
            truth = int(rng.integers(k))
            ans = truth if rng.random() < 0.85 else int(rng.integers(k))
            if planted and a in planted and truth == planted[a][0] and rng.random() < 0.6:
                ans = planted[a][1]
            w.append(a), t.append(truth), y.append(ans)
    return np.array(w), np.array(t), np.array(y)


def test_finds_the_pair_each_annotator_confuses():
    rng = np.random.default_rng(0)
    planted = {0: (1, 2), 3: (0, 3), 7: (2, 0)}
    w, t, y = _crowd(rng, planted=planted)
    est = estimate_skills(w, t, y, n_classes=4)
    for a, (truth, answer) in planted.items():
        top = confused_pairs(est, a, top=1)[0]
        assert (top[0], top[1]) == (truth, answer)
        assert top[3] > 0.3  # sure of it: the interval's low end
    # an annotator with no planted weakness has no sure mistake of that size
    assert confused_pairs(est, 5, top=1)[0][3] < 0.2
    mean, low, high = est.class_skill()
    assert mean[0, 1] < mean[0, 0] and mean[0, 1] < mean[5, 1] - 0.2  # weaker on its planted class
    assert np.all(low <= mean) and np.all(mean <= high)


def test_few_answers_are_shrunk_and_less_sure():
    rng = np.random.default_rng(1)
    w, t, y = _crowd(rng, n_workers=10, per_worker=200)
    # a newcomer with 3 answers, all wrong the same way
    w = np.r_[w, [10, 10, 10]]
    t = np.r_[t, [0, 0, 0]]
    y = np.r_[y, [1, 1, 1]]
    est = estimate_skills(w, t, y, n_classes=4)
    # three answers do not make a 0 % annotator: the prior (crowd-like accuracy) still weighs
    assert 0.1 < est.confusion[10, 0, 0] < est.confusion[0, 0, 0]
    mean, low, high = est.class_skill()
    assert (high - low)[10, 0] > (high - low)[0, 0]  # fewer answers, wider interval
    # rows the newcomer never answered follow the prior: their accuracy, the crowd's kind of mistakes
    assert est.confusion[10, 2].argmax() == 2
    # an annotator code with no answers at all gets a valid (prior) row
    est2 = estimate_skills(w, t, y, n_classes=4, n_workers=12)
    assert np.allclose(est2.confusion[11].sum(axis=1), 1.0)


def test_bad_input_is_refused():
    with pytest.raises(InvalidInput, match="same length"):
        estimate_skills([0, 1], [0], [0, 1])
    with pytest.raises(InvalidInput, match="integer codes"):
        estimate_skills([0, 1], [0, -1], [0, 1])
    with pytest.raises(InvalidInput, match="n_classes"):
        estimate_skills([0], [3], [0], n_classes=2)
    with pytest.raises(InvalidInput, match="two classes"):
        estimate_skills([0], [0], [0], n_classes=1)


def _bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "quality" / "bench_skills.py"
    spec = importlib.util.spec_from_file_location("bench_skills", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", ["web", "s_rel"])
def test_skills_from_first_answers_predict_later_ones_on_real_crowds(shared_data, name):
    bench = _bench()
    bench.DATA = shared_data / "crowd"
    for n in (10, 20, 50):
        r = bench.score(name, n)
        assert r["annotators"] >= 20, r
        assert r["skills"] > max(r["crowd"], r["accuracy"], r["own"]), r


def test_skill_map_of_a_project_over_http(ws):
    """Gold shows who confuses which classes; staff read the map, annotators may not."""
    from fastapi.testclient import TestClient

    from assay.server import create_app
    from factories import answer_item, item_ids, project_with_annotators

    classes = ("cat", "dog", "fox")
    p, people = project_with_annotators(ws, 90, 3, overlap=3, classes=classes)
    ids = item_ids(ws, p["dataset_id"])
    truth = {i: classes[j % 3] for j, i in enumerate(ids)}
    good, dog_fox, other = people
    for i in ids:
        answer_item(ws, p["id"], i, good, truth[i])
        # this one takes every dog for a fox
        answer_item(ws, p["id"], i, dog_fox, "fox" if truth[i] == "dog" else truth[i])
        answer_item(ws, p["id"], i, other, truth[i] if i % 5 else classes[(classes.index(truth[i]) + 1) % 3])
    ws.import_gold(p["id"], [{"item_id": i, "label": truth[i]} for i in ids[:60]])
    m = ws.skill_map(p["id"])
    assert m["classes"] == list(classes)
    assert m["truth_basis"]["gold"] == 60 and m["truth_basis"]["consensus"] > 0
    row = {a["user_id"]: a for a in m["annotators"]}
    weak = row[dog_fox["id"]]
    assert weak["confused"][0]["truth"] == "dog" and weak["confused"][0]["answer"] == "fox"
    dog = {c["class"]: c for c in weak["classes"]}["dog"]
    assert dog["skill"] < 0.5 and dog["interval"][0] <= dog["skill"] <= dog["interval"][1]
    assert {c["class"]: c for c in row[good["id"]]["classes"]}["dog"]["skill"] > 0.8
    admin, tok = ws.add_user("boss", "admin")
    _, ann_tok = ws.add_user("peek", "annotator")
    ws.add_member(p["id"], "peek")
    with TestClient(create_app(ws, reclaim_interval=0, refit_interval=0)) as c:
        r = c.get(f"/api/projects/{p['id']}/skills", headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 200, r.text
        assert r.json()["annotators"] == m["annotators"]
        # an annotator must not see who is weak at what (nor the truth it rests on)
        r = c.get(f"/api/projects/{p['id']}/skills", headers={"Authorization": f"Bearer {ann_tok}"})
        assert r.status_code == 403
        bad = c.get(f"/api/projects/{p['id']}/skills", headers={"Authorization": f"Bearer {tok}"},
                    params={"min_confidence": 2})
        assert bad.status_code == 422
