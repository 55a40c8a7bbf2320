"""The three hand-out policies side by side through the real engine.

``assay simulate --arrivals workers --policy fixed|adaptive|routed`` on each
set and seed (workers arrive as often as they really answered; the hand-out
picks among the items each really answered), one JSON line per run, and a
table of answers used (share of the set's) and accuracy against Dawid-Skene
over every answer. The DB-free replica of the same model, with more rules
and seeds, is ``bench_routing.py``; this one checks the engine itself.

    python benchmarks/quality/bench_policies.py [--sets rte,d_possent] [--seeds 0,1,2] [--out FILE.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

CROWD = Path(__file__).resolve().parents[3] / "shared" / "data" / "crowd"
SETS = ("d_product", "d_possent", "rte", "sentiment_polarity")
POLICIES = ("fixed", "adaptive", "routed")


def ds_all(answers: Path, truth: Path) -> float:
    import pandas as pd

    from assay.quality import DawidSkene

    df = pd.read_csv(answers, dtype=str).drop_duplicates(["item", "worker"], keep="last")
    t = pd.read_csv(truth, dtype=str)
    items, icode = _codes(df["item"])
    _, wcode = _codes(df["worker"])
    classes, lcode = _codes(df["label"])
    model = DawidSkene().fit(icode, wcode, lcode, n_classes=len(classes))
    labels = dict(zip(items, (classes[j] for j in model.labels_)))
    truth_of = dict(zip(t["item"], t["label"]))
    hits = [labels[i] == lab for i, lab in truth_of.items() if i in labels]
    return 100.0 * sum(hits) / len(hits)


def _codes(col):
    import numpy as np

    values, code = np.unique(col.to_numpy(), return_inverse=True)
    return list(values), code


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    from assay.simulation.crowd import simulate

    out = args.out.open("a") if args.out else None
    table = []
    for name in args.sets.split(","):
        answers, truth = CROWD / name / "answers.csv", CROWD / name / "truth.csv"
        ref = ds_all(answers, truth)
        for seed in (int(s) for s in args.seeds.split(",")):
            for policy in POLICIES:
                t0 = time.perf_counter()
                r = simulate(answers, truth, policy=policy, arrivals="workers", seed=seed)
                row = {"set": name, "seed": seed, "policy": policy, "ds_all": round(ref, 2),
                       "answers_used": r["answers_used"], "share": round(100 * r["answers_used_share"], 1),
                       "accuracy": round(100 * r["accuracy"], 2), "delta": round(100 * r["accuracy"] - ref, 2),
                       "seconds": round(time.perf_counter() - t0, 1), "result": r}
                if out:
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                table.append(row)
                print(f"{name:20s} seed {seed} {policy:8s} {row['share']:5.1f} % {row['accuracy']:6.2f} "
                      f"({row['delta']:+.2f}) {row['seconds']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
