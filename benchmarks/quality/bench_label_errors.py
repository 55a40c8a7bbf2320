"""Probable label errors (issue 15): assay beside cleanlab on the same
probabilities, in one run, scored against expert truth.

Bar 1 (one given label per item): each item's label is ONE real worker's
answer (a random one, seeded); the in-loop model (``EmbeddingClassifier``)
is fitted on those labels and its out-of-fold probabilities go to both
``assay.quality.label_errors.find_label_errors`` and cleanlab's
``find_label_issues``. An item is truly mislabelled when the worker's
answer differs from the expert's. Precision / recall / F1 of the flags,
AUROC of each method's ranking score.

Bar 2 (several answers per item): the model is fitted on the majority vote
(the workflow cleanlab documents for its multi-annotator score) and its
out-of-fold probabilities plus all the answers go to
``assay.quality.label_errors.crowd_label_errors`` and cleanlab's
``get_label_quality_multiannotator``. Each method ranks its own consensus
by its quality score; AUROC of that ranking for "the consensus is wrong".

Sets: ``sentiment_polarity`` (real answers and sentences, MiniLM features
as the ML loop embeds text) and ``mnist_5k`` (real digits, PCA-64 pixel
features from ``benchmarks/ml/offline_features.py``, a simulated crowd
whose workers' accuracies are drawn from the real crowd sets by
``benchmarks/ml/make_mnist_crowd.py``).

cleanlab is AGPL and only ever imported here: put it on ``PYTHONPATH`` (an
unpacked wheel will do), never into assay's dependencies.

    PYTHONPATH=/tmp/cl/x python benchmarks/quality/bench_label_errors.py \
        [--cache /tmp/assay-ml-cache] [--seeds 0,1,2] [--out benchmarks/results/2026-12-04/issue15_label_errors.jsonl]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "benchmarks" / "ml"))


def _prf(flag: np.ndarray, wrong: np.ndarray) -> dict:
    tp = int((flag & wrong).sum())
    p = tp / max(int(flag.sum()), 1)
    r = tp / max(int(wrong.sum()), 1)
    return {"flagged": int(flag.sum()), "precision": round(p, 4), "recall": round(r, 4),
            "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0}


def _auroc(bad_score: np.ndarray, wrong: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(wrong, bad_score)), 4)


def _load(name: str, cache: Path) -> dict:
    """answers (item, worker, label codes), truth (N,), features (N, d), all
    over the items that have a truth, a feature row and an answer."""
    if name == "mnist_5k":
        crowd = cache / "mnist_crowd"
        if not (crowd / "answers.csv").is_file():
            subprocess.run([sys.executable, str(ROOT / "benchmarks/ml/make_mnist_crowd.py"), "--out", str(crowd)],
                           check=True, stdout=subprocess.DEVNULL)
        feat_dir = cache / "offline"
        if not (feat_dir / "mnist_5k.npy").is_file():
            subprocess.run([sys.executable, str(ROOT / "benchmarks/ml/offline_features.py"), str(feat_dir)],
                           check=True, stdout=subprocess.DEVNULL)
        f, ids = feat_dir / "mnist_5k.npy", feat_dir / "mnist_5k.ids.txt"
    else:
        crowd = DATA / "crowd" / name
        import bench_loop

        f, ids = bench_loop._features(name, cache, None)
    ans = pd.read_csv(crowd / "answers.csv", dtype=str, keep_default_na=False).drop_duplicates(["item", "worker"])
    truth = pd.read_csv(crowd / "truth.csv", dtype=str, keep_default_na=False)
    names = ids.read_text().split()
    X = np.load(f)
    row = {n: i for i, n in enumerate(names)}
    classes = sorted(set(truth["label"]) | set(ans["label"]))
    code = {c: i for i, c in enumerate(classes)}
    keep = sorted(set(truth["item"]) & set(ans["item"]) & set(row))
    pos = {it: i for i, it in enumerate(keep)}
    ans = ans[ans["item"].isin(pos)]
    t = truth.set_index("item")["label"]
    return {"name": name, "X": X[[row[i] for i in keep]], "truth": np.array([code[t[i]] for i in keep]),
            "items": ans["item"].map(pos).to_numpy(np.intp), "workers": pd.factorize(ans["worker"])[0],
            "labels": ans["label"].map(code).to_numpy(np.intp), "k": len(classes)}


def _oof(X, y, k, seed):
    from assay.learn.model import EmbeddingClassifier

    return EmbeddingClassifier(random_state=seed).fit(X, y, k).oof_proba_


def bar1(d: dict, seed: int) -> list[dict]:
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    from assay.quality.label_errors import RULES, find_label_errors

    rng = np.random.default_rng(seed)
    n = d["truth"].size
    # one real answer per item: a random answer row of each item
    pick = pd.Series(np.arange(d["items"].size)).groupby(d["items"]).apply(lambda s: rng.choice(s.to_numpy()))
    given = np.empty(n, np.intp)
    given[pick.index.to_numpy()] = d["labels"][pick.to_numpy()]
    wrong = given != d["truth"]
    pp = _oof(d["X"], given, d["k"], seed)
    base = {"bar": 1, "seed": seed, "items": n, "errors": int(wrong.sum()),
            "model_acc_vs_truth": round(float((pp.argmax(1) == d["truth"]).mean()), 4)}
    rows = []
    for rule in RULES:
        t0 = time.perf_counter()
        res = find_label_errors(given, pp, rule=rule)
        rows.append({**base, "method": f"assay:{rule}", **_prf(res.is_error, wrong),
                     "auroc": _auroc(-res.quality, wrong), "seconds": round(time.perf_counter() - t0, 3),
                     "default": rule == "noise_rate"})
    for fb in ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given"):
        t0 = time.perf_counter()
        flag = find_label_issues(given, pp, filter_by=fb)
        rows.append({**base, "method": f"cleanlab:{fb}", **_prf(flag, wrong),
                     "auroc": _auroc(-get_label_quality_scores(given, pp), wrong),
                     "seconds": round(time.perf_counter() - t0, 3), "default": fb == "prune_by_noise_rate"})
    return rows


#: answers per item kept for bar 2 (the first ones, in source order): the simulated
#: MNIST crowd has 10 per item, and with 10 answers its consensus is never wrong
BAR2_PER_ITEM = {"mnist_5k": 3}


def _first_answers(d: dict, m: int) -> dict:
    rank = pd.Series(np.arange(d["items"].size)).groupby(d["items"]).cumcount().to_numpy()
    keep = rank < m
    return {**d, "items": d["items"][keep], "workers": d["workers"][keep], "labels": d["labels"][keep]}


def bar2(d: dict, seed: int) -> list[dict]:
    from cleanlab.multiannotator import get_label_quality_multiannotator

    from assay.quality.label_errors import crowd_label_errors
    from assay.quality.majority import MajorityVote

    if d["name"] in BAR2_PER_ITEM:
        d = _first_answers(d, BAR2_PER_ITEM[d["name"]])
    n, k = d["truth"].size, d["k"]
    mv = MajorityVote().fit(d["items"], d["workers"], d["labels"], n_classes=k, n_items=n).labels_
    pp = _oof(d["X"], mv, k, seed)
    base = {"bar": 2, "seed": seed, "items": n, "answers": int(d["labels"].size),
            "mv_acc": round(float((mv == d["truth"]).mean()), 4)}
    t0 = time.perf_counter()
    a = crowd_label_errors(d["items"], d["workers"], d["labels"], pp)
    sec = round(time.perf_counter() - t0, 2)
    wrong = a.consensus != d["truth"]
    # flagged: the lowest round(sum(1 - quality)), the count the posteriors expect (as Workspace.label_errors)
    flag = np.zeros(n, bool)
    flag[a.order[: int(round(float(np.nansum(1.0 - a.quality))))]] = True
    rows = [{**base, "method": "assay:crowd_label_errors", "consensus_acc": round(float(1 - wrong.mean()), 4),
             "consensus_wrong": int(wrong.sum()), "auroc": _auroc(-a.quality, wrong), "seconds": sec,
             **_left(a.quality, wrong), **{f"flag_{m}": v for m, v in _prf(flag, wrong).items()}}]
    m = np.full((n, int(d["workers"].max()) + 1), np.nan)
    m[d["items"], d["workers"]] = d["labels"]
    for method in ("best_quality", "majority_vote"):
        t0 = time.perf_counter()
        lq = get_label_quality_multiannotator(pd.DataFrame(m), pp, consensus_method=method,
                                              verbose=False)["label_quality"]
        sec = round(time.perf_counter() - t0, 2)
        cons = lq["consensus_label"].to_numpy(int)
        wrong = cons != d["truth"]
        q = lq["consensus_quality_score"].to_numpy(float)
        row = {**base, "method": f"cleanlab:get_label_quality_multiannotator:{method}",
               "consensus_acc": round(float(1 - wrong.mean()), 4), "consensus_wrong": int(wrong.sum()),
               "auroc": _auroc(-q, wrong), "seconds": sec, **_left(q, wrong),
               # the same labels scored by both: assay's posterior of cleanlab's consensus label
               "same_labels_auroc_cleanlab": _auroc(-q, wrong),
               "same_labels_auroc_assay": _auroc(-a.proba[np.arange(n), cons], wrong)}
        rows.append(row)
    return rows


def _left(quality: np.ndarray, wrong: np.ndarray) -> dict:
    """Wrong consensus labels left after a person reviews (and fixes) the 5 % / 10 %
    of items ranked most probably wrong."""
    order = np.argsort(quality, kind="stable")
    out = {}
    for frac in (0.05, 0.10):
        top = order[: int(round(frac * quality.size))]
        out[f"wrong_left_after_review_{int(frac * 100)}pct"] = int(wrong.sum() - wrong[top].sum())
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="sentiment_polarity,mnist_5k")
    ap.add_argument("--cache", default="/tmp/assay-ml-cache")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--bars", default="1,2")
    ap.add_argument("--out", default=None, help="append the rows (JSON lines) here")
    args = ap.parse_args()
    import cleanlab

    stamp = {"date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(),
             "cleanlab": cleanlab.__version__}
    out = []
    for name in args.sets.split(","):
        d = _load(name, Path(args.cache))
        for seed in (int(s) for s in args.seeds.split(",")):
            for b in args.bars.split(","):
                for r in (bar1 if b == "1" else bar2)(d, seed):
                    r = {**stamp, "set": name, **r}
                    print(json.dumps(r), flush=True)
                    out.append(r)
    if args.out:
        with open(args.out, "a") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in out)


if __name__ == "__main__":
    main()
