"""Cost of labels: adaptive redundancy vs a fixed overlap, on every real
crowd set in ../shared/data/crowd, with ``assay simulate`` (real answers
replayed through the real hand-out and aggregation).

    python benchmarks/quality/bench_cost.py [--data ../shared/data/crowd] [--jobs 2] [--seed 0]

Per set:

- ``ds-all``: Dawid-Skene over every available answer (no simulation): the
  accuracy to reach;
- ``fixed``: simulate --policy fixed (every answer the data has, final
  aggregation ``auto``);
- ``adaptive``: simulate --policy adaptive at its defaults (start at 1
  answer, target 0.95, max answers = the set's median answers per item,
  re-fits as answers grow by 25 %);
- ``fixed@budget``: simulate --policy fixed with ``--overlap`` = the
  adaptive run's answers per item, rounded: a fixed overlap at about the
  same cost.

Bar: on d_product, d_possent, rte and sentiment_polarity, adaptive reaches
ds-all's accuracy within 0.5 points using at most 60 % of the answers.
Prints JSON lines and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))

SETS = ["d_product", "d_possent", "rte", "sentiment_polarity", "s_rel", "duck", "web"]
BAR_SETS = {"d_product", "d_possent", "rte", "sentiment_polarity"}


def ds_all(folder: Path) -> dict:
    import numpy as np
    import pandas as pd

    from assay.quality import aggregate

    a = pd.read_csv(folder / "answers.csv", dtype=str, keep_default_na=False)
    a = a.drop_duplicates(["item", "worker"], keep="last")
    t = pd.read_csv(folder / "truth.csv", dtype=str, keep_default_na=False)
    truth = dict(zip(t["item"], t["label"]))
    r = aggregate(a["item"].to_numpy(), a["worker"].to_numpy(), a["label"].to_numpy(), method="ds")
    ok = [lab == truth[i] for i, lab in zip(r.item_ids, r.labels) if i in truth]
    return {"answers_used": len(a), "answers_available": len(a), "accuracy": float(np.mean(ok))}


def run(job: tuple) -> dict:
    from assay.simulate import simulate

    name, folder, kind, seed, overlap, target = job
    folder = Path(folder)
    if kind == "ds-all":
        out = ds_all(folder)
    elif kind == "adaptive":
        out = simulate(folder / "answers.csv", folder / "truth.csv", policy="adaptive", seed=seed,
                       target=target)
    else:
        out = simulate(folder / "answers.csv", folder / "truth.csv", policy="fixed", overlap=overlap, seed=seed,
                       target=target)
    out.update(set=name, run=kind if overlap is None else f"fixed@{overlap}")
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(HERE.parents[2] / "shared" / "data" / "crowd"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--target", type=float, default=0.95)
    args = ap.parse_args()
    data = Path(args.data)
    sets = [s for s in args.sets.split(",") if (data / s / "answers.csv").is_file()]
    first = [(s, str(data / s), k, args.seed, None, args.target) for s in sets for k in ("adaptive", "fixed", "ds-all")]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run, first))
        adaptive = {r["set"]: r for r in results if r["run"] == "adaptive"}
        budget = [(s, str(data / s), "fixed", args.seed, max(1, round(adaptive[s]["answers_per_item"])),
                   args.target)
                  for s in sets]
        results += list(pool.map(run, budget))
    by = {(r["set"], r["run"]): r for r in results}
    print()
    print(f"target {args.target}, seed {args.seed}")
    print("| set | answers | ds-all acc | fixed (all) used / acc | adaptive used (share) / acc | "
          "adaptive − ds-all | fixed@budget used / acc | bar (≤60 %, ≥ −0.5) |")
    print("|---|---|---|---|---|---|---|---|")
    for s in sets:
        d, f, a = by[(s, "ds-all")], by[(s, "fixed")], by[(s, "adaptive")]
        b = next(r for r in results if r["set"] == s and r["run"].startswith("fixed@"))
        diff = 100 * (a["accuracy"] - d["accuracy"])
        share = a["answers_used"] / a["answers_available"]
        bar = ("holds" if share <= 0.60 and diff >= -0.5 else "fails") if s in BAR_SETS else "–"
        print(f"| {s} | {d['answers_available']} | {100 * d['accuracy']:.2f} | "
              f"{f['answers_used']} / {100 * f['accuracy']:.2f} | "
              f"{a['answers_used']} ({100 * share:.1f} %) / {100 * a['accuracy']:.2f} | {diff:+.2f} | "
              f"{b['answers_used']} ({b['run']}) / {100 * b['accuracy']:.2f} | {bar} |")


if __name__ == "__main__":
    main()
