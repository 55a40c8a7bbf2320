"""How many labels would even a fully supervised ranking need to find 80 % of a 1 % rare class?"""
import sys
from pathlib import Path
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict, StratifiedKFold
sys.path.insert(0, "/work/main/benchmarks/quality")
import bench_label_errors as B

cache = Path("/tmp/assay-ml-cache")
for name in sys.argv[1].split(","):
    d = B._load(name, cache)
    X, y = d["X"], d["truth"]
    for rare in sorted(set(y)):
        for seed in (0, 1, 2):
            rng = np.random.default_rng(seed)
            pos = np.flatnonzero(y == rare); neg = np.flatnonzero(y != rare)
            n_rare = max(5, int(round(0.01 * len(neg) / 0.99)))
            keep = np.concatenate([rng.choice(pos, n_rare, replace=False), neg])
            Xs, ys = X[keep], (y[keep] == rare).astype(int)
            p = cross_val_predict(LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000), Xs, ys,
                                  cv=StratifiedKFold(5, shuffle=True, random_state=seed), method="predict_proba")[:, 1]
            order = np.argsort(-p)
            hits = np.cumsum(ys[order])
            need = int(np.searchsorted(hits, int(np.ceil(0.8 * n_rare)))) + 1
            print(name, "rare", rare, "seed", seed, "pool", len(keep), "rare", n_rare,
                  "labels for 80%", need, "=", round(need / n_rare, 1), "x", flush=True)

# a stronger bound: the ranking of a classifier fitted with every label of the balanced set (5-fold out-of-fold)
for name in sys.argv[1].split(","):
    d = B._load(name, cache)
    X, y = d["X"], d["truth"]
    for rare in sorted(set(y)):
        yy = (y == rare).astype(int)
        p = cross_val_predict(LogisticRegression(C=1.0, max_iter=2000), X, yy,
                              cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")[:, 1]
        from sklearn.metrics import roc_auc_score
        for seed in (0, 1, 2):
            rng = np.random.default_rng(seed)
            pos = np.flatnonzero(yy == 1); neg = np.flatnonzero(yy == 0)
            n_rare = max(5, int(round(0.01 * len(neg) / 0.99)))
            keep = np.concatenate([rng.choice(pos, n_rare, replace=False), neg])
            order = np.argsort(-p[keep]); hits = np.cumsum(yy[keep][order])
            need = int(np.searchsorted(hits, int(np.ceil(0.8 * n_rare)))) + 1
            print("FULL-LABEL BOUND", name, "rare", rare, "seed", seed, "AUC", round(roc_auc_score(yy, p), 3),
                  "labels for 80%", need, "=", round(need / n_rare, 1), "x", flush=True)
