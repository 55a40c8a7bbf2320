"""The qualification exam (assay.engine.exam): exam items before real work,
pass / fail / retries / refusal / admin reset, exam items never served as
work or as hidden gold, exam answers never counted as answers. On SQLite
and PostgreSQL (the ``ws`` fixture); the attacker's paths over real HTTP.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from _server import LiveServer
from assay.errors import Conflict, ExamFailed, InvalidInput
from factories import item_ids, text_dataset


def _user(ws, name, project_id, role="annotator"):
    u, tok = ws.add_user(name, role)
    ws.add_member(project_id, u["id"])
    return {**u, "h": {"Authorization": f"Bearer {tok}"}}


def _exam_project(ws, *, n=60, n_exam=6, n_check=10, size=3, bar=None, retries=None, rate=0.3, name="ex"):
    """Exam items spread over the data (every 10th item from 3), hidden
    checks (every 6th from 1, minus exam items), labelled 'pos'."""
    ds = text_dataset(ws, f"{name}-texts", [f"{name} text {i}" for i in range(n)])
    p = ws.create_project(name, ds["id"], ["pos", "neg"], overlap=1)
    ids = item_ids(ws, ds["id"])
    exam = ids[3::10][:n_exam]
    check = [i for i in ids[1::6] if i not in exam][:n_check]
    ws.update_project(p["id"], exam_size=size, exam_pass=bar, exam_retries=retries, gold_rate=rate)
    ws.import_gold(p["id"], [{"item_id": i, "label": "pos", "purpose": "exam"} for i in exam]
                   + [{"item_id": i, "label": "pos"} for i in check])
    return ws.get_project(p["id"]), ids, set(exam), set(check)


def _take(ws, p, user, answers):
    """Answer the exam's questions with ``answers`` (a label per question); the last result."""
    out = None
    for label in answers:
        t = ws.next_task(p["id"], user)
        assert "exam" in t, t
        out = ws.submit(t["id"], user, label)
    return out


def _answers(ws, pid, items):
    with ws.db.read() as conn:
        return conn.execute(text("SELECT count(*) FROM answers WHERE project_id = :p AND item_id IN :ids")
                            .bindparams(__import__("sqlalchemy").bindparam("ids", expanding=True)),
                            {"p": pid, "ids": sorted(items)}).scalar_one()


def test_exam_comes_before_work_and_a_pass_opens_it(ws):
    p, ids, exam, check = _exam_project(ws, size=3)
    ann = _user(ws, "ann", p["id"])
    seen = []
    for q in range(1, 4):
        t = ws.next_task(p["id"], ann)
        assert t["exam"] == {"question": q, "of": 3}
        assert t["item"]["id"] in exam and t["suggestion"] is None
        assert ws.next_task(p["id"], ann)["id"] == t["id"]  # asking again: the same question, no hoarding
        seen.append(t["item"]["id"])
        got = ws.submit(t["id"], ann, "pos")
        assert got["id"] is None and got["exam"]["question"] == q
        assert "correct" not in got["exam"]  # never which answer was right
    assert got["exam"] == {"question": 3, "of": 3, "finished": True, "passed": True, "attempts_left": 0}
    assert len(set(seen)) == 3
    # exam answers are no answers: nothing in answers, first_answers, consensus
    with ws.db.read() as conn:
        for table in ("answers", "first_answers", "item_consensus"):
            assert conn.execute(text(f"SELECT count(*) FROM {table} WHERE project_id = :p"),
                                {"p": p["id"]}).scalar_one() == 0, table
        stored = conn.execute(text("SELECT count(*) FROM exam_answers WHERE project_id = :p"),
                              {"p": p["id"]}).scalar_one()
    assert stored == 3
    t = ws.next_task(p["id"], ann)  # passed: real work (or a hidden check), never flagged
    assert "exam" not in t and t["item"]["id"] not in exam
    ws.submit(t["id"], ann, "neg")
    assert _answers(ws, p["id"], [t["item"]["id"]]) == 1
    rep = ws.exam_report(p["id"])
    assert rep["exam_items"] == 6 and rep["exam_size"] == 3
    (row,) = rep["annotators"]
    assert row["status"] == "passed" and row["best_score"] == 1.0 and len(row["attempts"]) == 1
    assert [a["action"] for a in ws.audit_log(action="exam.pass")[0]] == ["exam.pass"]


def test_a_fail_with_retries_left_draws_again_and_none_left_refuses(ws):
    p, ids, exam, check = _exam_project(ws, size=2, bar=1.0, retries=1)
    ann = _user(ws, "ann", p["id"])
    got = _take(ws, p, ann, ["pos", "neg"])  # one wrong: below the bar
    assert got["exam"]["passed"] is False and got["exam"]["attempts_left"] == 1
    t = ws.next_task(p["id"], ann)
    assert t["exam"] == {"question": 1, "of": 2}  # a new attempt, not real work
    ws.submit(t["id"], ann, "neg")
    t = ws.next_task(p["id"], ann)
    got = ws.submit(t["id"], ann, "pos")
    assert got["exam"]["passed"] is False and got["exam"]["attempts_left"] == 0
    for call in (lambda: ws.next_task(p["id"], ann), lambda: ws.skip(t["id"], ann),
                 lambda: ws.submit(t["id"], ann, "pos")):
        with pytest.raises(ExamFailed) as e:
            call()
        assert e.value.code == "exam_failed" and e.value.status == 403
    assert _answers(ws, p["id"], ids) == 0
    (row,) = ws.exam_report(p["id"])["annotators"]
    assert row["status"] == "failed" and [a["score"] for a in row["attempts"]] == [0.5, 0.5]
    assert row["best_score"] == 0.5 and row["attempts_left"] == 0
    assert len(ws.audit_log(action="exam.fail")[0]) == 2
    # an admin grants one more attempt; a pass then opens real work
    out = ws.reset_exam(p["id"], ann["id"])
    assert out["status"] == "open" and out["granted"] == 1
    assert ws.audit_log(action="exam.reset")[0][0]["details"]["user_id"] == ann["id"]
    got = _take(ws, p, ann, ["pos", "pos"])
    assert got["exam"]["passed"] is True
    assert "exam" not in ws.next_task(p["id"], ann)
    with pytest.raises(Exception) as e:  # nothing to reset any more
        ws.reset_exam(p["id"], ann["id"])
    assert e.value.code == "not_found"


def test_exam_items_are_never_work_nor_hidden_gold_for_anyone(ws):
    p, ids, exam, check = _exam_project(ws, n=80, n_exam=8, n_check=12, size=2, rate=0.5)
    served: list[int] = []
    for name in ("a", "b"):
        u = _user(ws, name, p["id"])
        _take(ws, p, u, ["pos", "pos"])
        while (t := ws.next_task(p["id"], u)) is not None:
            assert "exam" not in t
            served.append(t["item"]["id"])
            ws.submit(t["id"], u, "neg")
    admin, _ = ws.add_user("root", "admin")  # admins take no exam, and get no exam item either
    while (t := ws.next_task(p["id"], admin)) is not None:
        served.append(t["item"]["id"])
        ws.submit(t["id"], admin, "neg")
    assert served and not exam & set(served)
    assert check & set(served)  # the hidden checks did go out
    assert _answers(ws, p["id"], exam) == 0
    labels, _ = ws.final_labels(p["id"], limit=1000)
    # an exam item's final label is its known label, never from exam answers ('neg' was never given to them)
    assert all(r["label"] == "pos" for r in labels if r["item_id"] in exam)


def test_a_lease_taken_before_an_item_became_an_exam_item_answers_nothing(ws):
    ds = text_dataset(ws, "pre", [f"t{i}" for i in range(10)])
    p = ws.create_project("pre", ds["id"], ["pos", "neg"], overlap=1)
    ann = _user(ws, "ann", p["id"])
    t = ws.next_task(p["id"], ann)
    ws.import_gold(p["id"], [{"item_id": t["item"]["id"], "label": "pos", "purpose": "exam"}])
    with pytest.raises(Conflict):
        ws.submit(t["id"], ann, "pos")
    assert _answers(ws, p["id"], [t["item"]["id"]]) == 0


def test_bad_exam_settings_and_gold_rows_are_refused_clearly(ws):
    p, ids, exam, check = _exam_project(ws)
    for key, value, words in (("exam_size", 0, "exam_size"), ("exam_size", "3", "exam_size"),
                              ("exam_pass", 1.5, "exam_pass"), ("exam_pass", 0, "exam_pass"),
                              ("exam_retries", -1, "exam_retries"), ("exam_retries", 1.5, "exam_retries")):
        with pytest.raises(InvalidInput) as e:
            ws.update_project(p["id"], **{key: value})
        assert words in e.value.message
    assert ws.get_project(p["id"])["exam_size"] == 3  # nothing changed
    with pytest.raises(InvalidInput, match="purpose must be"):
        ws.import_gold(p["id"], [{"item_id": ids[0], "label": "pos", "purpose": "train"}])
    some_exam, some_check = min(exam), min(check)
    with pytest.raises(InvalidInput, match="keeps its purpose"):
        ws.import_gold(p["id"], [{"item_id": some_exam, "label": "neg"}])
    with pytest.raises(InvalidInput, match="keeps its purpose"):
        ws.import_gold(p["id"], [{"item_id": some_check, "label": "pos", "purpose": "exam"}])
    with pytest.raises(InvalidInput, match="exam item"):
        ws.remove_gold(p["id"], some_exam)
    # a new label for an exam item (same purpose) is fine
    assert ws.import_gold(p["id"], [{"item_id": some_exam, "label": "neg", "purpose": "exam"}])["updated"] == 1
    # an exam with no exam items says so, and serves no real work meanwhile
    ds = text_dataset(ws, "empty", ["a", "b"])
    q = ws.create_project("empty", ds["id"], ["pos", "neg"], overlap=1, exam_size=2)
    ann = _user(ws, "ann", q["id"])
    with pytest.raises(Conflict, match="no exam items"):
        ws.next_task(q["id"], ann)


def test_gold_file_rows_carry_a_purpose(ws, tmp_path):
    ds = text_dataset(ws, "f", [f"t{i}" for i in range(10)])
    p = ws.create_project("f", ds["id"], ["pos", "neg"], overlap=1)
    ids = item_ids(ws, ds["id"])
    f = tmp_path / "gold.csv"
    f.write_text(f"item_id,label,purpose\n{ids[0]},pos,exam\n{ids[1]},neg,\n{ids[2]},neg,check\n")
    ws.import_gold_file(p["id"], f)
    rows, _ = ws.list_gold(p["id"])
    assert {r["item_id"]: r["purpose"] for r in rows} == {ids[0]: "exam", ids[1]: "check", ids[2]: "check"}


# ---------------------------------------------------------------- over HTTP, as an attacker


def test_the_exam_over_http_no_way_around_it(ws):
    p, ids, exam, check = _exam_project(ws, size=2, bar=1.0, retries=0)
    with ws.db.read() as conn:
        task_of = dict(conn.execute(text("SELECT item_id, id FROM tasks WHERE project_id = :p"),
                                    {"p": p["id"]}).all())
    eve = _user(ws, "eve", p["id"])
    admin, tok = ws.add_user("boss", "admin")
    ah = {"Authorization": f"Bearer {tok}"}
    real = next(i for i in ids if i not in exam and i not in check)
    with LiveServer(ws) as srv, httpx.Client(base_url=srv.base, timeout=30) as c:
        # the settings route takes and refuses exam settings
        r = c.patch(f"/api/projects/{p['id']}/settings", json={"exam_pass": 2}, headers=ah)
        assert r.status_code == 400 and "exam_pass" in r.json()["error"]["message"]
        # the annotator sees nothing of the exam's settings in the project
        proj = c.get(f"/api/projects/{p['id']}", headers=eve["h"]).json()
        assert not any(k.startswith("exam") for k in proj.get("project", proj))
        # a real task or an exam item picked by hand cannot be answered
        for item in (real, min(exam)):
            r = c.post(f"/api/tasks/{task_of[item]}/answers", json={"label": "pos"}, headers=eve["h"])
            assert r.status_code == 409, r.text
        t = c.post(f"/api/projects/{p['id']}/tasks/next", headers=eve["h"]).json()["task"]
        assert t["exam"] == {"question": 1, "of": 2} and t["item"]["id"] in exam
        # no skipping an exam question, no prefetching real work past it
        r = c.post(f"/api/tasks/{t['id']}/skip", headers=eve["h"])
        assert r.status_code == 409 and "skipped" in r.json()["error"]["message"]
        t2 = c.post(f"/api/projects/{p['id']}/tasks/next", json={"exclude": [t["id"]]}, headers=eve["h"]).json()
        assert t2["task"]["id"] == t["id"]
        r = c.post(f"/api/tasks/{t['id']}/answers", json={"label": "neg"}, headers=eve["h"])
        assert r.status_code == 201 and r.json()["answer"]["id"] is None
        r = c.post(f"/api/tasks/{t['id']}/answers", json={"label": "pos"}, headers=eve["h"])
        assert r.status_code == 409  # answered: no second try at the same question
        t = c.post(f"/api/projects/{p['id']}/tasks/next", headers=eve["h"]).json()["task"]
        r = c.post(f"/api/tasks/{t['id']}/answers", json={"label": "pos"}, headers=eve["h"])
        ex = r.json()["answer"]["exam"]
        assert ex == {"question": 2, "of": 2, "finished": True, "passed": False, "attempts_left": 0}
        r = c.post(f"/api/projects/{p['id']}/tasks/next", headers=eve["h"])
        assert r.status_code == 403 and r.json()["error"]["code"] == "exam_failed"
        r = c.post(f"/api/tasks/{task_of[real]}/answers", json={"label": "pos"}, headers=eve["h"])
        assert r.status_code == 403
        # staff see the record; the annotator neither sees it nor resets themselves
        assert c.get(f"/api/projects/{p['id']}/exam", headers=eve["h"]).status_code == 403
        assert c.post(f"/api/projects/{p['id']}/annotators/{eve['id']}/exam/reset",
                      headers=eve["h"]).status_code == 403
        rep = c.get(f"/api/projects/{p['id']}/exam", headers=ah).json()
        (row,) = rep["annotators"]
        assert row["status"] == "failed" and row["attempts"][0]["score"] == 0.5
        r = c.post(f"/api/projects/{p['id']}/annotators/{eve['id']}/exam/reset", headers=ah)
        assert r.status_code == 200 and r.json()["status"] == "open"
        t = c.post(f"/api/projects/{p['id']}/tasks/next", headers=eve["h"]).json()["task"]
        assert t["exam"]["question"] == 1
    assert _answers(ws, p["id"], ids) == 0


def test_the_cli_sets_the_exam_and_refuses_bad_values(home, tmp_path):
    from assay.workspace import Workspace
    from factories import run_cli

    data = tmp_path / "d.csv"
    data.write_text("text\n" + "\n".join(f"t{i}" for i in range(6)) + "\n")
    assert run_cli("init").exit_code == 0
    assert run_cli("import", "d", str(data)).exit_code == 0
    assert run_cli("project", "create", "p", "--dataset", "d", "--classes", "pos,neg").exit_code == 0
    r = run_cli("project", "set", "p", "exam_size=2", "exam_pass=0.5", "exam_retries=0")
    assert r.exit_code == 0, r.output
    r = run_cli("project", "set", "p", "exam_pass=1.5")
    assert r.exit_code != 0 and "exam_pass" in r.output
    with Workspace(home) as ws:
        p = ws.get_project("p")
        assert (p["exam_size"], p["exam_pass"], p["exam_retries"]) == (2, 0.5, 0)


def test_a_span_exam_answer_counts_by_the_gold_bar_like_gold(ws):
    """An exam question is right by the same rule as gold (the kind's score
    reaches ``gold_min_score``), not by exact equality: 4 of 5 spans (F1
    0.89) pass at the default bar 0.8, 2 of 5 (F1 0.57) do not."""
    text_ = "Ada met Bob and Cy in Rome near Oslo."
    ds = text_dataset(ws, "sp-texts", [text_] + [f"filler {i}" for i in range(5)])
    p = ws.create_project("sp", ds["id"], ["PER", "LOC"], kind="spans")
    item = item_ids(ws, ds["id"])[0]
    spans = [[0, 3, "PER"], [8, 11, "PER"], [16, 18, "PER"], [22, 26, "LOC"], [32, 36, "LOC"]]
    ws.update_project(p["id"], exam_size=1, exam_pass=1.0, exam_retries=0)
    ws.import_gold(p["id"], [{"item_id": item, "label": spans, "purpose": "exam"}])
    ann, bob = _user(ws, "ann", p["id"]), _user(ws, "bob", p["id"])
    assert _take(ws, p, ann, [spans[:4]])["exam"]["passed"] is True
    assert _take(ws, p, bob, [spans[:2]])["exam"]["passed"] is False
    assert {r["username"]: r["best_score"] for r in ws.exam_report(p["id"])["annotators"]} == {"ann": 1.0, "bob": 0.0}
