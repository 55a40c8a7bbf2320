"""HTTP "more like this" at scale (issue 15): GET/POST
``/api/datasets/{id}/similar`` from random items over a real server
(uvicorn, one worker, SQLite) on a workspace of N items with vectors in one
space; latency percentiles, the server's and the load generator's CPU.

Building the workspace (once, kept in ``--cache``): ``N`` short texts
imported from a CSV (``Workspace.import_file``, timed), then the vector
space of a store kept by ``bench_curation.py --keep DIR`` (N x 384, its
item ids 1..N = the imported items' ids, written through
``VectorStore.add``, with the HNSW graph ``SpaceIndex`` built and saved
there) copied into the workspace's vector folder with the files' times
kept, so the server's index opens the saved graph as after a restart (the
graph's build time is ``bench_curation.py``'s). Two explicit slices (random
5 % and 50 % of the items) serve as filters.

Load: one client (aiohttp, one request at a time, so the percentiles are
the server's latency, not a queue's), ``--requests`` per scenario after
``--warmup``; each scenario: GET k=10, GET k=50, POST k=10 with the 5 %
slice, POST k=10 with the 50 % slice.

    nice -n 10 .venv/bin/python benchmarks/bench_similar_http.py --store /tmp/assay_1m --cache /tmp/assay_http
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from bench_handout import free_port, start_server, stop_server, tree_cpu  # noqa: E402

SPACE = "s"


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def build_items(cache: Path, n: int) -> dict:
    """The workspace with ``n`` imported items (once)."""
    meta_f = cache / "items.json"
    if meta_f.is_file():
        return json.loads(meta_f.read_text())
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    from assay import Workspace

    t0 = time.perf_counter()
    csv_path = C.write_csv(cache / "texts.csv", n, seed=7)
    t_csv = time.perf_counter() - t0
    ws = Workspace(cache / "home")
    ds = ws.create_dataset("bench")
    t0, c0 = time.perf_counter(), _cpu_s()
    ws.import_file(ds["id"], csv_path)
    t_import, c_import = time.perf_counter() - t0, _cpu_s() - c0
    csv_path.unlink()
    ids = ws._dataset_item_ids(ws.get_dataset(ds["id"]))
    if ids.size != n or ids[0] != 1 or ids[-1] != n:
        raise SystemExit(f"expected item ids 1..{n}, got {ids.size} from {ids[:1]} to {ids[-1:]}")
    _, token = ws.add_user("benchadmin", "admin")
    ws.close()
    meta = {"dataset_id": ds["id"], "token": token, "n": n, "csv_s": round(t_csv, 1),
            "import_s": round(t_import, 1), "import_cpu_s": round(c_import, 1),
            "import_peak_rss_mb": C.peak_rss_mb(), "load_avg": [round(v, 2) for v in os.getloadavg()]}
    meta_f.write_text(json.dumps(meta))
    return meta


def build(store: Path, cache: Path, n: int) -> dict:
    """Items (:func:`build_items`), the store's vectors and graph, two slices (once)."""
    meta_f = cache / "meta.json"
    if meta_f.is_file():
        return json.loads(meta_f.read_text())
    meta = build_items(cache, n)
    from assay import Workspace

    ws = Workspace(cache / "home")
    t0 = time.perf_counter()
    src = store / "vectors" / SPACE
    dst = ws.vectors.root / SPACE
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    for f in sorted(src.iterdir()):
        if f.is_file() and not f.name.endswith(".tmp"):
            shutil.copy2(f, dst / f.name)  # keeps mtimes: the saved graph still matches its shards
    t_copy = time.perf_counter() - t0
    rng = np.random.default_rng(5)
    slices = {}
    t0 = time.perf_counter()
    for name, frac in (("five", 0.05), ("half", 0.5)):
        members = np.sort(rng.choice(n, size=int(n * frac), replace=False)) + 1
        ws.create_slice(meta["dataset_id"], name, items=members.tolist())
        slices[name] = int(members.size)
    t_slices = time.perf_counter() - t0
    ws.close()
    meta = {**meta, "copy_vectors_s": round(t_copy, 1), "slices": slices, "slices_s": round(t_slices, 1)}
    meta_f.write_text(json.dumps(meta))
    return meta


async def drive(base: str, token: str, ds: int, n: int, scenarios: list, requests: int, warmup: int,
                server_pid: int, seed: int) -> list[dict]:
    import aiohttp

    rng = np.random.default_rng(seed)
    out = []
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for name, method, k, sl in scenarios:
            async def one(item: int) -> float:
                t = time.perf_counter()
                if method == "GET":
                    r = await session.get(f"{base}/api/datasets/{ds}/similar", params={"item": item, "k": k})
                else:
                    body = {"items": [item], "k": k, **({"slice": sl} if sl else {})}
                    r = await session.post(f"{base}/api/datasets/{ds}/similar", json=body)
                data = await r.json()
                if r.status != 200 or len(data["results"]) != k:
                    raise SystemExit(f"{name}: HTTP {r.status}: {str(data)[:300]}")
                return time.perf_counter() - t

            for item in rng.integers(1, n + 1, size=warmup):
                await one(int(item))
            s0, c0, t0 = tree_cpu(server_pid), _cpu_s(), time.perf_counter()
            lat = [await one(int(item)) for item in rng.integers(1, n + 1, size=requests)]
            wall = time.perf_counter() - t0
            ms = np.asarray(lat) * 1000
            out.append({"scenario": name, "method": method, "k": k, "slice": sl, "requests": requests,
                        "p50_ms": round(float(np.percentile(ms, 50)), 1),
                        "p95_ms": round(float(np.percentile(ms, 95)), 1),
                        "p99_ms": round(float(np.percentile(ms, 99)), 1),
                        "max_ms": round(float(ms.max()), 1), "wall_s": round(wall, 1),
                        "server_cpu_s": round(tree_cpu(server_pid) - s0, 2),
                        "client_cpu_s": round(_cpu_s() - c0, 2),
                        "load_avg": [round(v, 2) for v in os.getloadavg()]})
            print(json.dumps(out[-1]), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True, help="a folder kept by bench_curation.py --keep")
    ap.add_argument("--cache", required=True, help="where the workspace is built (once) and kept")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", default=None)
    ap.add_argument("--items-only", type=int, default=None, metavar="N",
                    help="only import N items into the workspace (before the store exists)")
    args = ap.parse_args()
    store, cache = Path(args.store), Path(args.cache)
    if args.items_only:
        print(json.dumps({k: v for k, v in build_items(cache, args.items_only).items() if k != "token"}))
        return
    n = len(np.load(store / "x.npy", mmap_mode="r"))
    meta = build(store, cache, n)
    print(json.dumps({"build": {k: v for k, v in meta.items() if k != "token"}}), flush=True)
    port = free_port()
    server = start_server(cache / "home", None, port, 1, cache / "server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        t0 = time.perf_counter()  # the first call opens the index (the saved graph)
        r = httpx.get(f"{base}/api/datasets/{meta['dataset_id']}/similar", params={"item": 1, "k": 10},
                      headers={"Authorization": f"Bearer {meta['token']}"}, timeout=1800)
        r.raise_for_status()
        first_s = time.perf_counter() - t0
        scenarios = [("GET k=10", "GET", 10, None), ("GET k=50", "GET", 50, None),
                     ("POST k=10, slice 5 %", "POST", 10, "five"), ("POST k=10, slice 50 %", "POST", 10, "half")]
        rows = asyncio.run(drive(base, meta["token"], meta["dataset_id"], n, scenarios, args.requests,
                                 args.warmup, server.pid, args.seed))
        rss = 0.0
        import psutil

        rss = psutil.Process(server.pid).memory_info().rss / 2**20
    finally:
        stop_server(server)
    rec = {"date": datetime.date.today().isoformat(), "n": n, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "first_call_s": round(first_s, 1), "server_rss_mb_at_end": round(rss, 1), "build": meta, "rows": rows}
    rec["build"].pop("token", None)
    print(json.dumps(rec))
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
