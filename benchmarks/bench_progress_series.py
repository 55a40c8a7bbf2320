"""The live progress charts' endpoint at scale (issue 16 part 6):
``Workspace.progress_series`` on a project with 1,000,000 tasks, 100
annotators and ``--answers`` answers spread over the last 7 days.

The workspace is a copy of ``bench_admin.py``'s cached one (1M tasks, 100
annotators; built once there) topped up in SQL to ``--answers`` answers (one
per task, annotators in turn, lead times 5-34 s, times spread evenly over 7
days; counters are not kept: the charts read the answers only) and
``--gold`` gold rows (for the agreement join to find labels). Measured in
one process: a cold read of each window (the whole window aggregated by the
database: no cache), then ``--polls`` polls (the cache holds the closed
buckets; only the open bucket is read), and as a baseline in the same run a
plain ``count(*)`` of the project's answers.

    python benchmarks/bench_progress_series.py --answers 1000000
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

SOURCE = Path("/tmp/assay-bench-admin/sqlite-1000000-100-100000")
WINDOWS = (("minute", 60), ("hour", 48), ("day", 30))


def top_up(ws, p: int, n_answers: int, n_gold: int) -> None:
    from sqlalchemy import text

    now = time.time()
    with ws.db.write() as conn:
        have = conn.execute(text("SELECT count(*) FROM answers WHERE project_id = :p"), {"p": p}).scalar_one()
        users = [r[0] for r in conn.execute(text("SELECT id FROM users WHERE role = 'annotator' ORDER BY id"))]
        if have < n_answers:
            # one more answer on tasks this annotator never answered (annotators in turn by task id)
            conn.execute(text(
                "INSERT INTO answers (task_id, project_id, item_id, annotator_id, label, created_at, lead_time) "
                "SELECT t.id, t.project_id, t.item_id, :u0 + (t.id % :nu), "
                "CASE t.id % 3 WHEN 0 THEN '\"positive\"' WHEN 1 THEN '\"negative\"' ELSE '\"neutral\"' END, "
                ":now - 7 * 86400 * (1.0 - t.id / 1000000.0), 5 + t.id % 30 "
                "FROM tasks t WHERE t.project_id = :p AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.task_id = t.id "
                "AND a.annotator_id = :u0 + (t.id % :nu)) ORDER BY t.id LIMIT :n"),
                {"p": p, "u0": users[0], "nu": len(users), "now": now, "n": n_answers - have})
        conn.execute(text(
            "INSERT INTO gold (project_id, item_id, label, source, created_at) "
            "SELECT t.project_id, t.item_id, '\"positive\"', 'import', :now FROM tasks t WHERE t.project_id = :p "
            "AND t.id % 97 = 0 AND NOT EXISTS (SELECT 1 FROM gold g WHERE g.project_id = t.project_id "
            "AND g.item_id = t.item_id) LIMIT :n"), {"p": p, "now": now, "n": n_gold})


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - t0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--answers", type=int, default=1_000_000)
    ap.add_argument("--gold", type=int, default=10_000)
    ap.add_argument("--polls", type=int, default=20)
    ap.add_argument("--work", type=Path, default=Path("/tmp/assay-bench-series"))
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    from sqlalchemy import text

    from assay import Workspace

    home = a.work / "home"
    if not home.exists():
        shutil.copytree(SOURCE / "home", home)
    ws = Workspace(home)  # migrates the copy (0017: the answers' time index)
    meta = json.loads((SOURCE / "meta.json").read_text())
    p = meta["project_id"]
    t0 = time.perf_counter()
    top_up(ws, p, a.answers, a.gold)
    with ws.db.write() as conn:
        conn.execute(text("ANALYZE"))
    setup_s = time.perf_counter() - t0
    with ws.db.read() as conn:
        n = conn.execute(text("SELECT count(*) FROM answers WHERE project_id = :p"), {"p": p}).scalar_one()

    def count():
        with ws.db.read() as conn:
            conn.execute(text("SELECT count(*) FROM answers WHERE project_id = :p"), {"p": p}).scalar_one()

    baseline = timed(count, 3)
    res = {"answers": n, "setup_s": round(setup_s, 1), "count_ms": round(statistics.median(baseline), 1),
           "machine": C.machine(), "windows": {}}
    for bucket, k in WINDOWS:
        ws._series_cache.__init__()
        cold = timed(lambda: ws.progress_series(p, bucket=bucket, buckets=k), 1)[0]
        r = ws.progress_series(p, bucket=bucket, buckets=k)
        polls = timed(lambda: ws.progress_series(p, bucket=bucket, buckets=k), a.polls)
        polls.sort()
        res["windows"][bucket] = {
            "buckets": k, "in_window": r["window"]["answers"], "open_bucket": r["series"][-1]["answers"],
            "cold_ms": round(cold, 1), "poll_p50_ms": round(polls[len(polls) // 2], 1),
            "poll_p95_ms": round(polls[min(len(polls) - 1, int(0.95 * len(polls)))], 1),
            "cold_vs_count": round(cold / statistics.median(baseline), 2)}
        print(bucket, res["windows"][bucket], flush=True)
    ws.close()
    print(json.dumps(res))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        with a.out.open("a") as fh:
            fh.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
