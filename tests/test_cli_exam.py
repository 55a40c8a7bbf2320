"""The qualification exam from the command line: ``project create/set``'s exam
options, ``assay exam report`` (table and --json, what GET .../exam returns)
and ``assay exam reset`` (the admin's reset, audited). A real workspace on
SQLite and PostgreSQL (the ``home`` fixture), typer's runner in-process."""

from __future__ import annotations

import json

import pandas as pd

from assay import Workspace
from factories import item_ids, run_cli as run


def _setup(home, tmp_path):
    data = tmp_path / "texts.csv"
    pd.DataFrame({"text": [f"text {i}" for i in range(12)]}).to_csv(data, index=False)
    assert run("import", "texts", str(data)).exit_code == 0
    r = run("project", "create", "ex", "--dataset", "texts", "--classes", "pos,neg",
            "--exam-size", "2", "--exam-pass", "1.0", "--exam-retries", "0")
    assert r.exit_code == 0, r.output
    ws = Workspace(home)
    p = ws.get_project("ex")
    assert (p["exam_size"], p["exam_pass"], p["exam_retries"]) == (2, 1.0, 0)
    ids = item_ids(ws, p["dataset_id"])
    gold = tmp_path / "exam.csv"
    pd.DataFrame({"item_id": ids[:3], "label": ["pos"] * 3, "purpose": ["exam"] * 3}).to_csv(gold, index=False)
    r = run("project", "gold", "ex", str(gold))
    assert r.exit_code == 0, r.output
    for name in ("ann", "bob"):
        assert run("user", "add", name, "--project", "ex").exit_code == 0
    return ws, p


def _take(ws, p, username, labels):
    u = ws.get_user(username)
    out = None
    for label in labels:
        t = ws.next_task(p["id"], u)
        assert "exam" in t, t
        out = ws.submit(t["id"], u, label)
    return out["exam"]


def test_exam_report_and_reset_from_the_cli(home, tmp_path):
    ws, p = _setup(home, tmp_path)
    try:
        r = run("exam", "report", "ex")
        assert r.exit_code == 0, r.output
        assert "nobody has started the exam" in r.output and "2 questions per attempt from 3 exam items" in r.output
        assert _take(ws, p, "ann", ["pos", "neg"])["passed"] is False  # one wrong: below the bar of 100 %
        assert _take(ws, p, "bob", ["pos", "pos"])["passed"] is True

        r = run("exam", "report", "ex", "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.output) == json.loads(json.dumps(ws.exam_report(p["id"])))
        rows = {a["username"]: a for a in json.loads(r.output)["annotators"]}
        assert rows["ann"]["status"] == "failed" and rows["ann"]["best_score"] == 0.5
        assert rows["bob"]["status"] == "passed" and rows["bob"]["attempts"][0]["correct"] == 2

        r = run("exam", "report", "ex")
        assert r.exit_code == 0, r.output
        line = {ln.split()[0]: ln.split() for ln in r.output.splitlines()[2:]}
        assert line["ann"][1:6] == ["failed", "1", "50%", "50%", "0"]
        assert line["bob"][1:6] == ["passed", "1", "100%", "100%", "0"]

        r = run("exam", "reset", "ex", "ann")
        assert r.exit_code == 0, r.output
        assert "ann may take the exam of 'ex' again" in r.output
        rows = {a["username"]: a for a in ws.exam_report(p["id"])["annotators"]}
        assert rows["ann"]["status"] == "open" and rows["ann"]["attempts_left"] == 1
        t = ws.next_task(p["id"], ws.get_user("ann"))  # the granted attempt: a fresh exam question
        assert t["exam"] == {"question": 1, "of": 2}
        log, _ = ws.audit_log(action="exam.reset")
        assert len(log) == 1 and log[0]["actor"].startswith("cli:")
        assert log[0]["details"]["username"] == "ann" and log[0]["target"] == "ex"

        # bob never failed: one line, exit 1, nothing changed
        r = run("exam", "reset", "ex", "bob")
        assert r.exit_code == 1 and "'bob' has not failed the exam of project 'ex'" in r.output
        assert r.output.strip().count("\n") == 0
        assert len(ws.audit_log(action="exam.reset")[0]) == 1
        assert run("exam", "reset", "ex", "nobody").exit_code == 1
        assert run("exam", "report", "nope").exit_code == 1
    finally:
        ws.close()


def test_project_set_exam_options(home, tmp_path):
    ws, p = _setup(home, tmp_path)
    ws.close()
    r = run("project", "set", "ex", "--exam-size", "3", "--exam-retries", "2", "--exam-pass", "0.5")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"exam_size": 3, "exam_pass": 0.5, "exam_retries": 2}
    r = run("project", "set", "ex", "--exam-pass", "1.5")  # a bad value: one line, nothing changed
    assert r.exit_code == 1 and "exam_pass" in r.output
    r = run("project", "set", "ex", "exam_size=null")
    assert r.exit_code == 0 and json.loads(r.output) == {"exam_size": None}
    with Workspace(home) as ws:
        p = ws.get_project("ex")
        assert (p["exam_size"], p["exam_pass"], p["exam_retries"]) == (None, 0.5, 2)
    r = run("exam", "report", "ex")
    assert r.exit_code == 0 and "has no qualification exam" in r.output
    r = run("project", "create", "bad", "--dataset", "texts", "--classes", "a,b", "--exam-size", "0")
    assert r.exit_code == 1 and "exam_size" in r.output
    assert run("project", "list").output.count("bad") == 0
