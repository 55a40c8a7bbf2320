"""Do per-annotator skills estimated from someone's first answers predict
their later answers? (issue 13, "Nuance skill predicts")

For each real crowd with 4+ classes (default: ``web``, ``s_rel`` from
``../shared/data/crowd``), each annotator's answers on items with expert
truth are taken in the order of the file; the first ``n`` (10, 20, 50) of
every annotator are the training answers, and each annotator with at least
``n + 10`` answers is scored on the rest: the mean log-likelihood of their
later answers given the truth, log P(answer | truth), under

* ``crowd``: one project-wide confusion matrix (everyone's training answers);
* ``accuracy``: one accuracy per annotator (shrunk towards the crowd's by
  empirical Bayes), mistakes spread evenly over the other classes;
* ``own``: each annotator's own confusion matrix, add-one smoothed;
* ``skills``: :func:`assay.quality.skills.estimate_skills` (their accuracy,
  making the crowd's kind of mistakes, shrunk by empirical Bayes).

Higher is better; ``skills`` must beat ``accuracy`` and ``crowd``.

    python benchmarks/quality/bench_skills.py [--sets web,s_rel] [--first 10,20,50]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from assay.quality.skills import _shrunk_rate, estimate_skills

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "crowd"


def load(name: str):
    ans = pd.read_csv(DATA / name / "answers.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(DATA / name / "truth.csv", dtype=str, keep_default_na=False)
    df = ans.merge(truth.rename(columns={"label": "truth"}), on="item")  # answers on items with truth, file order
    classes = sorted(set(df["label"]) | set(df["truth"]))
    code = {c: i for i, c in enumerate(classes)}
    workers = {w: i for i, w in enumerate(dict.fromkeys(df["worker"]))}
    w = df["worker"].map(workers).to_numpy(np.intp)
    t = df["truth"].map(code).to_numpy(np.intp)
    y = df["label"].map(code).to_numpy(np.intp)
    return w, t, y, len(classes), len(workers)


def split(w: np.ndarray, n: int) -> np.ndarray:
    """True for each answer among its annotator's first ``n`` (file order)."""
    rank = np.zeros(len(w), np.intp)
    seen: dict[int, int] = {}
    for i, a in enumerate(w):
        rank[i] = seen.get(a, 0)
        seen[a] = rank[i] + 1
    return rank < n


def score(name: str, n: int) -> dict:
    w, t, y, k, a = load(name)
    train = split(w, n)
    per = np.bincount(w, minlength=a)
    scored = (~train) & (per[w] >= n + 10)
    if not scored.any():
        return {"set": name, "first": n, "annotators": 0}
    tw, tt, ty = w[train], t[train], y[train]
    sw, st, sy = w[scored], t[scored], y[scored]
    out = {"set": name, "classes": k, "first": n, "annotators": int(len(np.unique(sw))), "later_answers": int(scored.sum())}
    # crowd: one confusion for everyone
    crowd = np.full((k, k), 1.0 / k)
    np.add.at(crowd, (tt, ty), 1.0)
    crowd /= crowd.sum(axis=1, keepdims=True)
    out["crowd"] = float(np.log(crowd[st, sy]).mean())
    # accuracy: one number per annotator, shrunk to the crowd's by empirical Bayes
    hits = np.bincount(tw, weights=(tt == ty).astype(float), minlength=a)
    tot = np.bincount(tw, minlength=a).astype(float)
    acc = _shrunk_rate(hits, tot, float((hits.sum() + 1) / (tot.sum() + 2)))
    p = np.where(st == sy, acc[sw], (1 - acc[sw]) / (k - 1))
    out["accuracy"] = float(np.log(np.maximum(p, 1e-12)).mean())
    # own: each annotator's confusion, add-one smoothed
    own = np.ones((a, k, k))
    np.add.at(own, (tw, tt, ty), 1.0)
    own /= own.sum(axis=2, keepdims=True)
    out["own"] = float(np.log(own[sw, st, sy]).mean())
    t0 = time.perf_counter()
    est = estimate_skills(tw, tt, ty, n_classes=k, n_workers=a)
    out["skills"] = float(est.loglik(sw, st, sy).mean())
    out["skills_s"] = round(time.perf_counter() - t0, 3)
    out["strength"] = est.strength
    out["skills_beats_both"] = out["skills"] > max(out["crowd"], out["accuracy"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default="web,s_rel")
    ap.add_argument("--first", default="10,20,50")
    args = ap.parse_args()
    rows = [score(s, int(n)) for s in args.sets.split(",") for n in args.first.split(",")]
    print(json.dumps({"bench": "skills", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                      "machine": platform.processor() or platform.machine(), "rows": rows}, indent=1))
    print("\n| set | first answers | annotators scored | later answers | crowd | accuracy | own | **skills** | strength | beats both |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if not r["annotators"]:
            continue
        print(f"| {r['set']} | {r['first']} | {r['annotators']} | {r['later_answers']:,} | {r['crowd']:.3f} | "
              f"{r['accuracy']:.3f} | {r['own']:.3f} | **{r['skills']:.3f}** | {r['strength']:.2f} | "
              f"{'yes' if r['skills_beats_both'] else 'no'} |")


if __name__ == "__main__":
    main()
