"""Near-duplicates and outliers through the Workspace at 1M items (issue 15):
``Workspace.duplicates`` and ``Workspace.outliers`` (what the CLI and HTTP
call) on the workspace ``bench_similar_http.py`` keeps (1M imported items,
the 1M x 384 vectors of ``bench_curation.py --keep`` with their saved graph).
Each in a fresh process so each pays opening the graph; wall and CPU
seconds, peak RSS, load.

    nice -n 10 .venv/bin/python benchmarks/bench_curation_ws.py --cache /tmp/assay_http
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
    if what == "duplicates":
        groups = ws.duplicates(1, threshold=0.95)
        result = {"groups": len(groups), "items_in_groups": sum(g["size"] for g in groups)}
    else:
        rows = ws.outliers(1, k=10, top=100)
        result = {"top_outlier": rows[0]["outlier"], "rows": len(rows)}
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    peak = next(int(x.split()[1]) / 1024 for x in Path("/proc/self/status").read_text().splitlines()
                if x.startswith("VmHWM:"))
    print(json.dumps({"what": what, "wall_s": round(time.perf_counter() - t0, 1),
                      "cpu_s": round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, 1),
                      "peak_rss_mb": round(peak, 1), **result}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(*args.child)
    for what in ("duplicates", "outliers"):
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
