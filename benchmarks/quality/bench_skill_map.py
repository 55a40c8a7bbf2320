"""What the skill map costs a polling quality page on a big project (issue 13:
skills "updated as answers arrive").

Builds a project (SQLite or PostgreSQL) with ``--annotators`` simulated
annotators (each with an accuracy from 0.55 to 0.95 and, for a third of
them, one class they take for another) and ``--answers`` answers over
``--classes`` classes, ``--overlap`` per item (answers written straight to
the tables: the hand-out is measured by ``bench_handout.py``), ``--gold``
gold items, then a re-fit (so confident consensus counts as truth too).
Then it times ``Workspace.skill_map`` (a page of ``--limit`` annotators, as
``GET /api/projects/{id}/skills`` asks for):

* ``first``: the first request (the whole map computed: what every request
  cost before the cache);
* ``cached``: asking again with nothing new (median of ``--repeat``);
* ``inputs``: reading the cache key alone (:func:`assay.engine.skillmap.inputs`);
* ``after_answer``: the request after one new answer (through ``submit``:
  only the new answer and its item are read, the estimate is redone);
* ``after_100_answers``: the same after 100 new answers;
* ``after_gold``: the request after one new gold row (through ``import_gold``: everything
  read again);

and the size of the JSON response, one page against every annotator.

    python benchmarks/quality/bench_skill_map.py --backend sqlite
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _common as C  # noqa: E402


def build(ws, a) -> dict:
    import pandas as pd
    from sqlalchemy import text

    rng = np.random.default_rng(a.seed)
    classes = [f"c{k}" for k in range(a.classes)]
    n_items = a.answers // a.overlap
    ds = ws.create_dataset("d")
    ws.import_dataframe(ds["id"], pd.DataFrame({"text": [f"item {i}" for i in range(n_items + 100)]}))
    p = ws.create_project("p", ds["id"], classes, overlap=a.overlap + 1)  # one slot left on every item
    users = np.array([ws.add_user(f"a{i}")[0]["id"] for i in range(a.annotators)])
    for u in users:
        ws.add_member(p["id"], int(u))
    acc = rng.uniform(0.55, 0.95, a.annotators)
    confuse = rng.integers(0, a.classes, (a.annotators, 2))  # (truth, answer) a third of them mix up
    confuse[rng.random(a.annotators) > 1 / 3] = -1
    with ws.db.write() as c:
        tasks = c.execute(text("SELECT id, item_id FROM tasks WHERE project_id = :p ORDER BY id LIMIT :n"),
                          {"p": p["id"], "n": n_items}).all()
        truth = rng.integers(0, a.classes, len(tasks))
        who = np.stack([rng.choice(a.annotators, a.overlap, replace=False) for _ in tasks])
        right = rng.random(who.shape) < acc[who]
        lab = np.where(right, truth[:, None], rng.integers(0, a.classes, who.shape))
        mixed = (confuse[who, 0] == truth[:, None]) & (rng.random(who.shape) < 0.6)
        lab = np.where(mixed, confuse[who, 1], lab)
        rows = [{"t": t.id, "p": p["id"], "i": t.item_id, "u": int(users[who[j, k]]), "l": json.dumps(classes[lab[j, k]])}
                for j, t in enumerate(tasks) for k in range(a.overlap)]
        for s in range(0, len(rows), 20_000):
            c.execute(text("INSERT INTO answers (task_id, project_id, item_id, annotator_id, label, created_at) "
                           "VALUES (:t, :p, :i, :u, :l, 0)"), rows[s:s + 20_000])
        c.execute(text("UPDATE tasks SET answer_count = :k, open_slots = needed - :k "
                       "WHERE project_id = :p AND id IN (SELECT task_id FROM answers)"), {"k": a.overlap, "p": p["id"]})
    if ws.db.dialect == "postgresql":  # planner statistics, as a live database has them
        with ws.db.write() as c:
            c.execute(text("ANALYZE"))
    gold = rng.choice(len(tasks), a.gold, replace=False)
    ws.import_gold(p["id"], [{"item_id": tasks[j].item_id, "label": classes[truth[j]]} for j in gold])
    return {"project": ws.get_project(p["id"]), "tasks": tasks, "truth": truth, "classes": classes,
            "users": users, "gold": set(int(j) for j in gold)}


def _timed(f):
    t0 = time.perf_counter()
    out = f()
    return time.perf_counter() - t0, out


def _answer_one(ws, pid: int, user_id: int, label: str) -> None:
    """One more answer through the real path: tasks/next, then submit."""
    t = ws.next_task(pid, ws.get_user(user_id))
    ws.submit(t["id"], ws.get_user(user_id), label)


def run(a) -> dict:
    import assay
    from assay import Workspace
    from assay.engine import skillmap

    url = C.pg_create(f"assay_bench_skillmap_{a.answers}") if a.backend == "postgresql" else None
    home = Path(tempfile.mkdtemp(prefix="assay-bench-skillmap-"))
    ws = Workspace(home, database_url=url)
    try:
        t_build, b = _timed(lambda: build(ws, a))
        p = b["project"]
        t_refit, _ = _timed(lambda: ws.refit_quality(p["id"]))
        ask = lambda: ws.skill_map(p["id"], limit=a.limit)  # noqa: E731
        t_first, page = _timed(ask)
        cached = [_timed(ask)[0] for _ in range(a.repeat)]
        inputs = [_timed(lambda: skillmap.inputs(ws.db, ws.get_project(p["id"])))[0] for _ in range(a.repeat)]
        _answer_one(ws, p["id"], int(b["users"][0]), b["classes"][0])
        t_answer, after = _timed(ask)
        again = [_timed(ask)[0] for _ in range(a.repeat)]
        for k in range(100):
            _answer_one(ws, p["id"], int(b["users"][k % len(b["users"])]), b["classes"][k % len(b["classes"])])
        t_100, _ = _timed(ask)
        j = next(j for j in range(len(b["tasks"])) if j not in b["gold"])
        ws.import_gold(p["id"], [{"item_id": b["tasks"][j].item_id, "label": b["classes"][b["truth"][j]]}])
        t_gold, after_gold = _timed(ask)
        full = ws.skill_map(p["id"])
        ms = lambda s: round(1000 * s, 2)  # noqa: E731
        return {
            "assay": assay.__file__, "backend": a.backend, "annotators": a.annotators, "answers": a.answers,
            "classes": a.classes, "overlap": a.overlap, "gold": a.gold, "limit": a.limit,
            "build_s": round(t_build, 1), "refit_s": round(t_refit, 1), "truth_basis": page["truth_basis"],
            "annotators_total": page["annotators_total"],
            "first_ms": ms(t_first), "cached_ms_median": ms(statistics.median(cached)),
            "cached_ms_max": ms(max(cached)), "inputs_ms_median": ms(statistics.median(inputs)),
            "after_answer_ms": ms(t_answer), "cached_after_answer_ms_median": ms(statistics.median(again)),
            "after_100_answers_ms": ms(t_100), "after_gold_ms": ms(t_gold),
            "gold_basis_after": after_gold["truth_basis"]["gold"], "gold_basis_before": after["truth_basis"]["gold"],
            "page_json_kb": round(len(json.dumps(page)) / 1024, 1), "full_json_kb": round(len(json.dumps(full)) / 1024, 1),
            "machine": C.machine(),
        }
    finally:
        ws.close()
        shutil.rmtree(home, ignore_errors=True)
        if url:
            C.pg_drop(url.rsplit("/", 1)[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--annotators", type=int, default=200)
    ap.add_argument("--answers", type=int, default=200_000)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--overlap", type=int, default=5)
    ap.add_argument("--gold", type=int, default=2_000)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    print(json.dumps(run(ap.parse_args())))


if __name__ == "__main__":
    main()
