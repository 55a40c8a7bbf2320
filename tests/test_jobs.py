"""Background jobs (assay.jobs), on SQLite and PostgreSQL, with real
processes, real databases and a real HTTP backend:

* one leader per job across processes: a second process runs nothing while
  the first leads, and takes over when the leader stops (SIGTERM) or dies
  (SIGKILL); no two processes' rounds ever overlap;
* a project whose re-fit raises does not stop the other projects' re-fits
  in the same round;
* an answer stored with ``Workspace.submit`` (no HTTP), even from a short
  script that exits at once, reaches the ML backend's ``/webhook``;
  ``answer.created`` is emitted after the commit;
* a job stuck on a database lock does not hold up requests (jobs run in
  threads, never on the event loop).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import JSON, bindparam, text

from assay import Workspace, jobs
from assay.errors import Conflict
from assay.jobs import Job, ThreadRunner, events, leader
from assay.server import create_app
from factories import count, project_with_annotators, text_dataset
from test_backends import backend  # noqa: F401 - the shared fake-backend fixture (a real HTTP server)


# ---------------------------------------------------------------- one leader across processes

LEADER_CHILD = textwrap.dedent(r'''
    import os, signal, sys, threading, time
    from pathlib import Path
    from assay import Workspace, jobs
    from assay.jobs import Job, ThreadRunner, leader

    home, url, log_path = sys.argv[1:4]
    ws = Workspace(home, database_url=url)

    def probe():  # one round: the real lease sweeper, timed
        t0 = time.time()
        jobs.sweep_leases(ws)
        time.sleep(0.05)
        with open(log_path, "a") as f:
            f.write(f"{os.getpid()} {t0} {time.time()}\n")

    runner = ThreadRunner(leader.for_database(ws.db))
    runner.start(Job("probe", probe, 0.1, jitter=0.2, run_first=True))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    Path(f"{log_path}.{os.getpid()}.ready").touch()
    stop.wait()
    ok = runner.stop(10)
    ws.close()
    sys.exit(0 if ok else 3)
''')


def _rounds(log: Path) -> dict[int, list[tuple[float, float]]]:
    out: dict[int, list[tuple[float, float]]] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            pid, t0, t1 = line.split()
            out.setdefault(int(pid), []).append((float(t0), float(t1)))
    return out


def _wait(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_one_leader_across_processes_and_takeover(tmp_path, db_url):
    home = tmp_path / "ws"
    Workspace(home, database_url=db_url).close()  # migrated once, before the race
    log = tmp_path / "rounds.log"
    procs: list[subprocess.Popen] = []

    def spawn() -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-c", LEADER_CHILD, str(home), db_url, str(log)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(p)
        _wait(lambda: Path(f"{log}.{p.pid}.ready").exists() or p.poll() is not None, 60, "a runner to start")
        assert p.poll() is None, p.stderr.read().decode()
        return p

    def n(p) -> int:
        return len(_rounds(log).get(p.pid, []))

    try:
        a = spawn()
        _wait(lambda: n(a) >= 3, 30, "the first process to lead")
        b = spawn()
        before = n(a)
        time.sleep(1.0)  # about eight rounds of 0.1 s
        assert n(b) == 0, "two processes led the same job"
        assert n(a) > before, "the leader stopped running rounds"

        a.send_signal(signal.SIGTERM)  # a clean stop hands over
        assert a.wait(20) == 0, a.stderr.read().decode()
        _wait(lambda: n(b) >= 3, 20, "the second process to take over")

        c = spawn()
        time.sleep(0.7)
        assert n(c) == 0
        b.kill()  # a leader that dies without a word: its lock dies with it
        b.wait(10)
        _wait(lambda: n(c) >= 3, 30, "a process to take over from a killed leader")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    spans = sorted((t0, t1, pid) for pid, rs in _rounds(log).items() for t0, t1 in rs)
    assert len({pid for _, _, pid in spans}) == 3
    for (s0, e0, p0), (s1, _e1, p1) in zip(spans, spans[1:]):
        assert p0 == p1 or e0 <= s1, f"rounds of {p0} and {p1} overlapped"


def test_leadership_between_two_workspaces_of_one_process(tmp_path, db_url):
    """Two runners in one process (separate Workspace objects) compete like
    two processes: one leads, the other takes over when it stops."""
    home = tmp_path / "ws"
    ws1, ws2 = Workspace(home, database_url=db_url), Workspace(home, database_url=db_url)
    ran: list[str] = []
    r1, r2 = ThreadRunner(leader.for_database(ws1.db)), ThreadRunner(leader.for_database(ws2.db))
    try:
        r1.start(Job("probe", lambda: ran.append("r1"), 0.05, run_first=True))
        _wait(lambda: "r1" in ran, 10, "the first runner to lead")
        r2.start(Job("probe", lambda: ran.append("r2"), 0.05, run_first=True))
        time.sleep(0.5)
        assert "r2" not in ran and r2.stats()["probe"]["leading"] is False
        assert r1.stop(10)
        _wait(lambda: "r2" in ran, 10, "the second runner to take over")
        assert r2.stats()["probe"]["leading"] is True
    finally:
        r1.stop(10)
        r2.stop(10)
        ws1.close()
        ws2.close()


def test_a_job_must_be_well_formed():
    with pytest.raises(ValueError, match="interval"):
        Job("x", lambda: None, 0)
    with pytest.raises(ValueError, match="jitter"):
        Job("x", lambda: None, 1, jitter=1.5)
    r = ThreadRunner()
    r.start(Job("x", lambda: None, 10))
    with pytest.raises(ValueError, match="already running"):
        r.start(Job("x", lambda: None, 10))
    assert r.stop(5)
    with pytest.raises(RuntimeError, match="stopped"):
        r.start(Job("y", lambda: None, 10))


# ---------------------------------------------------------------- per-project failure isolation


def _answer_all(ws, p, people) -> None:
    for u in people:
        while (t := ws.next_task(p["id"], u)) is not None:
            ws.submit(t["id"], u, "pos" if t["item"]["id"] % 3 else "neg")


def test_a_failing_project_does_not_stop_the_round(ws, caplog):
    broken, broken_people = project_with_annotators(ws, 100, 2, overlap=2, name="broken")
    fine, fine_people = project_with_annotators(ws, 100, 2, overlap=2, name="fine")
    _answer_all(ws, broken, broken_people)
    _answer_all(ws, fine, fine_people)
    assert ws.refits_due() == [broken["id"], fine["id"]]  # the broken one comes first
    # an answer whose label is no class of its project: its re-fit raises
    with ws.db.write() as conn:
        conn.execute(text("UPDATE answers SET label = :l WHERE id = (SELECT min(id) FROM answers "
                          "WHERE project_id = :p)").bindparams(bindparam("l", type_=JSON)),
                     {"l": "no-such-class", "p": broken["id"]})
    with caplog.at_level(logging.ERROR, logger="assay.jobs"):
        out = jobs.refit_round(ws)
    assert list(out["refitted"]) == [fine["id"]]
    assert count(ws, "quality_models", "project_id = :p", p=fine["id"]) == 1
    assert count(ws, "quality_models", "project_id = :p", p=broken["id"]) == 0
    assert any(f"re-fit failed for project {broken['id']}" in r.getMessage() for r in caplog.records)
    # the next round tries the broken project again, and only it
    assert ws.refits_due() == [broken["id"]]


# ---------------------------------------------------------------- webhooks from domain events

SUBMIT_CHILD = textwrap.dedent(r'''
    import sys
    from assay import Workspace
    home, url, project, user = sys.argv[1:5]
    ws = Workspace(home, database_url=url)
    t = ws.next_task(int(project), user)
    a = ws.submit(t["id"], user, "neg")
    print(a["id"])
    # no close, no wait: the process ends here and flushes its webhook queue on the way out
''')


def test_answers_from_the_library_reach_the_backend(tmp_path, db_url, backend):  # noqa: F811
    home = tmp_path / "ws"
    ws = Workspace(home, database_url=db_url)
    try:
        ds = text_dataset(ws, "reviews", ["a great phone", "awful battery", "so so"])
        p = ws.create_project("sentiment", ds["id"], ["pos", "neg"])
        ws.connect_backend(p["id"], backend.url)
        for name in ("ann", "script"):
            u, _ = ws.add_user(name)
            ws.add_member(p["id"], u["id"])

        # Python, no HTTP: submit alone queues the webhook
        t = ws.next_task(p["id"], "ann")
        answer = ws.submit(t["id"], "ann", "pos")
        assert ws.wait_backend_notifications(10)
        (hook,) = backend.calls["webhook"]
        assert hook["action"] == "ANNOTATION_CREATED"
        assert hook["annotation"]["id"] == answer["id"] and hook["task"]["id"] == t["item"]["id"]
        assert hook["annotation"]["result"][0]["value"]["choices"] == ["pos"]

        # a refused answer (the lease is gone) sends nothing
        with pytest.raises(Conflict):
            ws.submit(t["id"], "ann", "neg")
        assert ws.wait_backend_notifications(10) and len(backend.calls["webhook"]) == 1

        # another process, a script that exits right after submitting
        r = subprocess.run([sys.executable, "-c", SUBMIT_CHILD, str(home), db_url, str(p["id"]), "script"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert len(backend.calls["webhook"]) == 2
        assert backend.calls["webhook"][1]["annotation"]["id"] == int(r.stdout.split()[-1])
        assert backend.calls["webhook"][1]["annotation"]["result"][0]["value"]["choices"] == ["neg"]
    finally:
        ws.close()


def test_answer_created_comes_after_the_commit(ws):
    """A subscriber reading from another connection sees the answer; one
    that raises changes nothing for the answer or the other subscribers."""
    p, (u,) = project_with_annotators(ws, 3, 1)
    seen: list = []

    def read_back(event):
        with ws.db.read() as conn:
            seen.append(conn.execute(text("SELECT label FROM answers WHERE id = :a").columns(label=JSON),
                                     {"a": event["answer"]["id"]}).scalar())

    def broken(event):
        raise RuntimeError("a subscriber's bug")

    events.subscribe("answer.created", broken)
    events.subscribe("answer.created", read_back)
    try:
        t = ws.next_task(p["id"], u)
        got = ws.submit(t["id"], u, "neg")
        assert got["label"] == "neg" and seen == ["neg"]
    finally:
        events.unsubscribe("answer.created", broken)
        events.unsubscribe("answer.created", read_back)
    t = ws.next_task(p["id"], u)
    ws.submit(t["id"], u, "pos")
    assert seen == ["neg"]  # unsubscribed
    assert not events.wanted("no.such.event") and events.emit("no.such.event", {}) == 0


# ---------------------------------------------------------------- the event loop stays free


def test_requests_are_served_while_a_job_is_stuck(ws):
    """The lease sweeper waits on a lock the test holds; meanwhile requests
    (reading the database) are answered at once."""
    admin, token = ws.add_user("root", "admin")
    h = {"Authorization": f"Bearer {token}"}
    app = create_app(ws, reclaim_interval=0.1, refit_interval=0)
    with TestClient(app) as c:
        runner = app.state.jobs
        _wait(lambda: runner.stats()["lease-sweeper"]["rounds"] >= 1, 10, "a first sweep")
        with ws.db.write() as conn:  # SQLite: the write lock; PostgreSQL: the leases table
            if ws.db.dialect == "postgresql":
                conn.execute(text("LOCK TABLE leases IN ACCESS EXCLUSIVE MODE"))
            _wait(lambda: (s := runner.stats()["lease-sweeper"])["running"]
                  and time.time() - s["last_started"] > 0.3, 10, "the sweeper to wait on the lock")
            rounds = runner.stats()["lease-sweeper"]["rounds"]
            t0 = time.perf_counter()
            for _ in range(5):
                r = c.get("/api/projects", headers=h)
                assert r.status_code == 200, r.text
            assert time.perf_counter() - t0 < 2.0
            stuck = runner.stats()["lease-sweeper"]
            assert stuck["running"] and stuck["rounds"] == rounds  # the round waited all along
        _wait(lambda: runner.stats()["lease-sweeper"]["rounds"] > rounds, 30, "the sweeper to go on")
    assert runner.stats()["lease-sweeper"]["failures"] == 0
