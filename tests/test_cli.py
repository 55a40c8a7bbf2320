"""The `assay` command, run in-process through typer's runner on a real workspace."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from assay import Workspace
from factories import run_cli as run







def test_full_session(home, tmp_path):
    data = tmp_path / "reviews.csv"
    pd.DataFrame({"review": ["good", "bad", "fine", "good"], "stars": [5, 1, 3, 5]}).to_csv(data, index=False)

    r = run("init")
    assert r.exit_code == 0, r.output
    r = run("import", "reviews", str(data), "--text-column", "review", "--license", "CC0")
    assert r.exit_code == 0, r.output
    assert "imported 3 new items" in r.output  # the duplicate row is one item
    r = run("project", "create", "sent", "--dataset", "reviews", "--classes", "pos,neg", "--overlap", "2")
    assert r.exit_code == 0, r.output
    assert "3 tasks" in r.output
    r = run("user", "add", "alice", "--project", "sent")
    assert r.exit_code == 0, r.output
    token = r.output.strip().rsplit(" ", 1)[1]

    ws = Workspace(home)
    user = ws.authenticate(token)
    assert user["username"] == "alice"
    pid = ws.get_project("sent")["id"]
    t = ws.next_task(pid, user)
    ws.submit(t["id"], user, "neg")

    r = run("status")
    assert r.exit_code == 0, r.output
    st = json.loads(r.output)
    assert (st["items"], st["projects"], st["users"], st["answers"]) == (3, 1, 1, 1)

    out = tmp_path / "labels.jsonl"
    r = run("export", "sent", str(out))
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 3
    assert [x["label"] for x in rows if x["n_answers"]] == ["neg"]
    assert all(x["provenance"]["license"] == "CC0" for x in rows)
    ws.close()


def test_errors_are_one_line_and_change_nothing(home, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("item,worker\n1,a\n")
    r = run("import", "d", str(bad))
    assert r.exit_code == 1
    assert r.output.strip().count("\n") == 0
    assert "no text column 'text'" in r.output
    r = run("import", "d", str(tmp_path / "missing.csv"))
    assert r.exit_code == 1 and "no such file" in r.output
    ws = Workspace(home)
    assert ws.list_datasets() == []  # the failed imports left no dataset behind
    ws.close()
    r = run("project", "create", "p", "--dataset", "nope", "--classes", "a")
    assert r.exit_code == 1 and "dataset 'nope' does not exist" in r.output


def test_bad_usage_exits_2(home):
    assert run("project", "create").exit_code == 2
    assert run("no-such-command").exit_code == 2
    assert run("export").exit_code == 2


def test_quickstart_sets_up_demo_without_serving(home):
    r = run("quickstart", "--no-serve", "--port", "8123")
    assert r.exit_code == 0, r.output
    links = [line for line in r.output.splitlines() if "/login" in line and "#token=" in line]
    assert len(links) == 3
    token = links[1].split("#token=")[1].split()[0]
    ws = Workspace(home)
    alice = ws.authenticate(token)
    assert alice["username"] == "alice" and alice["role"] == "annotator"
    p = ws.get_project("demo")
    assert ws.progress(p["id"])["tasks"] == 48
    assert ws.next_task(p["id"], alice) is not None
    ws.close()
    # Running it again reuses the workspace: same items, fresh links.
    r = run("quickstart", "--no-serve")
    assert r.exit_code == 0, r.output
    ws = Workspace(home)
    assert ws.status()["items"] == 48 and ws.status()["users"] == 3
    ws.close()


def test_import_assay_stays_light():
    code = ("import sys, assay; heavy = [m for m in ('torch', 'ray', 'pandas', 'pyarrow', 'fastapi') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
