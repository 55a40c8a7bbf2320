"""Hand-out benchmark: 50 concurrent annotators over real HTTP against a
project with 1,000,000 tasks (overlap 1), on SQLite and on PostgreSQL.

Each annotator is a coroutine with its own token doing ``POST
/api/projects/{id}/tasks/next`` + ``POST /api/tasks/{id}/answers`` in a loop,
all over one aiohttp ``ClientSession`` (connector limit >= annotators). The
load can be split over several client processes (``--clients 2``) so the
generator is not the bottleneck on a small machine.

Measured over a fixed window after a warm-up: answers/s, p50/p95/p99 of next
and submit, the server's CPU seconds (psutil, process tree) and each client's
CPU seconds. Afterwards the database is checked directly: no task with more
answers than needed, no duplicate (task, annotator) answer, answer rows ==
sum(answer_count), open_slots == needed - answers - leases, every answer the
clients got a 2xx for is in the database, and no task was handed to two
annotators.

Bars (SQLite): >= 500 answers/s sustained, p95 of next <= 50 ms.

Skill-aware routing (issue 13): ``--routing off,skill`` runs each mode in
turn (``--repeat`` pairs, alternated, each on a fresh copy) and prints the
ratio routed/plain of answers/s and of server CPU per answer (bar: routed >=
0.80 of plain). ``--fitted`` (implied when ``skill`` is among the modes, and
applied to both modes of a pair) gives every copy a fitted crowd model before
the server starts: a class prior and default confusion, a confusion matrix
for every annotator, and a posterior for each of the first
``--fitted-items`` items in pool order (what re-fits leave), so the routed
path does its whole work: a window of 32 candidates that all have a stored
posterior, a skill row, the scoring, and the claim by id.

The 1M-task workspace is built once and cached under ``--cache`` (default
/tmp/assay-bench-handout); each run works on a fresh copy (SQLite: a file
copy, PostgreSQL: CREATE DATABASE ... TEMPLATE).

    python benchmarks/bench_handout.py --backend sqlite
    python benchmarks/bench_handout.py --backend postgresql --clients 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

BAR_RPS, BAR_P95_MS = 500.0, 50.0
CLASSES = ["positive", "negative", "neutral"]
PG_TEMPLATE = "assay_bench_handout_{n}"


# ---------------------------------------------------------------- building


def build(cache: Path, backend: str, n_tasks: int, n_annotators: int) -> dict:
    """Build (once) the workspace with ``n_tasks`` tasks and annotators."""
    tag = f"{backend}-{n_tasks}"
    folder = cache / tag
    meta_path = folder / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        ok = len(meta["tokens"]) >= n_annotators
        if backend == "postgresql":
            ok = ok and C.pg_exists(meta["pg_template"])
        if ok:
            return meta
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    from assay import Workspace

    url = None
    template = None
    if backend == "postgresql":
        template = PG_TEMPLATE.format(n=n_tasks)
        url = C.pg_create(template)
    t0 = time.perf_counter()
    csv_path = C.write_csv(folder / "texts.csv", n_tasks, seed=7)
    ws = Workspace(folder / "home", database_url=url)
    ds = ws.create_dataset("bench")
    ws.import_file(ds["id"], csv_path)
    csv_path.unlink()
    p = ws.create_project("bench", ds["id"], CLASSES, overlap=1, lease_seconds=600)
    tokens = []
    for i in range(max(n_annotators, 64)):
        u, tok = ws.add_user(f"annotator{i:03d}", "annotator")
        ws.add_member(p["id"], u["id"])
        tokens.append(tok)
    ws.close()
    if template:
        import psycopg

        # Vacuum/analyze so that every copy starts with fresh statistics.
        with psycopg.connect(C.PG_ADMIN.rsplit("/", 1)[0] + "/" + template, autocommit=True) as c:
            c.execute("VACUUM ANALYZE")
    else:
        import sqlite3

        con = sqlite3.connect(folder / "home" / "assay.db")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("ANALYZE")
        con.close()
    meta = {"project_id": p["id"], "tokens": tokens, "pg_template": template,
            "build_s": round(time.perf_counter() - t0, 1), "tasks": n_tasks}
    meta_path.write_text(json.dumps(meta))
    return meta


def fit_copy(home: Path, url: str | None, project_id: int, routing: str, fitted: bool, n_items: int,
             seed: int) -> dict:
    """Set the copy's routing and (``fitted``) write a fitted crowd model: the
    class prior and default confusion, a random confusion matrix per member
    (accuracy 0.55-0.95), the close table of the answers-saved rule (as a
    routed adaptive project's re-fit stores it) and a random posterior for each of the first
    ``n_items`` pool tasks' items. Returns what was written."""
    import numpy as np
    from sqlalchemy import JSON, bindparam, text

    from assay import Workspace
    from assay.engine import ledger, redundancy

    t0 = time.perf_counter()
    ws = Workspace(home, database_url=url)
    try:
        ws.update_project(project_id, routing=routing)
        if not fitted:
            return {"routing": routing, "fitted": False}
        rng = np.random.default_rng(seed)
        k = len(CLASSES)
        with ws.db.write() as conn:
            users = [r[0] for r in conn.execute(text("SELECT user_id FROM members WHERE project_id = :p"),
                                                {"p": project_id})]
            skills = []
            for u in users:
                acc = rng.uniform(0.55, 0.95)
                off = rng.dirichlet(np.ones(k - 1), size=k) * (1 - acc)
                conf = np.array([np.insert(off[c], c, acc) for c in range(k)])
                skills.append({"u": u, "c": conf.tolist(), "a": float(acc), "n": 100})
            redundancy.store_skills(conn, project_id, skills)
            conn.execute(text("DELETE FROM quality_models WHERE project_id = :p"), {"p": project_id})
            default = (np.full((k, k), 0.2 / (k - 1)) + np.eye(k) * (0.8 - 0.2 / (k - 1))).tolist()
            # what a routed adaptive project's re-fit leaves: the close table of the
            # answers-saved rule, so that the routed hand-out scores by it
            from assay.quality import routing as rule

            close = rule.close_table(np.array([s["c"] for s in skills]), np.ones(len(skills)), 0.995, 3).as_dict()
            conn.execute(text(
                "INSERT INTO quality_models (project_id, method, prior, default_confusion, answers, fitted_at) "
                "VALUES (:p, 'ds', :prior, :dc, :n, :now)").bindparams(
                    bindparam("prior", type_=JSON), bindparam("dc", type_=JSON)),
                {"p": project_id, "prior": [1.0 / k] * k, "dc": {"confusion": default, "settle": None, "close": close},
                 "n": 100 * len(users), "now": time.time()})
            items = [r[0] for r in conn.execute(text(
                "SELECT item_id FROM tasks t WHERE project_id = :p AND open_slots > 0 "
                f"ORDER BY {ledger.POOL_ORDER} LIMIT :n"), {"p": project_id, "n": n_items})]
            post = rng.dirichlet(np.ones(k) * 0.7, size=len(items))
            lp = np.log(np.maximum(post, 1e-12))
            rows = [{"p": project_id, "i": i, "label": CLASSES[int(np.argmax(post[j]))],
                     "conf": float(post[j].max()), "lp": lp[j].tolist(), "n": 0, "status": "open", "now": 0.0}
                    for j, i in enumerate(items)]
            for c in range(0, len(rows), 5000):
                ledger.upsert_consensus(conn, rows[c:c + 5000])
    finally:
        ws.close()
    return {"routing": routing, "fitted": True, "skills": len(users), "posteriors": len(items),
            "fit_s": round(time.perf_counter() - t0, 1)}


def fresh_copy(cache: Path, backend: str, n_tasks: int, meta: dict, run_dir: Path) -> tuple[Path, str | None, str | None]:
    """A pristine copy of the cached workspace: (home, database url, pg db name)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    home = run_dir / "home"
    src = cache / f"{backend}-{n_tasks}" / "home"
    if backend == "sqlite":
        shutil.copytree(src, home)
        return home, None, None
    home.mkdir(parents=True)
    name = f"assay_bench_handout_run_{os.getpid()}"
    import psycopg

    with psycopg.connect(C.PG_ADMIN, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}" TEMPLATE "{meta["pg_template"]}"')
    return home, C.pg_url(name), name


# ---------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, url: str | None, port: int, workers: int, log_path: Path) -> subprocess.Popen:
    env = dict(os.environ, ASSAY_HOME=str(home))
    env.setdefault("PYTHONPATH", str(C.ROOT / "src"))
    if url:
        env["ASSAY_DATABASE_URL"] = url
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "assay.server:app_from_env",
           "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
           "--no-access-log", "--log-level", "warning"]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    import httpx

    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early; see {log_path}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/me", timeout=1).status_code in (200, 401):
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not come up in 60 s")


def _machine_cpu() -> float:
    """Busy CPU seconds of the whole machine (all processes, all cores)."""
    import psutil

    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)


def tree_cpu(pid: int) -> float:
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for q in procs:
        try:
            t = q.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def postgres_cpu() -> float:
    """CPU seconds of every postgres process on this machine (its backends)."""
    import psutil

    total = 0.0
    for q in psutil.process_iter(["name"]):
        try:
            if q.info["name"] and q.info["name"].startswith("postgres"):
                t = q.cpu_times()
                total += t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ---------------------------------------------------------------- client


async def _client(base: str, project_id: int, tokens: list[str], t_start: float, t_end: float,
                  seed: int) -> dict:
    import aiohttp
    import orjson

    rnd = random.Random(seed)
    next_lat: list[float] = []
    sub_lat: list[float] = []
    win_answers = 0
    answer_ids: list[int] = []
    handed: list[int] = []
    errors: dict[str, int] = {}
    cpu: dict[str, float] = {}
    exhausted = 0

    async def clock():
        await asyncio.sleep(max(0.0, t_start - time.time()))
        cpu["start"] = time.process_time()
        await asyncio.sleep(max(0.0, t_end - time.time()))
        cpu["end"] = time.process_time()

    def err(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    async def annotator(session, token: str):
        nonlocal win_answers, exhausted
        h = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        next_url = f"{base}/api/projects/{project_id}/tasks/next"
        while time.time() < t_end:
            t0 = time.perf_counter()
            async with session.post(next_url, headers=h, data=b"") as r:
                body = await r.read()
                st = r.status
            t1 = time.perf_counter()
            now = time.time()
            if st != 200:
                err(f"next {st}: {body[:120]!r}")
                await asyncio.sleep(0.05)
                continue
            if t_start <= now <= t_end:
                next_lat.append(t1 - t0)
            task = orjson.loads(body)["task"]
            if task is None:
                exhausted += 1
                return
            handed.append(task["id"])
            payload = orjson.dumps({"label": rnd.choice(CLASSES)})
            t2 = time.perf_counter()
            async with session.post(f"{base}/api/tasks/{task['id']}/answers", headers=h, data=payload) as r:
                body = await r.read()
                st = r.status
            t3 = time.perf_counter()
            now = time.time()
            if st != 201:
                err(f"submit {st}: {body[:120]!r}")
                continue
            answer_ids.append(orjson.loads(body)["answer"]["id"])
            if t_start <= now <= t_end:
                sub_lat.append(t3 - t2)
                win_answers += 1

    conn = aiohttp.TCPConnector(limit=max(64, len(tokens) + 8))
    async with aiohttp.ClientSession(connector=conn) as session:
        clk = asyncio.create_task(clock())
        await asyncio.gather(*(annotator(session, t) for t in tokens))
        await clk
    return {"next_lat": next_lat, "sub_lat": sub_lat, "win_answers": win_answers,
            "answer_ids": answer_ids, "handed": handed, "errors": errors,
            "cpu_s": cpu.get("end", 0) - cpu.get("start", 0), "exhausted": exhausted}


def client_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    out = asyncio.run(_client(spec["base"], spec["project_id"], spec["tokens"], spec["t_start"],
                              spec["t_end"], spec["seed"]))
    Path(spec["out"]).write_text(json.dumps(out))


# ---------------------------------------------------------------- checks


def integrity(home: Path, url: str | None) -> dict:
    from sqlalchemy import text

    from assay.store import Database

    db = Database(url or f"sqlite:///{home / 'assay.db'}")
    q = {
        "tasks_over_needed": "SELECT count(*) FROM tasks WHERE answer_count > needed",
        "tasks_with_more_answers_than_needed":
            "SELECT count(*) FROM (SELECT a.task_id FROM answers a JOIN tasks t ON t.id = a.task_id "
            "GROUP BY a.task_id, t.needed HAVING count(*) > t.needed) x",
        "duplicate_task_annotator":
            "SELECT count(*) FROM (SELECT task_id, annotator_id FROM answers "
            "GROUP BY task_id, annotator_id HAVING count(*) > 1) x",
        "answer_rows": "SELECT count(*) FROM answers",
        "answer_count_sum": "SELECT COALESCE(sum(answer_count), 0) FROM tasks",
        # Touched tasks (cheap test first) whose counters disagree with the rows;
        # untouched tasks are also checked: they must have no answer at all.
        "tasks_count_mismatch":
            "SELECT count(*) FROM tasks t WHERE (t.answer_count > 0 OR t.open_slots < t.needed) "
            "AND t.answer_count <> (SELECT count(*) FROM answers a WHERE a.task_id = t.id)",
        "untouched_tasks_with_answers":
            "SELECT count(*) FROM answers a JOIN tasks t ON t.id = a.task_id "
            "WHERE t.answer_count = 0 AND t.open_slots = t.needed",
        "slots_mismatch":
            "SELECT count(*) FROM tasks t WHERE (t.answer_count > 0 OR t.open_slots < t.needed) "
            "AND t.open_slots <> t.needed - t.answer_count - "
            "(SELECT count(*) FROM leases l WHERE l.task_id = t.id)",
        "leases_left": "SELECT count(*) FROM leases",
    }
    with db.read() as conn:
        out = {k: int(conn.execute(text(v)).scalar_one()) for k, v in q.items()}
        out["answer_ids"] = set(conn.execute(text("SELECT id FROM answers")).scalars())
    db.dispose()
    return out


def pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000, 2)


# ---------------------------------------------------------------- main


def run(a, backend: str, routing: str = "off") -> dict:
    cache = Path(a.cache)
    meta = build(cache, backend, a.tasks, a.annotators)
    run_dir = cache / f"run-{backend}-{os.getpid()}"
    home, url, dbname = fresh_copy(cache, backend, a.tasks, meta, run_dir)
    prep = None
    if a.routing != ["off"] or a.fitted:
        prep = fit_copy(home, url, meta["project_id"], routing, a.fitted or "skill" in a.routing, a.fitted_items,
                        seed=11)
    port = free_port()
    load_before = os.getloadavg()
    server = start_server(home, url, port, a.workers, run_dir / "server.log")
    try:
        tokens = meta["tokens"][: a.annotators]
        t_start = time.time() + 2.0 + a.warmup  # 2 s for the clients to start
        t_end = t_start + a.window
        procs, outs = [], []
        for k in range(a.clients):
            spec = {"base": f"http://127.0.0.1:{port}", "project_id": meta["project_id"],
                    "tokens": tokens[k:: a.clients], "t_start": t_start, "t_end": t_end,
                    "seed": k, "out": str(run_dir / f"client{k}.json")}
            sp = run_dir / f"client{k}.spec.json"
            sp.write_text(json.dumps(spec))
            outs.append(Path(spec["out"]))
            procs.append(subprocess.Popen([sys.executable, __file__, "--client", str(sp)]))
        time.sleep(max(0.0, t_start - time.time()))
        spy = None
        if a.profile:
            # py-spy (pip install py-spy) samples the server during the window.
            spy = subprocess.Popen([os.environ.get("PY_SPY", "py-spy"), "record", "-p", str(server.pid),
                                    "-d", str(int(a.window)), "-r", "100", "-f", a.profile_format,
                                    "-o", a.profile, "--subprocesses", "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        s0, pg0, m0 = tree_cpu(server.pid), postgres_cpu() if url else 0.0, _machine_cpu()
        time.sleep(max(0.0, t_end - time.time()))
        s1, pg1, m1 = tree_cpu(server.pid), postgres_cpu() if url else 0.0, _machine_cpu()
        if spy is not None:
            spy.wait(60)
        for p in procs:
            if p.wait(120) != 0:
                raise SystemExit("a client process failed")
    finally:
        stop_server(server)
    res = [json.loads(o.read_text()) for o in outs]
    next_lat = [x for r in res for x in r["next_lat"]]
    sub_lat = [x for r in res for x in r["sub_lat"]]
    win_answers = sum(r["win_answers"] for r in res)
    client_ids = [i for r in res for i in r["answer_ids"]]
    handed = [i for r in res for i in r["handed"]]
    errors: dict[str, int] = {}
    for r in res:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    chk = integrity(home, url)
    db_ids = chk.pop("answer_ids")
    chk["client_2xx_answers"] = len(client_ids)
    chk["client_2xx_missing_in_db"] = len(set(client_ids) - db_ids)
    chk["db_answers_without_2xx"] = len(db_ids - set(client_ids))
    chk["tasks_handed_to_two"] = len(handed) - len(set(handed))
    chk["ok"] = (chk["tasks_over_needed"] == 0 and chk["tasks_with_more_answers_than_needed"] == 0
                 and chk["duplicate_task_annotator"] == 0
                 and chk["answer_rows"] == chk["answer_count_sum"] and chk["tasks_count_mismatch"] == 0
                 and chk["untouched_tasks_with_answers"] == 0
                 and chk["slots_mismatch"] == 0 and chk["client_2xx_missing_in_db"] == 0
                 and chk["tasks_handed_to_two"] == 0)
    if dbname:
        C.pg_drop(dbname)
    if not a.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    rps = win_answers / a.window
    p95 = pct(next_lat, 95)
    out = {
        "bench": "handout", "backend": backend, "routing": routing, "prepared": prep, "tasks": a.tasks,
        "annotators": a.annotators,
        "clients": a.clients, "server_workers": a.workers, "warmup_s": a.warmup, "window_s": a.window,
        "answers_per_s": round(rps, 1),
        "next_ms": {"p50": pct(next_lat, 50), "p95": p95, "p99": pct(next_lat, 99), "n": len(next_lat)},
        "submit_ms": {"p50": pct(sub_lat, 50), "p95": pct(sub_lat, 95), "p99": pct(sub_lat, 99),
                      "n": len(sub_lat)},
        "server_cpu_s": round(s1 - s0, 2),
        "server_cpu_per_answer_ms": round((s1 - s0) / max(1, win_answers) * 1000, 3),
        "client_cpu_s": [round(r["cpu_s"], 2) for r in res],
        "postgres_cpu_s": round(pg1 - pg0, 2) if url else None,
        "machine_busy_cpu_s": round(m1 - m0, 2),
        "machine_cpu_s_available": round(a.window * (os.cpu_count() or 1), 1),
        "loadavg_1m_before": round(load_before[0], 2),
        "errors": errors,
        "integrity": chk,
        "bars": {"answers_per_s": BAR_RPS, "next_p95_ms": BAR_P95_MS} if backend == "sqlite" else None,
        "machine": C.machine(),
    }
    if backend == "postgresql":
        out["machine"]["postgresql"] = C.pg_version()
    out["pass"] = chk["ok"] and not errors and (
        backend != "sqlite" or (rps >= BAR_RPS and p95 is not None and p95 <= BAR_P95_MS))
    return out


def paired(a, backend: str, header: list, row) -> None:
    """``--repeat`` rounds of every ``--routing`` mode in turn (the first mode
    first in even rounds, last in odd ones); each round's ratio of the last
    mode to the first in answers/s and server CPU per answer."""
    rounds = []
    for i in range(a.repeat):
        modes = a.routing if i % 2 == 0 else a.routing[::-1]
        got = {m: run(a, backend, m) for m in modes}
        rounds.append(got)
        base, other = got[a.routing[0]], got[a.routing[-1]]
        print(json.dumps({"round": i + 1, "order": modes, **{m: {
            "answers_per_s": r["answers_per_s"], "server_cpu_per_answer_ms": r["server_cpu_per_answer_ms"],
            "next_p95_ms": r["next_ms"]["p95"], "integrity_ok": r["integrity"]["ok"], "errors": r["errors"]}
            for m, r in got.items()},
            "ratio_answers_per_s": round(other["answers_per_s"] / max(base["answers_per_s"], 1e-9), 3),
            "ratio_cpu_per_answer": round(other["server_cpu_per_answer_ms"]
                                          / max(base["server_cpu_per_answer_ms"], 1e-9), 3)}), flush=True)
    first, last = a.routing[0], a.routing[-1]
    ratios = sorted(r[last]["answers_per_s"] / r[first]["answers_per_s"] for r in rounds)
    cpu = sorted(r[last]["server_cpu_per_answer_ms"] / r[first]["server_cpu_per_answer_ms"] for r in rounds)
    summary = {"bench": "handout_routing_paired", "backend": backend, "modes": a.routing, "rounds": a.repeat,
               "ratio_answers_per_s_median": round(ratios[len(ratios) // 2], 3),
               "ratio_answers_per_s_all": [round(x, 3) for x in ratios],
               "ratio_cpu_per_answer_median": round(cpu[len(cpu) // 2], 3),
               "ratio_cpu_per_answer_all": [round(x, 3) for x in cpu],
               "integrity_ok_all": all(r[m]["integrity"]["ok"] for r in rounds for m in r),
               "bar_ratio": 0.80, "pass": ratios[len(ratios) // 2] >= 0.80,
               "runs": [r[m] for r in rounds for m in a.routing]}
    print(json.dumps(summary, indent=2))
    print()
    print("| round | routing | " + " | ".join(header) + " |")
    print("|" + "---|" * (len(header) + 2))
    for i, r in enumerate(rounds, 1):
        for m in a.routing:
            print(f"| {i} | {m} | " + " | ".join(str(x) for x in row(r[m])) + " |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    ap.add_argument("--tasks", type=int, default=1_000_000)
    ap.add_argument("--annotators", type=int, default=50)
    ap.add_argument("--clients", type=int, default=1, help="load-generator processes")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn workers")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--window", type=float, default=25.0)
    ap.add_argument("--cache", default="/tmp/assay-bench-handout")
    ap.add_argument("--keep", action="store_true", help="keep the run folder (server log, client data)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per backend (reports each and the median)")
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--routing", default="off", help="off, skill, or off,skill: each in turn, --repeat pairs")
    ap.add_argument("--fitted", action="store_true", help="write a fitted crowd model into each copy "
                    "(implied with skill)")
    ap.add_argument("--fitted-items", type=int, default=100_000, help="items given a posterior (pool order)")
    ap.add_argument("--profile", help="write a py-spy profile of the server's window here")
    ap.add_argument("--profile-format", default="speedscope", choices=["speedscope", "flamegraph", "raw"])
    ap.add_argument("--client", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.client:
        return client_main(a.client)
    a.routing = [m.strip() for m in a.routing.split(",") if m.strip()]
    if not a.routing or any(m not in ("off", "skill") for m in a.routing):
        raise SystemExit("--routing: off, skill, or off,skill")
    backends = ["sqlite", "postgresql"] if a.backend == "both" else [a.backend]
    if a.build_only:
        for b in backends:
            print(json.dumps({k: v for k, v in build(Path(a.cache), b, a.tasks, a.annotators).items()
                              if k != "tokens"}))
        return
    header = ["bench", "backend", "tasks", "annotators", "clients", "workers", "answers/s",
              "next p50/p95/p99 ms", "submit p50/p95/p99 ms", "server CPU ms/answer",
              "CPU s in window: server / client / postgres / other", "double assignments", "pass"]

    def row(r: dict) -> list:
        n, s, chk = r["next_ms"], r["submit_ms"], r["integrity"]
        doubles = (chk["tasks_with_more_answers_than_needed"] + chk["duplicate_task_annotator"]
                   + chk["tasks_handed_to_two"])
        client = sum(r["client_cpu_s"])
        pg = r["postgres_cpu_s"] or 0.0
        other = r["machine_busy_cpu_s"] - r["server_cpu_s"] - client - pg
        return ["handout", r["backend"], r["tasks"], r["annotators"], r["clients"], r["server_workers"],
                r["answers_per_s"], f'{n["p50"]}/{n["p95"]}/{n["p99"]}', f'{s["p50"]}/{s["p95"]}/{s["p99"]}',
                r["server_cpu_per_answer_ms"],
                f'{r["server_cpu_s"]:.1f} / {client:.1f} / {pg:.1f} / {other:.1f} (of {r["machine_cpu_s_available"]:g})',
                doubles if chk["ok"] else f"{doubles} (integrity FAILED)", "yes" if r["pass"] else "NO"]

    for b in backends:
        if len(a.routing) > 1:
            paired(a, b, header, row)
            continue
        runs = [run(a, b, a.routing[0]) for _ in range(a.repeat)]
        if a.repeat == 1:
            C.emit(runs[0], header, row(runs[0]))
            continue
        # Several runs: each one's row, then the median run (by answers/s).
        med = sorted(runs, key=lambda r: r["answers_per_s"])[len(runs) // 2]
        summary = {"bench": "handout", "backend": b, "repeat": a.repeat, "median_run": med,
                   "answers_per_s_all": [r["answers_per_s"] for r in runs],
                   "next_p95_ms_all": [r["next_ms"]["p95"] for r in runs],
                   "integrity_ok_all": all(r["integrity"]["ok"] for r in runs),
                   "pass_all": [r["pass"] for r in runs]}
        print(json.dumps(summary, indent=2))
        print()
        print("| run | " + " | ".join(header) + " |")
        print("|" + "---|" * (len(header) + 1))
        for i, r in enumerate(runs, 1):
            print(f"| {i}{' (median)' if r is med else ''} | " + " | ".join(str(x) for x in row(r)) + " |")


if __name__ == "__main__":
    main()
