"""Near-duplicates and outliers through the Workspace at 1M items (issue 15):
``Workspace.duplicates`` and ``Workspace.outliers`` (what the CLI and HTTP
call) on the workspace ``bench_similar_http.py`` keeps (1M imported items,
the 1M x 384 vectors of ``bench_curation.py --keep`` with their saved graph).
Each in a fresh process so each pays opening the graph; wall and CPU
seconds, peak RSS, load.

    nice -n 10 .venv/bin/python benchmarks/bench_curation_ws.py --cache /tmp/assay_http

With ``--build N`` it first makes its own workspace under ``--cache`` (N
imported text items, the vectors of ``bench_curation.make_store`` as their
embeddings, the graph built in a child), then times the calls before and
after the cached pass: duplicates and outliers computed in the call, the
background pass (``Workspace.curation_scan(wait=True)``), then duplicates
and outliers again, read from its cache (what HTTP serves at once).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def child(home: str, what: str) -> None:
    from assay import Workspace

    ws = Workspace(home)
    t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    if what == "refresh":
        result = ws.space_index("s").refresh()
    elif what == "scan":
        st = ws.curation_scan(1, k=10, threshold=0.95, wait=True)
        result = {"state": st["state"], "count": st["count"]}
    elif what == "http-cached":
        result = _http_cached(ws)
    elif what == "http-202":
        result = _http_202(ws)
    elif what.startswith("duplicates"):
        groups = ws.duplicates(1, threshold=0.95)
        result = {"groups": len(groups), "items_in_groups": sum(g["size"] for g in groups)}
    else:
        rows = ws.outliers(1, k=10, top=100)
        result = {"top_outlier": rows[0]["outlier"], "rows": len(rows)}
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - t0
    if what in ("duplicates", "outliers", "duplicates-cached", "outliers-cached"):
        result["from_cache"] = ws.curation_cached(1, **({"threshold": 0.95} if what.startswith("dup") else {"k": 10})) \
            is not None
    peak = next(int(x.split()[1]) / 1024 for x in Path("/proc/self/status").read_text().splitlines()
                if x.startswith("VmHWM:"))
    print(json.dumps({"what": what, "wall_s": round(wall, 3),
                      "cpu_s": round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, 1),
                      "peak_rss_mb": round(peak, 1), **result}))


def _http_cached(ws) -> dict:
    """GET duplicates and outliers through the app (in process), the pass
    cached: 5 calls each, the median and worst milliseconds."""
    from starlette.testclient import TestClient

    from assay.server import create_app

    try:
        _, token = ws.add_user("bench-admin", "admin")
    except Exception:  # noqa: BLE001 - a second run: the user exists
        token = ws.create_token(ws.get_user("bench-admin")["id"])
    out = {}
    with TestClient(create_app(ws)) as c:
        for path in ("duplicates", "outliers"):
            ms = []
            for _ in range(5):
                t = time.perf_counter()
                r = c.get(f"/api/datasets/1/{path}", headers={"Authorization": f"Bearer {token}"})
                ms.append((time.perf_counter() - t) * 1000)
                if r.status_code != 200:
                    raise SystemExit(f"{path}: HTTP {r.status_code}")
            ms.sort()
            out[f"{path}_ms_median"], out[f"{path}_ms_max"] = round(ms[2], 1), round(ms[-1], 1)
    return out


def _http_202(ws) -> dict:
    """GET duplicates at a threshold with no cached pass (the dataset over
    the inline limit): how fast the 202 comes back (the pass it starts is
    left to die with the process)."""
    from starlette.testclient import TestClient

    from assay.server import create_app

    token = ws.create_token(ws.get_user("bench-admin")["id"])
    with TestClient(create_app(ws)) as c:
        t = time.perf_counter()
        r = c.get("/api/datasets/1/duplicates", params={"threshold": 0.9}, headers={"Authorization": f"Bearer {token}"})
        ms = (time.perf_counter() - t) * 1000
        return {"status": r.status_code, "state": r.json().get("state"), "ms": round(ms, 1)}


def build(cache: Path, n: int) -> None:
    """A workspace of ``n`` text items (ids 1..n) with planted-copy vectors."""
    import pandas as pd

    from assay import Workspace

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_curation import make_store

    home = cache / "home"
    with Workspace(home) as ws:
        ds = ws.create_dataset("bench")
        ws.import_dataframe(ds["id"], pd.DataFrame({"text": [f"item {i}" for i in range(n)]}))
    print(json.dumps({"built": n, **make_store(n, 15, home)}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--out", default=None)
    ap.add_argument("--build", type=int, default=None, help="make a workspace of this many items first")
    ap.add_argument("--steps", default=None, help="comma separated steps to run (an existing workspace)")
    ap.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(*args.child)
    steps = ("duplicates", "outliers")
    if args.build:
        build(Path(args.cache), args.build)
        steps = ("refresh", "duplicates", "outliers", "scan", "duplicates-cached", "outliers-cached", "http-cached")
    if args.steps:
        steps = tuple(args.steps.split(","))
    for what in steps:
        load0 = os.getloadavg()
        out = subprocess.run([sys.executable, __file__, "--cache", args.cache, "--child",
                              str(Path(args.cache) / "home"), what], capture_output=True, text=True, check=True)
        rec = {"date": datetime.date.today().isoformat(), **json.loads(out.stdout.strip().splitlines()[-1]),
               "load_avg_before": [round(v, 2) for v in load0], "load_avg_after": [round(v, 2) for v in os.getloadavg()]}
        print(json.dumps(rec), flush=True)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
