"""Near-duplicates and outliers at scale (issue 15): assay's batched kNN
pass over the HNSW graph (``assay.learn.curation`` through
``assay.store.index.SpaceIndex``) against exact search, on N x 384 float32.

Data: the clustered vectors of ``bench_search.py`` (2,000 centres in a 32-d
latent space, projected to 384-d, normalised), with planted near-duplicates:
1 % of the items get 1-4 copies each (the source plus noise of a random
strength), so pair similarities spread across the threshold. The vectors
go into a VectorStore (50k-vector shards); the index is forced into HNSW
mode (``exact_below=1000``), as it is at 1M.

The curation pass (graph build, near-duplicate pairs at ``--threshold``,
outlier / uniqueness / representativeness with k=10) runs in a child
process, so its peak RSS is its own. Truth: every pair above the threshold
and each item's exact 10 nearest neighbours, by blockwise brute force.
Recall counts a true pair as found when assay puts both items in one group
(what a reviewer sees), and also as a pair returned directly.

    nice -n 10 .venv/bin/python benchmarks/bench_curation.py --n 100000
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_search import D, gen  # noqa: E402

SHARD = 50_000
META = {"model": "bench", "kind": "given"}


def make_store(n: int, seed: int, folder: Path) -> dict:
    """Write ``n`` vectors (planted copies included) to a VectorStore."""
    from assay.store.vectors import VectorStore

    rng = np.random.default_rng(seed)
    centres, proj = rng.normal(size=(2000, 32)), rng.normal(size=(32, D)) / np.sqrt(32)
    x = np.concatenate([gen(rng, min(SHARD, n - lo), centres, proj) for lo in range(0, n, SHARD)])
    n_src = n // 100
    src = rng.choice(n, size=n_src, replace=False)
    copies = rng.integers(1, 5, size=n_src)
    free = np.setdiff1d(np.arange(n), src)
    rng.shuffle(free)
    at = 0
    for s, c in zip(src, copies):
        for _ in range(c):
            noise = rng.uniform(0.05, 0.35) * rng.normal(size=D) / np.sqrt(D)
            v = x[s] + noise
            x[free[at]] = v / np.linalg.norm(v)
            at += 1
    vs = VectorStore(folder / "vectors")
    for lo in range(0, n, SHARD):
        vs.add("s", np.arange(lo, min(lo + SHARD, n)) + 1, x[lo:lo + SHARD], META)
    np.save(folder / "x.npy", x)
    return {"planted_sources": int(n_src), "planted_copies": int(copies.sum())}


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def child(folder: Path, threshold: float, k: int, one_pass: bool, widths: list[int | None],
          build: dict) -> None:
    from assay.learn import curation
    from assay.store.index import SpaceIndex
    from assay.store.vectors import VectorStore

    ix = SpaceIndex(VectorStore(folder / "vectors"), "s", exact_below=1000, **build)
    t0, c0 = time.perf_counter(), _cpu_s()
    info = ix.refresh()
    head = {"mode": ix.mode, "graph_rebuilt": bool(info.get("rebuilt")), "build_s": round(time.perf_counter() - t0, 1),
            "build_cpu_s": round(_cpu_s() - c0, 1), "build_params": ix.params,
            "peak_rss_after_build_mb": _peak_mb()}
    for width in widths:
        def search(q, kk):
            return ix.search(q, kk, threads=0, expansion=width)

        t0, c0 = time.perf_counter(), _cpu_s()
        if one_pass:  # duplicates and scores from one kNN pass (curation.scan)
            both = curation.scan(ix.keys, ix.vectors, search, threshold, k)
            (a, b, s), sc = both["pairs"], both["scores"]
            groups = curation.group_pairs(a, b, s)
            times = {"one_pass_s": round(time.perf_counter() - t0, 1), "one_pass_cpu_s": round(_cpu_s() - c0, 1)}
        else:
            a, b, s = curation.near_duplicate_pairs(ix.keys, ix.vectors, search, threshold)
            groups = curation.group_pairs(a, b, s)
            t_dup = time.perf_counter() - t0
            t0 = time.perf_counter()
            sc = curation.knn_scores(ix.keys, ix.vectors, search, k)
            times = {"duplicates_s": round(t_dup, 1), "scores_s": round(time.perf_counter() - t0, 1)}
        label = np.zeros(len(ix.keys) + 1, np.int64)
        for gi, g in enumerate(groups, 1):
            label[np.asarray(g["items"])] = gi
        tag = width or ix.expansion_search
        np.save(folder / f"pairs_{tag}.npy", np.stack([a, b]))
        np.save(folder / f"group_of_{tag}.npy", label)
        np.save(folder / f"outlier_{tag}.npy", sc["outlier"])
        print(json.dumps({**head, "width": tag, "one_pass": one_pass, **times,
                          "groups": len(groups), "pairs_found": int(a.size),
                          "peak_rss_mb": _peak_mb(), "load_avg": [round(v, 2) for v in os.getloadavg()]}),
              flush=True)


def truth(x: np.ndarray, threshold: float, k: int, block: int = 1024):
    """Exact pairs above the threshold (0-based, i < j) and the exact mean
    distance to the k nearest others."""
    pa, pb, outl = [], [], np.empty(len(x), np.float32)
    for lo in range(0, len(x), block):
        s = x[lo:lo + block] @ x.T
        r = np.arange(s.shape[0])
        s[r, lo + r] = -np.inf
        i, j = np.nonzero(s >= threshold)
        keep = lo + i < j
        pa.append(lo + i[keep])
        pb.append(j[keep])
        top = np.partition(-s, k - 1, axis=1)[:, :k]
        outl[lo:lo + block] = (1 + top).mean(axis=1)
    return np.concatenate(pa), np.concatenate(pb), outl


def _evaluate(folder: Path, tag, n: int, tr) -> dict:
    ta, tb, toutl = tr
    group_of = np.load(folder / f"group_of_{tag}.npy")
    ga, gb = group_of[ta + 1], group_of[tb + 1]
    found = np.load(folder / f"pairs_{tag}.npy")
    got = set(zip((found[0] - 1).tolist(), (found[1] - 1).tolist()))
    rec = {"true_pairs": int(ta.size),
           "pair_recall_grouped": round(float(np.mean((ga > 0) & (ga == gb))), 5) if ta.size else 1.0,
           "pair_recall_direct": round(float(np.mean([p in got for p in zip(ta.tolist(), tb.tolist())])), 5)
           if ta.size else 1.0}
    outl = np.load(folder / f"outlier_{tag}.npy")
    top = max(1, n // 100)
    rec["outlier_top1pct_overlap"] = round(len(set(np.argsort(-outl)[:top]) & set(np.argsort(-toutl)[:top]))
                                           / top, 4)
    rec["outlier_mean_abs_err"] = round(float(np.abs(outl - toutl).mean()), 6)
    return rec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--threshold", type=float, default=0.95)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--no-truth", action="store_true", help="skip the exact comparison (for 1M)")
    ap.add_argument("--one-pass", action="store_true", help="duplicates and scores from one kNN pass")
    ap.add_argument("--widths", default="", help="search widths of the pass, comma separated "
                    "(default: the index's expansion_search); one pass each over the same graph")
    ap.add_argument("--connectivity", type=int, default=None, help="graph build setting (default: assay's)")
    ap.add_argument("--expansion-add", type=int, default=None, help="graph build setting (default: assay's)")
    ap.add_argument("--keep", default=None, help="a folder to keep the store (and its saved graph) in; "
                    "reused when it holds one (the pass then finds the graph built)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    widths = [int(w) for w in args.widths.split(",") if w] or [None]
    build = {k: v for k, v in (("connectivity", args.connectivity), ("expansion_add", args.expansion_add))
             if v is not None}
    if args.child:
        return child(Path(args.child), args.threshold, args.k, args.one_pass, widths, build)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        if (folder / "planted.json").is_file():
            planted = json.loads((folder / "planted.json").read_text())
        else:
            planted = make_store(args.n, args.seed, folder)
            (folder / "planted.json").write_text(json.dumps(planted))
        store_s = round(time.perf_counter() - t0, 1)
        cmd = [sys.executable, __file__, "--child", str(folder), "--threshold", str(args.threshold),
               "--k", str(args.k), "--widths", args.widths]
        for flag, v in (("--connectivity", args.connectivity), ("--expansion-add", args.expansion_add)):
            if v is not None:
                cmd += [flag, str(v)]
        out = subprocess.run(cmd + (["--one-pass"] if args.one_pass else []), capture_output=True, text=True,
                             check=True)
        rows = [json.loads(line) for line in out.stdout.strip().splitlines() if line.startswith("{")]
        tr = None
        if not args.no_truth:
            x = np.load(folder / "x.npy")
            t0 = time.perf_counter()
            tr = truth(x, args.threshold, args.k)
            exact_s = round(time.perf_counter() - t0, 1)
        for res in rows:
            rec = {"date": datetime.date.today().isoformat(), "n": args.n, "dim": D, "threshold": args.threshold,
                   "k": args.k, "seed": args.seed, "nice": os.nice(0), "store_s": store_s,
                   "machine": f"{platform.machine()}, {os.cpu_count()} cores", **planted, **res}
            if tr is not None:
                rec.update(exact_s=exact_s, **_evaluate(folder, res["width"], args.n, tr))
            rec["load_avg_at_end"] = [round(v, 2) for v in os.getloadavg()]
            print(json.dumps(rec))
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
