"""Needle mining in a live project (issue 15 part 5, :meth:`Workspace.mine`):
from a few seed items, a round sends the items most like the rare case to
the front of the queue; people answer them as any task; the next round
learns from those answers (positives and rejections) and finds the rest.
Measured against the truth of a planted rare cluster, and over HTTP as an
admin would drive it (annotators may not). Both databases."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from sqlalchemy import text

from _server import LiveServer
from assay.errors import InvalidInput, NotFound
from factories import answer_item, item_ids, text_dataset


def _planted(ws, n=600, n_rare=12, seed=0):
    """Items whose 16-d vectors hold a rare class in two small clusters (as a rare case often is)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 1, (n, 16)).astype(np.float32)
    rare = rng.choice(n, n_rare, replace=False)
    centres = rng.normal(0, 1, (2, 16)) * 3
    X[rare] = centres[np.arange(n_rare) % 2] + rng.normal(0, 0.6, (n_rare, 16))
    ds = text_dataset(ws, "pool", [f"item {i}" for i in range(n)])
    ids = np.array(item_ids(ws, ds["id"]))
    ws.vectors.add("f", ids, X, {"model": "f", "kind": "given"})
    p = ws.create_project("needles", ds["id"], ["rare", "other"])
    u, tok = ws.add_user("ann", "annotator")
    ws.add_member(p["id"], u["id"])
    return p, ids, set(ids[rare].tolist()), u, tok


def _pinned(ws, p) -> dict[int, float]:
    with ws.db.read() as conn:
        return dict(conn.execute(text("SELECT item_id, pinned_priority FROM tasks WHERE project_id = :p "
                                      "AND pinned_priority IS NOT NULL"), {"p": p["id"]}).all())


def test_rounds_find_the_rare_items_and_learn_from_the_answers(ws):
    p, ids, rare, u, _ = _planted(ws)
    seeds = sorted(rare)[:2]  # one example of each cluster? not promised: the first two ids
    found, labels = set(seeds), 0
    rounds = []
    for _ in range(6):
        r = ws.mine(p["id"], "rare", seeds=seeds, batch=10)
        got = [x["item_id"] for x in r["items"]]
        assert len(got) == 10 and not set(got) & set(seeds)
        assert all(_pinned(ws, p)[i] == 10.0 for i in got)  # at the front of the queue
        for i in got:  # people answer: the truth
            answer_item(ws, p["id"], i, u, "rare" if i in rare else "other")
        labels += len(got)
        found |= set(got) & rare
        rounds.append(r)
        if len(found) == len(rare):
            break
    # the rounds read the answers: positives and rejections grow, nothing is proposed twice
    assert rounds[1]["positives"] > rounds[0]["positives"] and rounds[1]["negatives"] > 0
    proposed = [x["item_id"] for r in rounds for x in r["items"]]
    assert len(proposed) == len(set(proposed))
    # found >= 80 % of the rare items with <= 5x their number in labels (random: ~80 % of the pool)
    assert len(found) >= 0.8 * len(rare) and labels <= 5 * len(rare), (len(found), labels)


def test_bad_requests_change_nothing(ws):
    p, ids, rare, u, _ = _planted(ws)
    before = _pinned(ws, p)
    for kw, msg in (({"label": "nope", "seeds": [int(ids[0])]}, "not a class"),
                    ({"label": "rare"}, "no example of 'rare' yet"),
                    ({"label": "rare", "seeds": [999999]}, "999999"),
                    ({"label": "rare", "seeds": [int(ids[0])], "batch": 0}, "batch"),
                    ({"label": "rare", "seeds": ["1"]}, "whole numbers")):
        with pytest.raises(InvalidInput, match=msg):
            ws.mine(p["id"], **kw)
    assert _pinned(ws, p) == before == {}
    multi_ds = text_dataset(ws, "plain", ["a", "b"])
    q = ws.create_project("no vectors", multi_ds["id"], ["x", "y"])
    with pytest.raises(NotFound, match="no vectors"):
        ws.mine(q["id"], "x", seeds=item_ids(ws, multi_ds["id"])[:1])


def test_mining_over_http_feeds_the_hand_out(ws):
    p, ids, rare, u, tok = _planted(ws)
    _, admin = ws.add_user("boss", "admin")
    url = f"/api/projects/{p['id']}/mine"
    with LiveServer(ws) as srv, httpx.Client(base_url=srv.base, timeout=30) as c:
        seeds = sorted(rare)[:2]
        r = c.post(url, json={"label": "rare", "seeds": seeds, "batch": 5}, headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 403  # annotators cannot steer the queue
        r = c.post(url, json={"label": "nope", "seeds": seeds}, headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 400 and "not a class" in r.json()["error"]["message"]
        r = c.post(url, json={"label": "rare", "seeds": seeds, "batch": 5}, headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200, r.text
        mined = [x["item_id"] for x in r.json()["items"]]
        assert len(mined) == 5 and r.json()["tasks"] == 5
        # the annotator is handed the mined items first (and cannot tell why: no priority in the task)
        t = c.post(f"/api/projects/{p['id']}/tasks/next", headers={"Authorization": f"Bearer {tok}"}).json()["task"]
        assert t["item"]["id"] in mined and "priority" not in t


def test_mining_from_the_cli(ws, home):
    from factories import run_cli

    p, ids, rare, u, _ = _planted(ws)
    seeds = sorted(rare)[:2]
    r = run_cli("project", "mine", "needles", "rare", "--seed", str(seeds[0]), "--seed", str(seeds[1]), "--batch", "7")
    assert r.exit_code == 0, r.output
    assert "7 items sent to the front (priority 10) from 2 examples of 'rare'" in r.output
    assert len(_pinned(ws, p)) == 7
    r = run_cli("project", "mine", "needles", "nope", "--seed", str(seeds[0]))
    assert r.exit_code != 0 and "not a class" in r.output
