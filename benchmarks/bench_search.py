"""Similarity search at scale: usearch HNSW (what assay uses,
``assay.store.index``) beside FAISS HNSW, in one run, on N x 384 float32.

Data: seeded random clustered vectors with a low intrinsic dimension, like
real sentence embeddings: 2,000 centres in a 32-d latent space, points =
centre + latent noise, projected to 384-d plus isotropic noise, then L2
normalised. Queries: 1,000 fresh points from the same distribution. Truth:
exact top-10 by inner product (``assay.store.index.exact_topk``).

Each library builds in a fresh child process (2 threads), so its peak RSS
is its own; the vectors are read from a raw file in blocks (no mmap), so
they count only where the library keeps a copy. Search: one thread, one
query at a time (what the HTTP call does), swept over the search width;
reported at the smallest width with recall@10 >= 0.95.

    .venv/bin/python benchmarks/bench_search.py --n 200000
(faiss-cpu is needed for the comparison only: pip install faiss-cpu)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

D, K, BLOCK = 384, 10, 50_000
WIDTHS = (32, 48, 64, 96, 128, 192, 256, 384)


def gen(rng, n: int, centres: np.ndarray, proj: np.ndarray) -> np.ndarray:
    z = centres[rng.integers(len(centres), size=n)] + 0.5 * rng.normal(size=(n, centres.shape[1]))
    v = (z @ proj + 0.25 * rng.normal(size=(n, proj.shape[1]))).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def make_data(n: int, nq: int, seed: int, folder: Path) -> None:
    rng = np.random.default_rng(seed)
    centres, proj = rng.normal(size=(2000, 32)), rng.normal(size=(32, D)) / np.sqrt(32)
    with open(folder / "data.f32", "wb") as fh:
        for lo in range(0, n, BLOCK):
            gen(rng, min(BLOCK, n - lo), centres, proj).tofile(fh)
    np.save(folder / "queries.npy", gen(rng, nq, centres, proj))


def blocks(path: Path, n: int):
    with open(path, "rb") as fh:
        for lo in range(0, n, BLOCK):
            m = min(BLOCK, n - lo)
            yield np.arange(lo, lo + m), np.fromfile(fh, np.float32, m * D).reshape(m, D)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / K for a, b in zip(found, truth)]))


def hwm_mb() -> float:
    """This process's peak resident memory (VmHWM: its own, not inherited
    from the parent as ``ru_maxrss`` is across fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def child(lib: str, folder: Path, n: int) -> dict:
    q, truth = np.load(folder / "queries.npy"), np.load(folder / "truth.npy")
    base = hwm_mb()
    t0 = time.perf_counter()
    if lib == "usearch":
        from usearch.index import Index

        from assay.store.index import CONNECTIVITY, DTYPE, EXPANSION_ADD

        params = {"connectivity": CONNECTIVITY, "expansion_add": EXPANSION_ADD, "dtype": DTYPE}
        ix = Index(ndim=D, metric="ip", **params)
        for keys, v in blocks(folder / "data.f32", n):
            ix.add(keys.astype(np.uint64), v, threads=2)

        def search(width):
            ix.expansion_search = width
            return np.stack([ix.search(x, K, threads=1).keys.astype(np.int64) for x in q])
    else:
        import faiss

        faiss.omp_set_num_threads(2)
        params = {"M": 32, "efConstruction": 64, "storage": "f32"}
        ix = faiss.IndexHNSWFlat(D, 32, faiss.METRIC_INNER_PRODUCT)
        ix.hnsw.efConstruction = 64
        for _, v in blocks(folder / "data.f32", n):
            ix.add(v)
        faiss.omp_set_num_threads(1)

        def search(width):
            ix.hnsw.efSearch = width
            return np.concatenate([ix.search(x[None, :], K)[1] for x in q])
    build = time.perf_counter() - t0
    sweep = []
    for width in WIDTHS:
        t = time.perf_counter()
        found = search(width)
        dt = time.perf_counter() - t
        sweep.append({"width": width, "recall_at_10": round(recall(found, truth), 4),
                      "qps_1_thread": round(len(q) / dt, 1)})
    return {"library": lib, "params": params, "build_s": round(build, 1),
            "peak_rss_mb": hwm_mb(), "rss_before_build_mb": base, "sweep": sweep}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--libs", default="usearch,faiss")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "2026-12-04" / "issue15_search.jsonl"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, Path(a.folder), a.n)))
        return
    from assay.store.index import exact_topk

    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        make_data(a.n, a.queries, a.seed, folder)
        t_gen = time.perf_counter() - t
        t = time.perf_counter()
        truth, _ = exact_topk(np.load(folder / "queries.npy"), blocks(folder / "data.f32", a.n), K)
        t_exact = time.perf_counter() - t
        np.save(folder / "truth.npy", truth)
        print(f"data {a.n} x {D} in {t_gen:.0f} s; exact top-{K} of {a.queries} queries in {t_exact:.0f} s "
              f"({a.queries / t_exact:.1f} q/s, numpy, 2 threads)", file=sys.stderr)
        rows = []
        for lib in a.libs.split(","):
            out = subprocess.run([sys.executable, __file__, "--child", lib, "--folder", tmp, "--n", str(a.n)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            ok = [s for s in r["sweep"] if s["recall_at_10"] >= 0.95]
            r["at_recall_0.95"] = ok[0] if ok else None
            print(f"{lib}: build {r['build_s']} s, peak RSS {r['peak_rss_mb']} MB, "
                  f"at recall>=0.95: {r['at_recall_0.95']}", file=sys.stderr)
            rows.append(r)
    stamp = {"date": datetime.date.today().isoformat(), "nice": os.nice(0), "n": a.n, "dim": D, "queries": a.queries,
             "seed": a.seed, "exact_s": round(t_exact, 1), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
             "load_avg_at_end": os.getloadavg()}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "a") as fh:
        for r in rows:
            fh.write(json.dumps({**stamp, **r}) + "\n")
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
