"""Per-answer cost of adaptive redundancy: how long adding one answer to a
live project takes to update that item's posterior (issue 3 bar: <= 5 ms).

A real workspace (SQLite in a temporary folder, or PostgreSQL with
``--backend postgresql``), a project with adaptive redundancy (target 0.995,
``max_answers`` 20), ``--items`` text items and ``--annotators`` simulated
annotators (accuracy 0.6-0.95) taking tasks round-robin through
``Workspace.next_task`` / ``Workspace.submit``. Half way through, the
annotator skills are re-fitted (``Workspace.refit_quality``), so the second
half runs with a stored quality model and settle table, as a live project
does. The bar is read at the 95th percentile of the update (p50 and p99 are
printed too).

Timed per answer, in the same run:

- ``update``: ``redundancy.after_answer`` -- the incremental posterior
  update and the decision (one more answer / resolved / review), inside the
  answer's transaction. This is the bar's quantity.
- ``submit``: the whole ``Workspace.submit`` call (answer row, counters,
  update, commit), for scale.

    python benchmarks/quality/bench_update.py [--items 2000] [--annotators 20] [--classes 2] [--backend sqlite]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _common as C  # noqa: E402

BAR_MS = 5.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--annotators", type=int, default=20)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--answers", type=int, default=None, help="stop after this many answers (default 3 per item)")
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import pandas as pd

    from assay import Workspace
    from assay.engine import redundancy

    timings: list[float] = []
    inner = redundancy.after_answer

    def timed(*a, **kw):
        t = time.perf_counter()
        try:
            return inner(*a, **kw)
        finally:
            timings.append(time.perf_counter() - t)

    redundancy.after_answer = timed  # the workspace calls it through the module
    rng = np.random.default_rng(args.seed)
    classes = [f"c{i}" for i in range(args.classes)]
    with tempfile.TemporaryDirectory() as home:
        url, pg = None, None
        if args.backend == "postgresql":
            pg = f"assay_bench_update_{int(time.time())}"
            url = C.pg_create(pg)
        try:
            ws = Workspace(home, database_url=url)
            ds = ws.create_dataset("d")
            ws.import_dataframe(ds["id"], pd.DataFrame({"text": [f"item {i}" for i in range(args.items)]}))
            p = ws.create_project("p", ds["id"], classes, overlap=1, target_confidence=0.995, max_answers=20)
            users = []
            for a in range(args.annotators):
                ws.add_user(f"u{a}", role="annotator")
                ws.add_member(p["id"], f"u{a}")
                users.append((f"u{a}", float(rng.uniform(0.6, 0.95))))
            truth: dict[int, int] = {}
            total = args.answers or 3 * args.items
            submit_s: list[float] = []
            refit_at, refit = total // 2, None
            done, idle = 0, 0
            while done < total and idle < len(users):
                idle = 0
                for name, acc in users:
                    t = ws.next_task(p["id"], name)
                    if t is None:
                        idle += 1
                        continue
                    item = t["item"]["id"]
                    y = truth.setdefault(item, int(rng.integers(args.classes)))
                    lab = y if rng.random() < acc else int(rng.choice([c for c in range(args.classes) if c != y]))
                    s = time.perf_counter()
                    ws.submit(t["id"], name, classes[lab])
                    submit_s.append(time.perf_counter() - s)
                    done += 1
                    if done == refit_at:
                        r = time.perf_counter()
                        ws.refit_quality(p["id"])
                        refit = time.perf_counter() - r
                    if done >= total:
                        break
            ws.close()
        finally:
            if pg:
                C.pg_drop(pg)

    def pct(xs: list[float], half: slice = slice(None)) -> dict:
        a = np.asarray(xs[half]) * 1000
        return {"n": int(a.size), "p50_ms": round(float(np.median(a)), 3),
                "p95_ms": round(float(np.percentile(a, 95)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3),
                "max_ms": round(float(a.max()), 3)}

    second = slice(len(timings) // 2, None)
    result = {
        "bench": "update", "backend": args.backend, "items": args.items, "annotators": args.annotators,
        "classes": args.classes, "answers": len(timings), "refit_s": None if refit is None else round(refit, 3),
        "update": pct(timings), "update_after_refit": pct(timings, second),
        "submit": pct(submit_s), "submit_after_refit": pct(submit_s, second),
        "machine": C.machine(),
    }
    result["pass"] = result["update"]["p95_ms"] <= BAR_MS
    print(json.dumps(result))
    print()
    print("| backend | classes | answers | update p50 / p95 / p99 ms | after re-fit p50 / p99 ms | "
          "submit p50 / p99 ms | bar (update p95 ≤ 5 ms) |")
    print("|---|---|---|---|---|---|---|")
    u, v, s = result["update"], result["update_after_refit"], result["submit"]
    print(f"| {args.backend} | {args.classes} | {len(timings):,} | {u['p50_ms']} / {u['p95_ms']} / {u['p99_ms']} | "
          f"{v['p50_ms']} / {v['p99_ms']} | {s['p50_ms']} / {s['p99_ms']} | {'holds' if result['pass'] else 'fails'} |")


if __name__ == "__main__":
    main()
