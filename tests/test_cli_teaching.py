"""Teaching by nuance from the command line: ``assay teaching refresh`` (a
detection round now) and ``assay teaching report`` (table and --json, what
GET .../teaching returns). A real workspace on SQLite and PostgreSQL (the
``home`` fixture), typer's runner in-process."""

from __future__ import annotations

import json

from assay import Workspace
from factories import run_cli as run
from test_teach import NUANCE, _project, _work


def test_teaching_refresh_and_report(home):
    ws = Workspace(home)
    p, _, check, _ = _project(ws, name="tc")
    bad, _ = ws.add_user("bad")
    ws.add_member(p["id"], bad["id"])
    r = run("teaching", "report", "tc")
    assert r.exit_code == 0, r.output
    assert "no weak nuance found yet" in r.output and NUANCE in r.output
    assert _work(ws, p, bad, check, checks=6, right=False) is None
    r = run("teaching", "refresh", "tc")
    assert r.exit_code == 0, r.output
    assert "1 need(s) opened" in r.output and NUANCE in r.output
    t = ws.next_task(p["id"], bad)  # teach_rate 1: the teaching item comes
    assert "teach" in t
    ws.submit_practice(t["id"], bad, "pos")
    r = run("teaching", "report", "tc")
    assert r.exit_code == 0, r.output
    assert "bad" in r.output and "open" in r.output and "0% (0/6" in r.output
    r = run("teaching", "report", "tc", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep == json.loads(json.dumps(ws.teaching_report(p["id"])))
    (need,) = rep["needs"]
    assert need["user_id"] == bad["id"] and need["taught"] == 1 and need["before"]["checks"] == 6


def test_teaching_report_of_a_project_that_does_not_teach_and_bad_names(home):
    ws = Workspace(home)
    _project(ws, name="tn")
    ws.update_project("tn", teach_bar=None)
    r = run("teaching", "report", "tn")
    assert r.exit_code == 0 and "does not teach" in r.output
    r = run("teaching", "report", "nope")
    assert r.exit_code == 1 and "nope" in r.output
