"""The hostile annotator against skill-aware routing (``routing = 'skill'``):
gold still cannot be told from real work, the setting is not shown to
annotators, and whoever asks gets work while any is left for them. Real
uvicorn server over HTTP, SQLite and PostgreSQL; the workspace is read
directly only to set the stage and to check what really happened."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
from sqlalchemy import text

from _server import LiveServer
from assay.engine import handout, ledger, redundancy
from factories import project_with_annotators, task_rows
from test_hostile_annotator import GOLD_KEYS, _client, _features, _gold_project, _observe, _tells, _user


def _fit(ws, p, users, seed=0) -> None:
    """What a re-fit leaves: a confusion per annotator and a posterior per item
    (random, so that routing's choice really differs from the pool's order)."""
    rng = np.random.default_rng(seed)
    with ws.db.read() as conn:
        items = [r.item_id for r in conn.execute(text(
            "SELECT item_id FROM tasks WHERE project_id = :p AND NOT is_gold"), {"p": p["id"]})]
    with ws.db.write() as conn:
        redundancy.store_skills(conn, p["id"], [
            {"u": u["id"], "c": [[a, 1 - a], [1 - a, a]], "a": a, "n": 40}
            for u, a in zip(users, rng.uniform(0.6, 0.95, len(users)))])
        post = rng.dirichlet([0.6, 0.6], size=len(items))
        ledger.upsert_consensus(conn, [
            {"p": p["id"], "i": i, "label": "pos", "conf": float(post[j].max()),
             "lp": np.log(np.maximum(post[j], 1e-12)).tolist(), "n": 1, "status": "open", "now": 0.0}
            for j, i in enumerate(items)])


@pytest.mark.slow  # a few seconds an instance, like the unrouted one
def test_a_hostile_annotator_cannot_tell_gold_from_routed_work(ws):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    # as in the unrouted test: more gold than is drawn, so that the pool never runs dry
    p, ids, gold_ids = _gold_project(ws, n=450, n_gold=180, rate=0.25, name="rg")
    eve = _user(ws, "eve", project_id=p["id"])
    ws.update_project(p["id"], routing="skill")
    _fit(ws, p, [eve])
    with LiveServer(ws) as srv, _client(srv) as c:
        view = c.get(f"/api/projects/{p['id']}", headers=eve["h"]).json()
        assert not set(view) & {*GOLD_KEYS, "routing", "routing_random_share"}, view
        rows = _observe(c, p["id"], eve["h"])
    y = np.array([r["task"]["item"]["id"] in gold_ids for r in rows])
    assert 45 <= y.sum() <= 150 and len(rows) == 270 + y.sum()
    assert len({(tuple(sorted(r["task"])), tuple(sorted(r["task"]["item"]))) for r in rows}) == 1
    X = _features(rows)
    # routing really chose: real work did not go out in the pool's order
    with ws.db.read() as conn:
        order = [r.id for r in conn.execute(text(
            f"SELECT t.id FROM tasks t WHERE t.project_id = :p AND NOT t.is_gold ORDER BY {ledger.POOL_ORDER}"),
            {"p": p["id"]})]
    handed = [int(x) for x in X[~y, 0]]
    assert handed != order[:len(handed)]
    assert len({tuple(X[i, 9:12]) for i in range(len(rows))}) == 1
    proba = cross_val_predict(RandomForestClassifier(n_estimators=200, random_state=0), X, y,
                              cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")[:, 1]
    auc = roc_auc_score(y, proba)
    assert auc < 0.65, f"gold is told apart from routed work: AUC {auc:.3f}; {_tells(X, y)}"
    print(f"hostile classifier AUC {auc:.3f} (routed); {_tells(X, y)}")


def _left_for(ws, p, user) -> int:
    """Tasks ``user`` could still be handed (the hand-out's own conditions)."""
    with ws.db.read() as conn:
        return len(conn.execute(handout.ANY_CANDIDATE, {"project": p["id"], "user": user["id"]}).all())


def test_whoever_asks_gets_routed_work_while_any_is_left(ws):
    p, _ = project_with_annotators(ws, 30, 0, overlap=2, name="rw")
    ws.update_project(p["id"], routing="skill", routing_random_share=0.0)
    anns = [_user(ws, f"rw-{i}", project_id=p["id"]) for i in range(6)]
    _fit(ws, p, anns, seed=3)
    got: dict[int, int] = {a["id"]: 0 for a in anns}
    refused: list[tuple[int, int]] = []
    errors: list[str] = []

    def work(a):
        rnd = random.Random(a["id"])
        with _client(srv) as c:
            while True:
                r = c.post(f"/api/projects/{p['id']}/tasks/next", headers=a["h"])
                if r.status_code != 200:
                    errors.append(r.text)
                    return
                task = r.json()["task"]
                if task is None:
                    refused.append((a["id"], _left_for(ws, p, a)))
                    return
                s = c.post(f"/api/tasks/{task['id']}/answers", json={"label": rnd.choice(["pos", "neg"])},
                           headers=a["h"])
                if s.status_code != 201:
                    errors.append(s.text)
                    return
                got[a["id"]] += 1

    with LiveServer(ws) as srv:
        threads = [threading.Thread(target=work, args=(a,)) for a in anns]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert not errors, errors[:3]
    # nobody was sent away while a task they could take was left
    assert len(refused) == len(anns) and all(left == 0 for _, left in refused), refused
    # every slot went out exactly once, nobody answered an item twice
    rows = task_rows(ws, p["id"])
    assert sum(got.values()) == sum(t.answer_count for t in rows) == 30 * 2
    assert all(t.open_slots == 0 and t.answer_count == 2 for t in rows)
    with ws.db.read() as conn:
        dup = conn.execute(text("SELECT count(*) FROM (SELECT task_id, annotator_id FROM answers "
                                "GROUP BY task_id, annotator_id HAVING count(*) > 1) x")).scalar_one()
    assert dup == 0
