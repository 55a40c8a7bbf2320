"""Crash safety over real HTTP, on SQLite and PostgreSQL.

The real server runs as a subprocess (``uvicorn --factory
assay.server:app_from_env``). Annotator threads label over HTTP while the
server is killed with SIGKILL twice, mid-run. Afterwards: every answer a
client got a 2xx for is stored with its label; no task has more answers than
the overlap; the leases held at the crash come back to the pool by the
restarted server's own sweeper (no client traffic at all), and the project
can then be finished with exact counts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from _load import audit, label_for, make_annotators, make_project, open_tasks
from assay import Workspace

pytestmark = pytest.mark.slow

LEASE_SECONDS = 5  # the shortest allowed; the sweeper runs every 5 s


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One ``uvicorn`` process serving the workspace at ``home``."""

    def __init__(self, home: Path, db_url: str | None, admin_token: str, log: Path,
                 port: int | None = None) -> None:
        self.home, self.db_url, self.admin_token, self.log = home, db_url, admin_token, log
        self.proc: subprocess.Popen | None = None
        self.port = port or _free_port()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        env = {**os.environ, "ASSAY_HOME": str(self.home)}
        env.pop("ASSAY_DATABASE_URL", None)
        if self.db_url:
            env["ASSAY_DATABASE_URL"] = self.db_url
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "assay.server:app_from_env",
                 "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
                env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=self.home,
            )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                r = httpx.get(f"{self.base}/api/me", timeout=2,
                              headers={"Authorization": f"Bearer {self.admin_token}"})
                if r.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"server did not come up in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def servers():
    """Every server started by the test; all are SIGKILLed at the end, whatever happens."""
    started: list[Server] = []
    yield started
    for s in started:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.kill()
            try:
                s.proc.wait(10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass


class Annotator:
    """An HTTP client that labels until told to stop, recording what the
    server acknowledged (2xx) and what it sent without ever hearing back."""

    def __init__(self, user: dict, token: str, project_id: int) -> None:
        self.user, self.project_id = user, project_id
        self.headers = {"Authorization": f"Bearer {token}"}
        self.acked: dict[tuple[int, int], tuple[int, str]] = {}  # (task, user) -> (answer id, label)
        self.maybe: dict[tuple[int, int], str] = {}  # sent, reply lost: stored or not
        self.inflight: dict[tuple[int, int], str] = {}  # sent, reply not handled yet
        self.refused: list[tuple[int, int, int, str]] = []
        self.errors: list[str] = []
        self.transport_errors = 0
        self.base = ""

    def _post(self, client: httpx.Client, path: str, **kw) -> httpx.Response:
        return client.post(self.base + path, headers=self.headers, timeout=10, **kw)

    def submit(self, client: httpx.Client, task_id: int) -> None:
        label = label_for(task_id, self.user["id"])
        key = (task_id, self.user["id"])
        self.inflight[key] = label
        try:
            self._submit(client, task_id, key, label)
        finally:
            self.inflight.pop(key, None)

    def _submit(self, client: httpx.Client, task_id: int, key: tuple[int, int], label: str) -> None:
        try:
            r = self._post(client, f"/api/tasks/{task_id}/answers", json={"label": label})
        except httpx.TransportError:
            self.transport_errors += 1
            self.maybe[key] = label
            return
        if r.status_code == 201:
            a = r.json()["answer"]
            if (a["task_id"], a["annotator_id"], a["label"]) != (task_id, self.user["id"], label):
                self.errors.append(f"odd answer {a}")
            if key in self.acked:
                self.errors.append(f"task {task_id} acknowledged twice for user {self.user['id']}")
            self.acked[key] = (a["id"], a["label"])
            self.maybe.pop(key, None)
        elif r.status_code == 409 and key in self.maybe:
            # A retry of a submit whose reply was lost: it was stored before the
            # crash ("already answered") or its slot went to someone else.
            self.refused.append((task_id, r.status_code, 0, r.json()["error"]["message"]))
        else:
            self.errors.append(f"submit {task_id}: {r.status_code} {r.text}")

    def run(self, base: str, stop: threading.Event, audit_ws: Workspace, deadline: float) -> None:
        """Retry lost submits, then next → submit until the project is finished or ``stop``."""
        self.base = base
        with httpx.Client() as client:
            for task_id, _user in list(self.maybe):
                if stop.is_set():
                    return
                self.submit(client, task_id)
            while not stop.is_set() and time.monotonic() < deadline and not self.errors:
                try:
                    r = self._post(client, f"/api/projects/{self.project_id}/tasks/next")
                except httpx.TransportError:
                    self.transport_errors += 1
                    time.sleep(0.05)  # the server is down: wait for it to come back
                    continue
                if r.status_code != 200:
                    self.errors.append(f"next: {r.status_code} {r.text}")
                    return
                task = r.json()["task"]
                if task is None:
                    if open_tasks(audit_ws, self.project_id) == 0:
                        return
                    time.sleep(0.05)
                    continue
                key = (task["id"], self.user["id"])
                if key in self.acked:
                    self.errors.append(f"task {task['id']} handed out again to user {self.user['id']}")
                    return
                # (A task whose answer was lost in a crash comes back with the
                # user's own lease, if it is still live: answering again is right.)
                self.submit(client, task["id"])


def _acked(anns: list[Annotator]) -> dict:
    out: dict = {}
    for a in anns:
        for k, v in a.acked.items():
            assert k not in out
            out[k] = v
    return out


def _maybe(anns: list[Annotator]) -> dict:
    """Answers whose outcome the clients don't know: replies lost in a crash,
    and requests still in flight when the server was killed (their threads
    have not yet seen the broken connection)."""
    return {k: v for a in anns for k, v in (*a.maybe.items(), *list(a.inflight.items()))}


def _leases(ws: Workspace) -> set[tuple[int, int]]:
    with ws.db.read() as conn:
        return {(r.task_id, r.annotator_id) for r in conn.execute(
            text("SELECT task_id, annotator_id FROM leases"))}


def _wait_for(cond, timeout: float, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def test_kill9_mid_run_loses_nothing(tmp_path, db_url, servers):
    home = tmp_path  # SQLite: the server finds assay.db in ASSAY_HOME, like db_url says
    pg_url = None if db_url.startswith("sqlite") else db_url
    n_tasks, overlap, n_workers = 150, 2, 6
    ws = Workspace(home, database_url=db_url)
    try:
        pid = make_project(ws, tmp_path, n_tasks=n_tasks, overlap=overlap, lease_seconds=LEASE_SECONDS)
        _admin, admin_token = ws.add_user("admin", "admin")
        people = make_annotators(ws, pid, n_workers + 2)
        anns = [Annotator(u, tok, pid) for u, tok in people[:n_workers]]
        quitters = [Annotator(u, tok, pid) for u, tok in people[n_workers:]]
        total = n_tasks * overlap
        deadline = time.monotonic() + 90

        def start_server(port: int | None = None) -> Server:
            s = Server(home, pg_url, admin_token, tmp_path / "server.log", port)
            servers.append(s)
            s.start()
            return s

        def launch(base: str, stop: threading.Event) -> list[threading.Thread]:
            ts = [threading.Thread(target=a.run, args=(base, stop, ws, deadline), daemon=True)
                  for a in anns]
            for t in ts:
                t.start()
            return ts

        def wait_acked(n: int) -> None:
            ok = _wait_for(lambda: len(_acked(anns)) >= n or any(a.errors for a in anns), 40, 0.002)
            assert ok, f"only {len(_acked(anns))} answers acknowledged"
            assert not [e for a in anns for e in a.errors], [e for a in anns for e in a.errors]

        def check_durable() -> None:
            # Acknowledged answers are all there; the only others are lost replies.
            audit(ws, pid, expect_done=False, answers=_acked(anns), maybe_answers=_maybe(anns),
                  skips=set(), leases_left=None)

        # --- crash 1: mid-run; the clients keep retrying and carry on after the
        # restart on the same port.
        srv = start_server()
        stop = threading.Event()
        threads = launch(srv.base, stop)
        wait_acked(total // 5)
        srv.kill9()
        check_durable()
        srv2 = start_server(srv.port)

        # --- crash 2: two quitters grab leases just before it; then no traffic at all.
        wait_acked(total // 2)
        with httpx.Client() as c:
            for q in quitters:
                got = []
                for _ in range(3):
                    r = c.post(f"{srv2.base}/api/projects/{pid}/tasks/next", headers=q.headers,
                               json={"exclude": got}, timeout=10)
                    assert r.status_code == 200, r.text
                    got.append(r.json()["task"]["id"])
                assert len(set(got)) == 3
        srv2.kill9()
        stop.set()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        crash_at = time.time()
        check_durable()
        held = _leases(ws)
        quitter_leases = {(k[0], q.user["id"]) for q in quitters for k in held if k[1] == q.user["id"]}
        assert len(quitter_leases) == 6 and quitter_leases <= held
        assert len(_acked(anns)) < total, "the crash came too late to interrupt anything"

        # --- restart; the server's own sweeper returns the crashed leases (nobody calls next).
        srv3 = start_server()
        assert _wait_for(lambda: not (_leases(ws) & held), LEASE_SECONDS + 12, 0.2), (
            f"leases held at the crash were not reclaimed: {sorted(_leases(ws) & held)}")
        assert time.time() - crash_at >= LEASE_SECONDS - 1.5  # reclaimed by expiry, not at once
        audit(ws, pid, expect_done=False, answers=_acked(anns), maybe_answers=_maybe(anns),
              skips=set(), leases_left=set())

        # --- finish the project through the restarted server.
        stop = threading.Event()
        threads = launch(srv3.base, stop)
        for t in threads:
            t.join(max(1.0, deadline - time.monotonic()))
            assert not t.is_alive(), "annotator hung"
        errs = [e for a in anns for e in a.errors]
        assert not errs, errs

        acked, maybe = _acked(anns), _maybe(anns)
        with ws.db.read() as conn:
            stored = conn.execute(text("SELECT count(*) FROM answers")).scalar_one()
        assert stored == total
        audit(ws, pid, expect_done=True, answers=acked, maybe_answers=maybe, skips=set(),
              leases_left=set())
        # A lost reply whose answer is not stored was refused on retry, never silently dropped.
        with ws.db.read() as conn:
            pairs = {(r.task_id, r.annotator_id) for r in conn.execute(
                text("SELECT task_id, annotator_id FROM answers"))}
        for key in maybe:
            retried = any(ref[0] == key[0] for a in anns if a.user["id"] == key[1] for ref in a.refused)
            assert key in pairs or retried, f"lost submit {key} neither stored nor retried"

        # The quitters come back after the work is done: their late answers are refused.
        with httpx.Client() as c:
            for q in quitters:
                for task_id, uid in quitter_leases:
                    if uid != q.user["id"]:
                        continue
                    r = c.post(f"{srv3.base}/api/tasks/{task_id}/answers", headers=q.headers,
                               json={"label": label_for(task_id, uid)}, timeout=10)
                    assert r.status_code == 409, r.text
        audit(ws, pid, expect_done=True, answers=acked, maybe_answers=maybe, skips=set(),
              leases_left=set())
        assert sum(a.transport_errors for a in anns) > 0, "the crashes never hit a client"
    finally:
        ws.close()


# ---------------------------------------------------------------- crashes leave no litter
# An import killed with SIGKILL mid-way: the blobs it wrote before its rows
# committed, its dataset and its upload copy must not outlive it. The import
# creates its dataset in its own transaction; blobs are journaled and swept
# when a workspace (or a server) next opens; upload folders are flock'ed and
# swept at server start.


def _image_folder(folder: Path, n: int) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        im = Image.new("RGB", (4, 4), (i % 256, (i // 256) % 256, 0))
        im.save(folder / f"{i:05d}.png")
    return folder


def _zip_of(folder: Path, out: Path) -> Path:
    import zipfile

    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, p.name)
    return out


def _blob_files(home: Path) -> list[Path]:
    root = home / "blobs"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _work_files(home: Path) -> list[Path]:
    work = home / "blobs-work"
    return [p for p in work.rglob("*") if p.is_file() and p.name != "lock"] if work.exists() else []


@pytest.mark.parametrize("source", ["folder", "zip"])
def test_kill9_mid_cli_import_leaves_no_litter(tmp_path, db_url, source):
    home = tmp_path / "ws"
    imgs = _image_folder(tmp_path / "imgs", 2500)
    path = imgs if source == "folder" else _zip_of(imgs, tmp_path / "imgs.zip")
    Workspace(home, database_url=db_url).close()  # migrated up front, as `assay init` does
    env = {**os.environ, "ASSAY_HOME": str(home), "ASSAY_DATABASE_URL": db_url}
    proc = subprocess.Popen([sys.executable, "-m", "assay.cli", "import", "digits", str(path)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert _wait_for(lambda: len(_blob_files(home)) >= 30 or proc.poll() is not None, 60, 0.01)
        assert proc.poll() is None, "the import ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(_blob_files(home)) >= 30  # the crash did leave blobs behind ...
    ws = Workspace(home, database_url=db_url)  # ... and opening the workspace sweeps them
    try:
        assert _blob_files(home) == []
        assert _work_files(home) == []
        assert ws.list_datasets() == []  # no empty dataset from the import that never finished
        with ws.db.read() as conn:
            assert conn.execute(text("SELECT count(*) FROM imports")).scalar_one() == 0
        r = ws.import_file("digits", path, create=True)  # and the workspace is whole again
        assert r["added"] == 2500 and len(_blob_files(home)) == 2500
    finally:
        ws.close()


def test_sweep_never_touches_a_running_import(tmp_path, db_url):
    """A second workspace opening (and sweeping) while an import writes blobs
    leaves them alone: the import holds the blob store shared."""
    from assay.store.blobs import BlobStore

    home = tmp_path / "ws"
    ws = Workspace(home, database_url=db_url)
    try:
        with ws.blobs.session() as journal:
            journal.append("ab/cdef.png")
            ws.blobs.put("ab/cdef.png", b"x")
            other = Workspace(home, database_url=db_url)  # sweeps on open
            other.close()
            assert BlobStore(home / "blobs").exists("ab/cdef.png")
        assert ws.sweep_litter() == 1  # once the (never finished) import is gone, it goes
        assert _blob_files(home) == []
    finally:
        ws.close()


def test_kill9_mid_upload_import_leaves_no_litter(tmp_path, db_url, servers):
    home = tmp_path
    pg_url = None if db_url.startswith("sqlite") else db_url
    spool = tmp_path / "tmp"
    spool.mkdir()
    zpath = _zip_of(_image_folder(tmp_path / "imgs", 2500), tmp_path / "imgs.zip")
    ws = Workspace(home, database_url=db_url)
    try:
        _admin, token = ws.add_user("admin", "admin")
        ds = ws.create_dataset("digits")
    finally:
        ws.close()
    old_tmp = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(spool)  # the server's temp dir, to watch its upload copy
    try:
        s = Server(home, pg_url, token, tmp_path / "server.log")
        servers.append(s)
        s.start()
        errors: list[BaseException] = []

        def upload() -> None:
            try:
                with zpath.open("rb") as fh:
                    httpx.post(f"{s.base}/api/datasets/{ds['id']}/import", timeout=60,
                               headers={"Authorization": f"Bearer {token}"},
                               files={"file": ("imgs.zip", fh, "application/zip")})
            except httpx.TransportError:
                pass
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        t = threading.Thread(target=upload, daemon=True)
        t.start()
        assert _wait_for(lambda: len(_blob_files(home)) >= 30, 60, 0.01), s.log.read_text()[-2000:]
        s.kill9()
        t.join(30)
        assert not errors
        assert [p.name for p in spool.glob("assay-upload-*")]  # the crash left its copy ...
        restarted = Server(home, pg_url, token, tmp_path / "server.log")
        servers.append(restarted)
        restarted.start()  # ... and the restarted server sweeps it, and the blobs
        assert list(spool.glob("assay-upload-*")) == []
        assert _blob_files(home) == []
        r = httpx.get(f"{restarted.base}/api/datasets/{ds['id']}", headers={"Authorization": f"Bearer {token}"})
        assert r.json()["item_count"] == 0
    finally:
        if old_tmp is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old_tmp
