"""What a background re-fit costs while people are answering.

Builds a project (SQLite or PostgreSQL) with ``--items`` items answered
``--overlap`` times by 50 simulated annotators (70 % right, answers written
straight to the tables: the hand-out is measured by ``bench_handout.py``),
then times :func:`assay.engine.redundancy.refit` with a writer thread that
commits one small write transaction after another, as answers do, and
reports the re-fit's wall and CPU seconds per 1,000 answers and the writer's
latency during it (on SQLite one writer at a time: the longest write
transaction the re-fit holds is the longest an answer waits).

Compare two versions side by side by running this script from each one's
tree (``PYTHONPATH=<tree>/src``; the printed ``assay`` path says which ran)::

    python benchmarks/bench_refit.py --backend sqlite --answers 60000 --overlap 1
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

CLASSES = ["positive", "negative", "neutral"]


def build(ws, n_items: int, n_answers: int, overlap: int, seed: int = 0) -> dict:
    import pandas as pd
    from sqlalchemy import text

    ds = ws.create_dataset("d")
    ws.import_dataframe(ds["id"], pd.DataFrame({"text": [f"item {i}" for i in range(n_items)]}))
    p = ws.create_project("p", ds["id"], CLASSES, overlap=overlap)
    users = [ws.add_user(f"a{i}")[0]["id"] for i in range(50)]
    rng = random.Random(seed)
    with ws.db.write() as c:
        tasks = c.execute(text("SELECT id, item_id FROM tasks WHERE project_id = :p ORDER BY id LIMIT :n"),
                          {"p": p["id"], "n": n_answers // overlap}).all()
        rows = []
        for t in tasks:
            truth = rng.randrange(len(CLASSES))
            for u in rng.sample(users, overlap):
                lab = truth if rng.random() < 0.7 else rng.randrange(len(CLASSES))
                rows.append({"t": t.id, "p": p["id"], "i": t.item_id, "u": u, "l": json.dumps(CLASSES[lab])})
        c.execute(text("INSERT INTO answers (task_id, project_id, item_id, annotator_id, label, created_at) "
                       "VALUES (:t, :p, :i, :u, :l, 0)"), rows)
        c.execute(text("UPDATE tasks SET answer_count = :k, open_slots = needed - :k "
                       "WHERE id IN (SELECT task_id FROM answers)"), {"k": overlap})
    return ws.get_project(p["id"])


def writer(db, stop: threading.Event, out: list) -> None:
    from sqlalchemy import text

    while not stop.is_set():
        t0 = time.perf_counter()
        with db.write() as c:
            c.execute(text("UPDATE datasets SET name = name WHERE id = 1"))
        out.append(time.perf_counter() - t0)
        time.sleep(0.002)


def run(a) -> dict:
    import assay
    from assay import Workspace
    from assay.engine import redundancy

    url = C.pg_create(f"assay_bench_refit_{a.answers}") if a.backend == "postgresql" else None
    home = Path(tempfile.mkdtemp(prefix="assay-bench-refit-"))
    ws = Workspace(home, database_url=url)
    try:
        p = build(ws, a.items, a.answers, a.overlap)
        rounds = []
        for _ in range(a.repeat):
            lat, stop = [], threading.Event()
            th = threading.Thread(target=writer, args=(ws.db, stop, lat))
            th.start()
            time.sleep(0.2)
            before = len(lat)
            t0, c0 = time.perf_counter(), time.process_time()
            out = redundancy.refit(ws.db, p)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            during = lat[before:]
            stop.set()
            th.join()
            rounds.append({"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "items": out["items"],
                           "writes_during": len(during),
                           "write_p50_ms": round(1000 * statistics.median(during), 2) if during else None,
                           "write_max_ms": round(1000 * max(during), 1) if during else None})
        return {"assay": assay.__file__, "backend": a.backend, "answers": a.answers, "overlap": a.overlap,
                "rounds": rounds, "median_wall_per_1k_answers_ms": round(
                    1000 * statistics.median(r["wall_s"] for r in rounds) / (a.answers / 1000), 2),
                "median_write_max_ms": statistics.median(r["write_max_ms"] or 0 for r in rounds)}
    finally:
        ws.close()
        shutil.rmtree(home, ignore_errors=True)
        if url:
            C.pg_drop(url.rsplit("/", 1)[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--answers", type=int, default=60_000)
    ap.add_argument("--overlap", type=int, default=3)
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    print(json.dumps(run(ap.parse_args())))


if __name__ == "__main__":
    main()
