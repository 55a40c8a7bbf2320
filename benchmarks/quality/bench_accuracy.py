"""Accuracy of every assay aggregator on every real crowd set in
../shared/data/crowd, next to the published figures.

    python benchmarks/quality/bench_accuracy.py [--data ../shared/data/crowd] [--sets a,b] [--methods mv,auto]

A set is a folder under ``--data`` with ``answers.csv`` (``item,worker,label``)
and ``truth.csv`` (``item,label``); by default every such folder is used (the
seven shared sets first, in the order of docs/quality.md), so the same command
runs on crowds that are not in the shared folder — for those the published
columns read "–". Accuracy is over items with a truth label and at least one
answer. Prints JSON and markdown tables (best assay method per set in bold;
``auto`` against majority vote, the bar on every set).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1] / "src"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from assay.quality import METHODS, aggregate  # noqa: E402

SETS = ["d_product", "d_possent", "s_rel", "duck", "rte", "web", "sentiment_polarity"]
# ../shared/data/README.md (truth-inference literature)
PUBLISHED_MV = {"d_product": ".897", "d_possent": ".933", "s_rel": ".536–.542", "duck": ".759",
                "rte": ".897", "web": ".731", "sentiment_polarity": ".886–.890"}
BEST_PUBLISHED = {"d_product": 0.940, "d_possent": 0.961, "s_rel": 0.616, "duck": 0.917, "rte": 0.931,
                  "web": 0.822, "sentiment_polarity": 0.917}
ORDER = ["mv", "wawa", "one-coin", "ds", "glad", "mace", "bwa", "bcc", "ebcc", "minimax", "auto"]


def evaluate(folder: Path, method: str) -> dict:
    answers = pd.read_csv(folder / "answers.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(folder / "truth.csv", dtype=str, keep_default_na=False)
    t0 = time.perf_counter()
    r = aggregate(answers["item"].to_numpy(), answers["worker"].to_numpy(), answers["label"].to_numpy(),
                  method=method)
    seconds = time.perf_counter() - t0
    pred = pd.Series(r.labels, index=r.item_ids)
    t = truth[truth["item"].isin(pred.index)]
    acc = float((pred.loc[t["item"]].to_numpy() == t["label"].to_numpy()).mean())
    out = {"accuracy": acc, "correct": int(round(acc * len(t))), "seconds": seconds, "n": int(len(t)),
           "chosen": getattr(r.model, "method_", None),
           "iterations": int(r.model.n_iter_)}
    # expected accuracy if ties were broken uniformly at random (how the
    # literature's MV figures are computed)
    proba = pd.DataFrame(r.proba, index=r.item_ids, columns=r.classes).loc[t["item"]].to_numpy()
    top = proba.max(axis=1, keepdims=True)
    tied = np.isclose(proba, top)
    col = pd.Index(r.classes).get_indexer(t["label"])
    ok = col >= 0
    hit = np.zeros(len(t), bool)
    hit[ok] = tied[np.flatnonzero(ok), col[ok]]
    out["accuracy_ties_split"] = float(np.mean(np.where(hit, 1.0 / tied.sum(axis=1), 0.0)))
    out["ties"] = int((tied.sum(axis=1) > 1).sum())
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(HERE.parents[2] / "shared" / "data" / "crowd"))
    ap.add_argument("--methods", default=",".join(ORDER))
    ap.add_argument("--sets", help="comma-separated folder names under --data (default: every set there)")
    args = ap.parse_args()
    from _common import crowd_sets, machine

    methods = [m for m in args.methods.split(",") if m in METHODS]
    sets = args.sets.split(",") if args.sets else crowd_sets(Path(args.data), SETS)
    if not sets:
        raise SystemExit(f"no set (a folder with answers.csv and truth.csv) under {args.data}")
    res = {}
    for s in sets:
        res[s] = {m: evaluate(Path(args.data) / s, m) for m in methods}
        print(s, {m: round(v["accuracy"], 4) for m, v in res[s].items()}, file=sys.stderr, flush=True)
    print(json.dumps({"machine": machine(), "results": res}, indent=2))
    print()
    split = "mv" in methods
    print("| set | " + " | ".join(methods) + (" | mv, ties split" if split else "")
          + " | published MV | best published |")
    print("|---|" + "---|" * (len(methods) + 2 + split))
    for s in sets:
        best = max(v["accuracy"] for v in res[s].values())
        cells = []
        for m in methods:
            a = res[s][m]["accuracy"]
            cell = f"{a * 100:.2f}"
            cells.append(f"**{cell}**" if a == best else cell)
        if split:
            cells.append(f"{res[s]['mv']['accuracy_ties_split'] * 100:.2f}")
        bp = f"{BEST_PUBLISHED[s]:.3f}" if s in BEST_PUBLISHED else "–"
        print(f"| {s} | " + " | ".join(cells) + f" | {PUBLISHED_MV.get(s, '–')} | {bp} |")
    if "auto" in methods and "mv" in methods:
        print()
        # published figures are rounded to 3 decimals: "needed" is the fewest
        # items right whose share is >= the figure; "at 3 decimals" the fewest
        # whose share rounds to it
        print("| set | auto chose | auto − MV (better of the two) | auto − best published "
              "| best assay − best published | best assay: items right / needed (at 3 decimals) |")
        print("|---|---|---|---|---|---|")
        for s in sets:
            a = res[s]["auto"]["accuracy"]
            mv = max(res[s]["mv"]["accuracy"], res[s]["mv"]["accuracy_ties_split"])
            top = max((m for m in methods if m != "auto"), key=lambda m: res[s][m]["accuracy"])
            best = res[s][top]["accuracy"]
            n = res[s][top]["n"]
            if s not in BEST_PUBLISHED:
                print(f"| {s} | {res[s]['auto']['chosen']} | {100 * (a - mv):+.2f} | – | – ({top}: "
                      f"{100 * best:.2f}) | {res[s][top]['correct']} of {n} |")
                continue
            need = int(np.ceil(BEST_PUBLISHED[s] * n - 1e-9))
            rounded = int(np.ceil((BEST_PUBLISHED[s] - 0.0005) * n - 1e-9))
            print(f"| {s} | {res[s]['auto']['chosen']} | {100 * (a - mv):+.2f} | {100 * (a - BEST_PUBLISHED[s]):+.2f} | "
                  f"{100 * (best - BEST_PUBLISHED[s]):+.2f} ({top}) | {res[s][top]['correct']} / {need} ({rounded}) "
                  f"of {n} |")


if __name__ == "__main__":
    main()
