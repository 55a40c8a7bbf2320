"""Bar-2 variants on cached inputs (issue 15 helper experiment)."""
import sys, json, pickle, time
from pathlib import Path
import numpy as np, pandas as pd
sys.path.insert(0, "/work/main/benchmarks/quality")
import bench_label_errors as B
from assay.quality.majority import MajorityVote
cache = Path("/tmp/assay-ml-cache")
out = {}
for name in sys.argv[1].split(","):
    d = B._load(name, cache)
    if name in B.BAR2_PER_ITEM:
        d = B._first_answers(d, B.BAR2_PER_ITEM[name])
    n, k = d["truth"].size, d["k"]
    mv = MajorityVote().fit(d["items"], d["workers"], d["labels"], n_classes=k, n_items=n).labels_
    for seed in (0, 1, 2):
        t = time.time()
        pp = B._oof(d["X"], mv, k, seed)
        out[(name, seed)] = {**{x: d[x] for x in ("truth", "items", "workers", "labels", "k")}, "pp": pp}
        print(name, seed, time.time() - t, flush=True)
pickle.dump(out, open(f"/tmp/h15/inputs_{sys.argv[1].replace(',', '_')}.pkl", "wb"))
