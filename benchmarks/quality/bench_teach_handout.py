"""What teaching by nuance costs the hand-out: ``next_task`` + answer through
the workspace (SQLite) in three projects alike but for teaching — off, on
for an annotator with nothing to learn, on for one with an open need (a
teaching item on ``teach_rate`` 0.2 of asks) — counting the SQL statements
per next + answer (exact) and the CPU rate (noisy on a shared machine: the
modes alternate, rep by rep).

    python benchmarks/quality/bench_teach_handout.py [--items 20000] [--reps 7] [--asks 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

import pandas as pd  # noqa: E402
from sqlalchemy import event, text  # noqa: E402

from assay import Workspace  # noqa: E402
from assay.store import engine as _engine  # noqa: E402

MODES = ("off", "on", "need")


def setup(mode: str, n: int):
    ws = Workspace(Path(tempfile.mkdtemp()) / "ws")
    ds = ws.create_dataset("t")
    ws.import_dataframe(ds["id"], pd.DataFrame({"text": [f"text {i}" for i in range(n)]}))
    p = ws.create_project("p", ds["id"], ["pos", "neg"], overlap=3)
    with ws.db.read() as conn:
        ids = list(conn.execute(text("SELECT id FROM items WHERE dataset_id = :d ORDER BY id"),
                                {"d": ds["id"]}).scalars())
    rows = [{"item_id": i, "label": "pos", "nuance": "x"} for i in ids[7::20]]  # 5 % hidden checks
    rows += [{"item_id": i, "label": "pos", "purpose": "teach", "nuance": "x", "explanation": "e"}
             for i in ids[11::100]]
    ws.import_gold(p["id"], rows)
    if mode != "off":
        ws.update_project(p["id"], teach_bar=0.6, teach_rate=0.2, teach_items=100)
    u, _ = ws.add_user("a", "annotator")
    ws.add_member(p["id"], u["id"])
    if mode == "need":
        with ws.db.write() as conn:
            conn.execute(text("INSERT INTO teach_needs (project_id, annotator_id, nuance, status, detected_at, checks,"
                              " skill, skill_low, skill_high, taught) VALUES (:p, :u, 'x', 'open', 0, 3, 0.1, 0,"
                              " 0.3, 0)"), {"p": p["id"], "u": u["id"]})
    return ws, p, u


def run(ws, p, u, k: int) -> tuple[float, int]:
    """``k`` asks and answers: (CPU rate per second, teaching items among them)."""
    c0, taught = time.process_time(), 0
    for _ in range(k):
        t = ws.next_task(p["id"], u)
        if "teach" in t:
            taught += 1
            ws.submit_practice(t["id"], u, "pos")
        else:
            ws.submit(t["id"], u, "neg")
    return k / (time.process_time() - c0), taught


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--asks", type=int, default=300)
    a = ap.parse_args()
    envs = {m: setup(m, a.items) for m in MODES}
    count = {"n": 0}
    fast = _engine.FastConnection.execute

    def counted(self, stmt, params=None):
        count["n"] += 1
        return fast(self, stmt, params)

    _engine.FastConnection.execute = counted
    for ws, _, _ in envs.values():
        event.listen(ws.db.engine, "before_cursor_execute", lambda *x, **k: count.__setitem__("n", count["n"] + 1))
    for m, (ws, p, u) in envs.items():
        run(ws, p, u, 100)  # warm
        count["n"] = 0
        _, taught = run(ws, p, u, a.asks)
        print(f"{m}: {count['n'] / a.asks:.2f} statements per next + answer ({taught} teaching items of {a.asks})")
    _engine.FastConnection.execute = fast
    rates: dict[str, list[float]] = {m: [] for m in MODES}
    for _ in range(a.reps):
        for m, (ws, p, u) in envs.items():
            rates[m].append(run(ws, p, u, a.asks)[0])
    for m in MODES:
        ratio = [x / y for x, y in zip(rates[m], rates["off"])]
        print(f"{m}: CPU next+answer/s median {statistics.median(rates[m]):.0f} "
              f"(runs {', '.join(f'{x:.0f}' for x in rates[m])}); paired / off median {statistics.median(ratio):.2f}"
              f" (range {min(ratio):.2f}-{max(ratio):.2f})")


if __name__ == "__main__":
    main()
