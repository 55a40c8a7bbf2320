"""What a new user hit in the first hour with the `assay` command (issue 11,
items 19, 21, 22, 23 and parts of 25), each through the real CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from PIL import Image

from assay import Workspace
from factories import run_cli as run
from conftest import drop_pg_database, make_pg_database

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def home(tmp_path, db_url, monkeypatch):
    """A workspace folder (SQLite or PostgreSQL), and a fresh cwd for relative paths."""
    h = tmp_path / "ws"
    monkeypatch.setenv("ASSAY_HOME", str(h))
    monkeypatch.setenv("ASSAY_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)
    return h




def one_line_error(r, *match: str) -> None:
    assert r.exit_code == 1, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.output.strip().count("\n") == 0, r.output
    assert r.output.startswith("error: "), r.output
    for m in match:
        assert m in r.output, r.output


def images(folder: str, n: int = 3) -> Path:
    d = Path(folder)
    d.mkdir()
    for i in range(n):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(d / f"{i}.png")
    return d


def counts(home: Path) -> dict:
    ws = Workspace(home)
    try:
        st = ws.status()
        return {k: st[k] for k in ("datasets", "items", "projects", "users")}
    finally:
        ws.close()


# ---------------------------------------------------------------- 19


def test_import_relative_image_folder(home):
    images("images")
    r = run("import", "digits", "images/")  # the README's own example
    assert r.exit_code == 0, r.output
    assert "imported 3 new items into 'digits'" in r.output


def test_quickstart_with_a_relative_image_folder(home):
    images("digits")
    r = run("quickstart", "--no-serve", "--data", "digits/")
    assert r.exit_code == 0, r.output
    assert "project 'demo': 3 tasks" in r.output
    assert counts(home) == {"datasets": 1, "items": 3, "projects": 1, "users": 3}


def test_failed_quickstart_leaves_nothing(home):
    Path("bad.csv").write_text("review\nfine\n")
    one_line_error(run("quickstart", "--no-serve", "--data", "bad.csv"), "no text column 'text'")
    assert counts(home) == {"datasets": 0, "items": 0, "projects": 0, "users": 0}
    one_line_error(run("quickstart", "--no-serve", "--classes", "a,a"), "class")  # bad classes: nothing either
    assert counts(home) == {"datasets": 0, "items": 0, "projects": 0, "users": 0}


# ---------------------------------------------------------------- 21


def test_rerun_quickstart_never_merges_the_sample_into_user_data(home):
    pd.DataFrame({"text": ["mine one", "mine two"]}).to_csv("mine.csv", index=False)
    assert run("quickstart", "--no-serve", "--data", "mine.csv").exit_code == 0
    r = run("quickstart", "--no-serve")
    assert r.exit_code == 0, r.output
    assert "using the existing demo project 'demo' (nothing imported)" in r.output
    assert len([line for line in r.output.splitlines() if "#token=" in line]) == 3  # fresh links
    assert counts(home) == {"datasets": 1, "items": 2, "projects": 1, "users": 3}
    pd.DataFrame({"text": ["other"]}).to_csv("other.csv", index=False)
    one_line_error(run("quickstart", "--no-serve", "--data", "other.csv"), "already has the 'demo' project")
    assert counts(home) == {"datasets": 1, "items": 2, "projects": 1, "users": 3}


def test_quickstart_leaves_a_users_own_sample_dataset_alone(home):
    pd.DataFrame({"text": ["mine"]}).to_csv("mine.csv", index=False)
    assert run("import", "sample", "mine.csv").exit_code == 0
    one_line_error(run("quickstart", "--no-serve"), "dataset 'sample'", "leaves existing data alone")
    assert counts(home) == {"datasets": 1, "items": 1, "projects": 0, "users": 0}


# ---------------------------------------------------------------- 25: the admin link


def test_quickstart_admin_link_opens_the_admin_page(home):
    r = run("quickstart", "--no-serve", "--port", "8123")
    assert r.exit_code == 0, r.output
    admin = next(line for line in r.output.splitlines() if line.split()[:2] == ["admin", "admin"])
    link = admin.split()[2]
    assert link.startswith("http://127.0.0.1:8123/login?next=/admin#token=asy_"), link
    # login.js sends the browser to ?next= after the token login
    js = (TESTS.parent / "src" / "assay" / "server" / "static" / "login.js").read_text()
    assert "location.search" in js and '"next"' in js
    alice = next(line for line in r.output.splitlines() if "alice" in line).split()[2]
    assert "next=" not in alice  # annotators land on labeling


# ---------------------------------------------------------------- 25: serve


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(home: Path, port: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "ASSAY_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "assay.cli", "serve", "--port", str(port), *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_serve_on_a_port_in_use_says_so_in_one_line(tmp_path):
    home = tmp_path / "ws"
    Workspace(home).close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p = _serve(home, port)
        out, err = p.communicate(timeout=60)
    assert p.returncode == 1
    assert "serving" not in out
    assert err.strip() == (f"error: port {port} on 127.0.0.1 is already in use (another assay serve?): "
                           "stop that server or choose another --port")


def test_serve_listens_before_it_says_serving(tmp_path):
    home = tmp_path / "ws"
    Workspace(home).close()
    port = _free_port()
    p = _serve(home, port)
    try:
        line = p.stdout.readline()
        assert f"serving {home} on http://127.0.0.1:{port}/" in line
        with socket.create_connection(("127.0.0.1", port), timeout=1):  # at once: already listening
            pass
        end = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/login", timeout=2, follow_redirects=True).status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < end
                time.sleep(0.1)
    finally:
        p.terminate()
        p.wait(20)


# ---------------------------------------------------------------- 25: export file mode


def _project_with_answer(home: Path) -> None:
    pd.DataFrame({"text": ["a", "b"]}).to_csv("t.csv", index=False)
    assert run("import", "t", "t.csv").exit_code == 0
    assert run("project", "create", "p", "--dataset", "t", "--classes", "x,y").exit_code == 0


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_cli_export_gets_the_umask_mode_and_keeps_an_existing_files_mode(home, fmt):
    _project_with_answer(home)
    old = os.umask(0o022)
    try:
        r = run("export", "p", f"out.{fmt}")
        assert r.exit_code == 0, r.output
        assert Path(f"out.{fmt}").stat().st_mode & 0o777 == 0o644
        os.umask(0o027)
        assert run("export", "p", f"other.{fmt}").exit_code == 0
        assert Path(f"other.{fmt}").stat().st_mode & 0o777 == 0o640
        os.chmod(f"out.{fmt}", 0o664)  # overwriting keeps the file's mode, as `>` does
        assert run("export", "p", f"out.{fmt}").exit_code == 0
        assert Path(f"out.{fmt}").stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(old)


def test_failed_cli_export_leaves_no_temp_file(home):
    _project_with_answer(home)
    Path("out").mkdir()
    Path("out/labels.jsonl").mkdir()  # a folder where the file should go: the rename fails
    r = run("export", "p", "out/labels.jsonl")
    assert r.exit_code != 0
    assert [p.name for p in Path("out").iterdir()] == ["labels.jsonl"]


# ---------------------------------------------------------------- 22


def test_postgres_connection_errors_are_one_line(tmp_path, monkeypatch):
    url = make_pg_database()
    drop_pg_database(url)  # a database that does not exist, on a live server
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("ASSAY_DATABASE_URL", url)
    name = url.rsplit("/", 1)[1]
    one_line_error(run("status"), "cannot connect to PostgreSQL", f'database "{name}" does not exist',
                   "Check ASSAY_DATABASE_URL")
    monkeypatch.setenv("ASSAY_DATABASE_URL", f"postgresql+psycopg://postgres:s3cret@127.0.0.1:{_free_port()}/x")
    r = run("status")  # a closed port: no server
    one_line_error(r, "cannot connect to PostgreSQL", "refused", "is running")
    assert "s3cret" not in r.output  # the password is not echoed
    one_line_error(run("serve", "--port", str(_free_port())), "cannot connect to PostgreSQL")


# ---------------------------------------------------------------- 23


def test_shared_data_folder_is_a_setting(tmp_path):
    code = "import conftest; print(conftest.SHARED_DATA)"
    env = {**os.environ, "ASSAY_SHARED_DATA": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], cwd=TESTS, env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == str(tmp_path.resolve())
