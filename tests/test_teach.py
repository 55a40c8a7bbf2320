"""Teaching by nuance (assay.engine.teach): a weak nuance found on hidden
checks opens a need, teaching items come with immediate feedback, teaching
answers never count as answers, teaching items are never hidden checks or
work, and the before/after measurement. On SQLite and PostgreSQL (the ``ws``
fixture); the attacker's paths over real HTTP.
"""

from __future__ import annotations

import math

import httpx
import numpy as np
import pytest
from sqlalchemy import text

from _server import LiveServer
from assay.engine import teach as _teach
from assay.errors import Conflict, InvalidInput
from assay.quality.skills import Z90, difference_interval, rate_interval
from factories import item_ids, text_dataset

NUANCE = "irony vs praise"


def _user(ws, name, project_id, role="annotator"):
    u, tok = ws.add_user(name, role)
    ws.add_member(project_id, u["id"])
    return {**u, "h": {"Authorization": f"Bearer {tok}"}}


def _project(ws, *, n=160, n_check=24, n_teach=4, rate=1.0, items=2, bar=0.6, name="te"):
    """Hidden checks (every 6th item from 1) and teaching items (every 13th
    from 4) on one nuance, all labelled 'pos'; the first teaching item is the
    reference of the others."""
    ds = text_dataset(ws, f"{name}-texts", [f"{name} text {i}" for i in range(n)])
    p = ws.create_project(name, ds["id"], ["pos", "neg"], overlap=1)
    ids = item_ids(ws, ds["id"])
    check = ids[1::6][:n_check]
    teach = [i for i in ids[4::13] if i not in check][:n_teach]
    ws.update_project(p["id"], gold_rate=0.5, teach_bar=bar, teach_rate=rate, teach_items=items)
    ws.import_gold(p["id"], [{"item_id": i, "label": "pos", "nuance": NUANCE} for i in check]
                   + [{"item_id": i, "label": "pos", "purpose": "teach", "nuance": NUANCE,
                       "explanation": f"why item {i} is pos", "reference_items": [teach[0]]} for i in teach])
    return ws.get_project(p["id"]), ids, set(check), set(teach)


def _work(ws, p, user, check, *, checks, right, limit=400):
    """Answer tasks until ``checks`` hidden checks were answered (right or
    wrong as told; real work 'neg'); returns the teaching task if one comes first."""
    done = 0
    for _ in range(limit):
        if done >= checks:
            return None
        t = ws.next_task(p["id"], user)
        assert t is not None, "ran out of work"
        if "teach" in t:
            return t
        is_check = t["item"]["id"] in check
        ws.submit(t["id"], user, ("pos" if right else "neg") if is_check else "neg")
        done += is_check
    raise AssertionError("not enough hidden checks came")


def _count(ws, table, pid):
    with ws.db.read() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table} WHERE project_id = :p"), {"p": pid}).scalar_one()


def test_a_weak_nuance_is_taught_with_feedback_and_measured(ws):
    p, ids, check, teach = _project(ws)
    bad, good = _user(ws, "bad", p["id"]), _user(ws, "good", p["id"])
    assert _work(ws, p, bad, check, checks=6, right=False) is None  # no need yet: real work only
    assert _work(ws, p, good, check, checks=6, right=True) is None
    out = ws.refresh_teaching(p["id"])
    assert out["opened"] == [{"user_id": bad["id"], "nuance": NUANCE}]  # the good one is not taught
    assert ws.refresh_teaching(p["id"])["opened"] == []  # once
    (rec,) = ws.audit_log(action="teach.need")[0]
    assert rec["details"]["user_id"] == bad["id"] and rec["details"]["nuance"] == NUANCE
    assert rec["details"]["checks"] == 6 and rec["details"]["interval"][1] < rec["details"]["bar"] == 0.6
    # teach_rate 1: the next task is a teaching item, openly flagged, without a pre-label
    t = ws.next_task(p["id"], bad)
    assert t["teach"] == {"practice": True} and t["item"]["id"] in teach and t["suggestion"] is None
    assert ws.next_task(p["id"], bad)["id"] == t["id"]  # asking again: the same one, no hoarding
    answers_before = _count(ws, "answers", p["id"])
    fb = ws.submit_practice(t["id"], bad, "neg")["teach"]
    assert fb["correct"] is False and fb["right_label"] == "pos" and fb["nuance"] == NUANCE
    assert fb["explanation"] == f"why item {t['item']['id']} is pos"
    ref = min(teach)
    assert [r["id"] for r in fb["reference_items"]] == [ref] and fb["reference_items"][0]["label"] == "pos"
    assert fb["reference_items"][0]["text"].startswith("te text")
    with pytest.raises(Conflict):  # answered: no second go
        ws.submit_practice(t["id"], bad, "pos")
    t2 = ws.next_task(p["id"], bad)
    assert "teach" in t2 and t2["item"]["id"] in teach - {t["item"]["id"]}
    assert ws.submit_practice(t2["id"], bad, "pos")["teach"]["correct"] is True
    # teaching answers are no answers: nothing in answers, first_answers, consensus, gold scores
    assert _count(ws, "answers", p["id"]) == answers_before
    with ws.db.read() as conn:
        on_teach = conn.execute(text("SELECT count(*) FROM first_answers WHERE project_id = :p AND item_id IN :ids")
                                .bindparams(__import__("sqlalchemy").bindparam("ids", expanding=True)),
                                {"p": p["id"], "ids": sorted(teach)}).scalar_one()
    assert on_teach == 0
    # teach_items = 2: taught; real work again, then better answers on the checks
    rep = ws.teaching_report(p["id"])
    (need,) = rep["needs"]
    assert need["status"] == "taught" and need["taught"] == 2 and need["practice_right"] == 1
    assert need["before"]["checks"] == 6 and need["before"]["right"] == 0 and need["after"]["checks"] == 0
    assert need["change"]["skill"] is None
    assert _work(ws, p, bad, check, checks=5, right=True) is None
    assert ws.refresh_teaching(p["id"])["measured"] == [{"user_id": bad["id"], "nuance": NUANCE}]
    assert ws.audit_log(action="teach.measured")[0][0]["details"]["checks_after"] == 5
    rep = ws.teaching_report(p["id"])
    (need,) = rep["needs"]
    assert need["status"] == "measured" and need["after"] == {
        "checks": 5, "right": 5, "skill": 1.0, "interval": need["after"]["interval"]}
    d, lo, hi = difference_interval(0, 6, 5, 5)
    assert need["change"]["skill"] == pytest.approx(1.0) and need["change"]["interval"] == pytest.approx([lo, hi])
    assert lo > 0  # a real improvement: the interval excludes no change
    assert need["detected"]["checks"] == 6 and need["detected"]["interval"][1] < 0.6
    assert rep["project"]["needs"] == 1 and rep["project"]["change"]["skill"] == pytest.approx(1.0)
    assert [n["nuance"] for n in rep["nuances"]] == [NUANCE] and rep["teaching_items"] == {NUANCE: 4}
    # the skill map's nuance skill rests on the hidden checks only
    (tagged,) = ws.skill_map(p["id"])["nuances"]
    assert tagged["nuance"] == NUANCE and tagged["items"] == len(check)


def test_teaching_items_are_never_work_nor_hidden_checks(ws):
    p, ids, check, teach = _project(ws, n=60, n_check=8)
    ann = _user(ws, "ann", p["id"])  # no need: never a teaching item, to the end of the pool
    seen = set()
    while (t := ws.next_task(p["id"], ann)) is not None:
        assert "teach" not in t
        seen.add(t["item"]["id"])
        ws.submit(t["id"], ann, "pos")
    assert not seen & teach and seen & check
    assert seen == set(ids) - teach - (check - seen)  # every real item, no teaching item
    with ws.db.read() as conn:  # the gold claim passes them over too
        from assay.engine import gold as _gold
        for w in range(0, 10_000_000, 1_000_000):
            row = _gold.claim(conn, p["id"], _user(ws, f"x{w}", p["id"])["id"], w)
            assert row is None or row.item_id not in teach


def test_the_practice_endpoint_takes_nothing_but_the_teaching_item_in_hand(ws):
    p, ids, check, teach = _project(ws, rate=1.0)
    bad = _user(ws, "bad", p["id"])
    _work(ws, p, bad, check, checks=4, right=False)
    t_real = None
    while t_real is None:  # a real task in hand (no need yet)
        t = ws.next_task(p["id"], bad)
        if t["item"]["id"] not in check:
            t_real = t
        else:
            ws.submit(t["id"], bad, "neg")
    with pytest.raises(Conflict) as e:  # real work: refused, no feedback, the lease stays
        ws.submit_practice(t_real["id"], bad, "pos")
    assert "not a teaching item" in e.value.message
    ws.submit(t_real["id"], bad, "neg")
    assert ws.refresh_teaching(p["id"])["opened"]
    t = ws.next_task(p["id"], bad)
    assert "teach" in t
    with pytest.raises(Conflict):  # a teaching item is not answered as work
        ws.submit(t["id"], bad, "pos")
    other = min(teach - {t["item"]["id"]})
    with ws.db.read() as conn:
        task_of = dict(conn.execute(text("SELECT item_id, id FROM tasks WHERE project_id = :p"), {"p": p["id"]}).all())
    for item in (other, min(check)):  # one not handed out, a hidden check
        with pytest.raises(Conflict) as e:
            ws.submit_practice(task_of[item], bad, "pos")
        assert "not a teaching item" in e.value.message
    with pytest.raises(InvalidInput):
        ws.submit_practice(t["id"], bad, "no such class")
    assert ws.submit_practice(t["id"], bad, "pos")["teach"]["correct"] is True
    # an expired lease is refused
    t = ws.next_task(p["id"], bad)
    assert "teach" in t
    with pytest.raises(Conflict) as e:
        with ws.db.write() as conn:
            _teach.answer(conn, p, bad["id"], t["id"], t["item"]["id"], "pos", now=t["lease_expires_at"] + 1)
    assert "expired" in e.value.message


def test_import_rules_for_teaching_items(ws):
    ds = text_dataset(ws, "imp-texts", [f"imp text {i}" for i in range(30)])
    p = ws.create_project("imp", ds["id"], ["pos", "neg"], overlap=1)
    ids = item_ids(ws, ds["id"])
    with pytest.raises(InvalidInput) as e:  # a teaching item needs its explanation
        ws.import_gold(p["id"], [{"item_id": ids[0], "label": "pos", "purpose": "teach", "nuance": "x"}])
    assert "explanation" in e.value.message
    ws.import_gold(p["id"], [{"item_id": ids[1], "label": "pos"},
                             {"item_id": ids[2], "label": "neg", "purpose": "teach", "nuance": "x",
                              "explanation": "because", "reference_items": [ids[3]]}])
    for rows in ([{"item_id": ids[1], "label": "pos", "purpose": "teach", "nuance": "x", "explanation": "e"}],
                 [{"item_id": ids[2], "label": "neg"}],  # a teaching item never becomes a check
                 # a hidden check as a reference, or a reference made a check: refused
                 [{"item_id": ids[4], "label": "neg", "purpose": "teach", "nuance": "x", "explanation": "e",
                   "reference_items": [ids[1]]}],
                 [{"item_id": ids[3], "label": "pos"}]):
        with pytest.raises(InvalidInput):
            ws.import_gold(p["id"], rows)
    rows, _ = ws.list_gold(p["id"])
    assert {r["item_id"]: r["purpose"] for r in rows} == {ids[1]: "check", ids[2]: "teach"}
    with pytest.raises(InvalidInput) as e:  # seen as teaching: never back to the pool
        ws.remove_gold(p["id"], ids[2])
    assert "teaching" in e.value.message
    with pytest.raises(InvalidInput):
        ws.update_project(p["id"], teach_bar=1.5)
    with pytest.raises(InvalidInput):
        ws.update_project(p["id"], teach_rate=0)


def test_a_project_without_teaching_never_looks(ws, monkeypatch):
    ds = text_dataset(ws, "plain-texts", [f"plain {i}" for i in range(5)])
    p = ws.create_project("plain", ds["id"], ["pos", "neg"], overlap=1)
    ann = _user(ws, "ann", p["id"])

    def boom(*a, **k):
        raise AssertionError("teaching looked up in a project without it")

    monkeypatch.setattr(_teach, "serve", boom)
    assert ws.next_task(p["id"], ann) is not None
    assert ws.teaching_projects() == [] and ws.teaching_report(p["id"])["needs"] == []


def test_intervals_before_after():
    m, lo, hi = (float(x) for x in rate_interval(3, 10))
    z2 = Z90 ** 2  # the Wilson score interval, written out
    centre, half = (0.3 + z2 / 20) / (1 + z2 / 10), Z90 * math.sqrt(0.21 / 10 + z2 / 400) / (1 + z2 / 10)
    assert (m, lo, hi) == pytest.approx((0.3, centre - half, centre + half))
    assert np.isnan(rate_interval(0, 0)[0])
    d, lo, hi = (float(x) for x in difference_interval(30, 100, 60, 100))
    assert d == pytest.approx(0.3) and 0 < lo < 0.3 < hi < 0.6
    d, lo, hi = (float(x) for x in difference_interval(5, 10, 5, 10))
    assert d == 0 and lo < 0 < hi
    with pytest.raises(InvalidInput):
        rate_interval(3, 2)


def test_teaching_over_http_as_a_hostile_annotator(ws):
    p, ids, check, teach = _project(ws, rate=1.0)
    eve = _user(ws, "eve", p["id"])
    rev = _user(ws, "rita", p["id"], role="reviewer")
    _work(ws, p, eve, check, checks=5, right=False)
    with ws.db.read() as conn:
        task_of = dict(conn.execute(text("SELECT item_id, id FROM tasks WHERE project_id = :p"), {"p": p["id"]}).all())
    real = next(i for i in ids if i not in check and i not in teach)
    with LiveServer(ws) as srv, httpx.Client(base_url=srv.base, timeout=30) as c:
        assert c.get(f"/api/projects/{p['id']}/teaching", headers=eve["h"]).status_code == 403
        assert c.post(f"/api/projects/{p['id']}/teaching/refresh", headers=eve["h"]).status_code == 403
        proj = c.get(f"/api/projects/{p['id']}", headers=eve["h"]).json()
        assert not any(k.startswith("teach") for k in proj.get("project", proj))
        # no need yet: a teaching, a check or a real task picked by hand gets a 409 and no feedback
        for item in (min(teach), min(check), real):
            r = c.post(f"/api/tasks/{task_of[item]}/practice", json={"label": "pos"}, headers=eve["h"])
            assert r.status_code == 409 and "right_label" not in r.text and "explanation" not in r.text, r.text
        ws.refresh_teaching(p["id"])
        t = c.post(f"/api/projects/{p['id']}/tasks/next", headers=eve["h"]).json()["task"]
        assert t["teach"] == {"practice": True} and t["item"]["id"] in teach
        r = c.post(f"/api/tasks/{t['id']}/answers", json={"label": "pos"}, headers=eve["h"])
        assert r.status_code == 409  # not as work
        r = c.post(f"/api/tasks/{t['id']}/skip", headers=eve["h"])
        assert r.status_code == 409
        for item in (min(check), real):  # still: only the teaching item in hand gets feedback
            r = c.post(f"/api/tasks/{task_of[item]}/practice", json={"label": "pos"}, headers=eve["h"])
            assert r.status_code == 409 and "right_label" not in r.text, r.text
        mallory, mtok = ws.add_user("mallory", "annotator")  # not a member: the task does not exist for her
        r = c.post(f"/api/tasks/{t['id']}/practice", json={"label": "pos"}, headers={"Authorization": f"Bearer {mtok}"})
        assert r.status_code == 404
        r = c.post(f"/api/tasks/{t['id']}/practice", json={"label": "neg"}, headers=eve["h"])
        assert r.status_code == 200, r.text
        fb = r.json()["practice"]["teach"]
        assert fb["correct"] is False and fb["right_label"] == "pos" and fb["explanation"].startswith("why item")
        r = c.post(f"/api/tasks/{t['id']}/practice", json={"label": "pos"}, headers=eve["h"])
        assert r.status_code == 409
        rep = c.get(f"/api/projects/{p['id']}/teaching", headers=rev["h"])
        assert rep.status_code == 200 and rep.json()["needs"][0]["user_id"] == eve["id"]
        assert rep.json()["needs"][0]["taught"] == 1


def test_the_measured_change_matches_a_simulated_effect(ws):
    """A synthetic annotator right on the nuance's checks with chance 0.3
    before teaching and 0.9 after: detection opens the need, the report
    counts exactly the checks of each phase, and its 90 % interval for the
    change holds the simulated +0.6."""
    import random

    p, ids, check, teach = _project(ws, n=400, n_check=60, n_teach=3, items=3, name="sim")
    ann = _user(ws, "learner", p["id"])
    rng = random.Random(7)

    def phase(skill, checks):
        right = done = 0
        while done < checks:
            t = ws.next_task(p["id"], ann)
            assert "teach" not in t
            if t["item"]["id"] in check:
                ok = rng.random() < skill
                ws.submit(t["id"], ann, "pos" if ok else "neg")
                right, done = right + ok, done + 1
            else:
                ws.submit(t["id"], ann, "neg")
        return right

    before = phase(0.3, 20)
    assert ws.refresh_teaching(p["id"])["opened"] == [{"user_id": ann["id"], "nuance": NUANCE}]
    ws.update_project(p["id"], teach_bar=None)  # teaching held back a while: checks after the detection
    since = phase(0.3, 10)
    ws.update_project(p["id"], teach_bar=0.6)
    for _ in range(3):
        t = ws.next_task(p["id"], ann)
        assert "teach" in t
        ws.submit_practice(t["id"], ann, "pos")
    after = phase(0.9, 20)
    (need,) = ws.teaching_report(p["id"])["needs"]
    assert (need["before"]["right"], need["before"]["checks"]) == (before + since, 30)
    assert (need["since_detection"]["right"], need["since_detection"]["checks"]) == (since, 10)
    assert (need["after"]["right"], need["after"]["checks"]) == (after, 20)
    assert need["change"]["skill"] == pytest.approx(after / 20 - (before + since) / 30)
    assert need["change_since_detection"]["skill"] == pytest.approx(after / 20 - since / 10)
    for key in ("change", "change_since_detection"):
        lo, hi = need[key]["interval"]
        assert lo <= 0.6 <= hi and lo > 0, key


def test_the_background_round_finds_needs_in_every_project_with_teaching(ws):
    from assay.jobs import server_jobs, teach_round

    p, ids, check, teach = _project(ws, n=60, n_check=8, name="bg")
    ds = text_dataset(ws, "off-texts", ["a", "b"])
    ws.create_project("off", ds["id"], ["pos", "neg"], overlap=1)  # no teaching: not visited
    bad = _user(ws, "bad", p["id"])
    _work(ws, p, bad, check, checks=4, right=False)
    assert ws.teaching_projects() == [p["id"]]
    out = teach_round(ws)
    assert out == {p["id"]: {"project_id": p["id"], "opened": [{"user_id": bad["id"], "nuance": NUANCE}],
                             "measured": []}}
    assert "teaching" in [j.name for j in server_jobs(ws, reclaim_interval=1, refit_interval=30)]
    assert "teaching" not in [j.name for j in server_jobs(ws, reclaim_interval=1, refit_interval=0)]


@pytest.mark.parametrize("migrated_db_url", ["postgres"], indirect=True)
def test_concurrent_asks_of_one_learner_never_fail(ws):
    """PostgreSQL, several asks at once from people with a need: each gets a
    teaching item or real work, never an error, and holds one teaching item."""
    import threading

    p, ids, check, teach = _project(ws, n=200, n_check=30, n_teach=8, name="conc")
    learners = [_user(ws, f"l{i}", p["id"]) for i in range(4)]
    with ws.db.write() as conn:
        for u in learners:
            conn.execute(text("INSERT INTO teach_needs (project_id, annotator_id, nuance, status, detected_at,"
                              " checks, skill, skill_low, skill_high, taught) VALUES (:p, :u, :n, 'open', 0, 3,"
                              " 0.1, 0, 0.3, 0)"), {"p": p["id"], "u": u["id"], "n": NUANCE})
    errors, got = [], []

    def ask(u):
        try:
            got.append((u["id"], ws.next_task(p["id"], u)))
        except Exception as e:  # noqa: BLE001 - the assertion below reports it
            errors.append(repr(e))

    threads = [threading.Thread(target=ask, args=(u,)) for u in learners for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(got) == 12
    with ws.db.read() as conn:
        held = conn.execute(text("SELECT annotator_id, count(*) FROM teach_answers WHERE project_id = :p"
                                 " GROUP BY annotator_id"), {"p": p["id"]}).all()
    assert {u: n for u, n in held} == {u["id"]: 1 for u in learners}


def test_a_nuance_named_after_two_classes_counts_their_untagged_checks(ws):
    ds = text_dataset(ws, "pair-texts", [f"pair text {i}" for i in range(150)])
    p = ws.create_project("pair", ds["id"], ["cat", "dog", "fox"], overlap=1)
    ids = item_ids(ws, ds["id"])
    check = ids[1::5][:24]
    truth = {i: ("dog", "fox", "cat")[k % 3] for k, i in enumerate(check)}
    teach = [i for i in ids[2::7] if i not in truth][:2]
    ws.update_project(p["id"], gold_rate=0.5, teach_bar=0.6, teach_rate=1.0, teach_items=2)
    ws.import_gold(p["id"], [{"item_id": i, "label": label} for i, label in truth.items()]  # no tags
                   + [{"item_id": i, "label": "fox", "purpose": "teach", "nuance": "dog vs fox",
                       "explanation": "a fox has a narrow muzzle"} for i in teach])
    p = ws.get_project(p["id"])
    assert _teach.pair_of(p, "dog vs fox") == ("dog", "fox")
    assert _teach.pair_of(p, "dog vs wolf") is None and _teach.pair_of(p, "dog vs dog") is None
    ann = _user(ws, "ann", p["id"])
    seen = {"cat": 0, "dog": 0, "fox": 0}
    while sum(seen.values()) < 12:  # 'cat' to everything: right on cat checks only
        t = ws.next_task(p["id"], ann)
        if t["item"]["id"] in truth:
            seen[truth[t["item"]["id"]]] += 1
        ws.submit(t["id"], ann, "cat")
    assert seen["dog"] + seen["fox"] >= 3
    assert ws.refresh_teaching(p["id"])["opened"] == [{"user_id": ann["id"], "nuance": "dog vs fox"}]
    (need,) = ws.teaching_report(p["id"])["needs"]
    assert (need["before"]["right"], need["before"]["checks"]) == (0, seen["dog"] + seen["fox"])
    t = ws.next_task(p["id"], ann)
    assert t["item"]["id"] in teach and ws.submit_practice(t["id"], ann, "dog")["teach"]["right_label"] == "fox"


def test_a_paused_annotator_gets_no_teaching_either(ws):
    from assay.errors import Paused

    p, ids, check, teach = _project(ws, n=60, n_check=8, name="pz")
    bad = _user(ws, "bad", p["id"])
    _work(ws, p, bad, check, checks=4, right=False)
    ws.refresh_teaching(p["id"])
    t = ws.next_task(p["id"], bad)
    assert "teach" in t
    ws.update_project(p["id"], gold_min_accuracy=0.9)
    with ws.db.write() as conn:
        conn.execute(text("UPDATE gold_stats SET paused = true WHERE project_id = :p AND annotator_id = :u"),
                     {"p": p["id"], "u": bad["id"]})
    for call in (lambda: ws.next_task(p["id"], bad), lambda: ws.submit_practice(t["id"], bad, "pos")):
        with pytest.raises(Paused):
            call()


def test_no_one_is_flagged_on_the_crowd_alone(ws):
    """At a first round with a few checks each the pull towards the crowd's
    share can put every interval below the bar (here all near 0.6 against
    0.75): only those whose own interval (Wilson on their answers alone) is
    below the bar too are taught, never the one who got every check right."""
    p, ids, check, teach = _project(ws, n=300, n_check=60, bar=0.75, name="crowd")
    pattern = [(4, 4), (1, 3), (2, 4), (1, 3), (2, 4), (3, 4), (1, 3), (2, 4)]  # (right, checks)
    people = [_user(ws, f"c{k}", p["id"]) for k in range(len(pattern))]
    for u, (right, checks) in zip(people, pattern):
        done = 0
        while done < checks:
            t = ws.next_task(p["id"], u)
            on = t["item"]["id"] in check
            ws.submit(t["id"], u, "pos" if on and done < right else "neg")
            done += on
    opened = {o["user_id"] for o in ws.refresh_teaching(p["id"])["opened"]}
    own_below = {u["id"] for u, (right, checks) in zip(people, pattern) if rate_interval(right, checks)[2] < 0.75}
    assert people[0]["id"] not in opened and opened <= own_below and opened
