"""Filtered similarity search at scale (issue 15): recall@10 of
``SpaceIndex.search(..., allowed=...)`` against exact search over the same
allowed items, for filters selecting 50 % down to 0.5 % of the items, k 10
and 50.

Runs on a store kept by ``bench_curation.py --keep DIR`` (its vectors and
its saved HNSW graph, N x 384): the index opens the saved graph. Queries
are "more like this" from random items (the query item excluded, one query
per call, one thread: what the HTTP call does). A filter is a random subset
of the items (seeded). How assay answers each (``assay.store.index``): a
small filter (allowed² <= 2 k n) is searched exactly; a larger one through
the graph, over-fetched (``2 k / fraction`` at twice that width) and
filtered, asked again wider while short. Truth: exact top-10 over the allowed items' float32 vectors.

    nice -n 10 .venv/bin/python benchmarks/bench_filtered.py --store /tmp/assay_1m
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

FRACTIONS = (0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005)


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True, help="a folder kept by bench_curation.py --keep")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ks", default="10,50")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fractions", default=",".join(str(f) for f in FRACTIONS))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from assay.store.index import SpaceIndex, exact_topk
    from assay.store.vectors import VectorStore

    folder = Path(args.store)
    x = np.load(folder / "x.npy", mmap_mode="r")  # row i = item i + 1
    ix = SpaceIndex(VectorStore(folder / "vectors"), "s", exact_below=1000)
    t0 = time.perf_counter()
    info = ix.refresh()
    open_s = round(time.perf_counter() - t0, 1)
    n = len(ix)
    rng = np.random.default_rng(args.seed)
    for frac, k in ((float(f), int(k)) for f in args.fractions.split(",") for k in args.ks.split(",")):
        allowed = np.sort(rng.choice(n, size=max(1, int(round(frac * n))), replace=False)) + 1
        qitems = rng.choice(allowed, size=args.queries, replace=False)  # query from inside the filter
        qs = np.asarray(x[np.sort(qitems) - 1], dtype=np.float32)
        qitems = np.sort(qitems)
        got_all, lat, c0 = [], [], _cpu_s()
        for item, q in zip(qitems, qs):
            t = time.perf_counter()
            got, _ = ix.search(q, k, allowed=allowed, exclude=[item])
            lat.append(time.perf_counter() - t)
            got_all.append(got[0])
        search_cpu = _cpu_s() - c0
        blocks = ((allowed[lo:lo + 65536], np.asarray(x[allowed[lo:lo + 65536] - 1], dtype=np.float32))
                  for lo in range(0, allowed.size, 65536))
        truth, _ = exact_topk(qs, blocks, k + 1)  # the query item itself is dropped below
        hits = 0
        for item, got, row in zip(qitems, got_all, truth):
            want = [t for t in row.tolist() if t != item][:k]
            hits += len(set(got[got >= 0].tolist()) & set(want))
        lat_ms = np.asarray(lat) * 1000
        rec = {"date": datetime.date.today().isoformat(), "n": n, "mode": ix.mode, "graph_rebuilt": info.get("rebuilt"),
               "open_s": open_s, "fraction": frac, "allowed": int(allowed.size), "queries": args.queries,
               "k": k, "path": "exact" if ix._filter_exact(allowed.size, k) else "graph, over-fetched",
               "recall_at_k": round(hits / (args.queries * k), 4),
               "search_ms_p50": round(float(np.percentile(lat_ms, 50)), 2),
               "search_ms_p95": round(float(np.percentile(lat_ms, 95)), 2),
               "search_ms_p99": round(float(np.percentile(lat_ms, 99)), 2),
               "search_cpu_s": round(search_cpu, 2),
               "machine": f"{platform.machine()}, {os.cpu_count()} cores",
               "load_avg": [round(v, 2) for v in os.getloadavg()]}
        print(json.dumps(rec), flush=True)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
