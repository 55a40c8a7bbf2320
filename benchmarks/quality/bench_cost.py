"""Cost of labels: adaptive redundancy vs a fixed overlap, on every real
crowd set in ../shared/data/crowd, with ``assay simulate`` (real answers
replayed through the real hand-out and aggregation).

    python benchmarks/quality/bench_cost.py [--data ../shared/data/crowd] [--jobs 1] [--seeds 0,1,2]
                                            [--target 0.995] [--criterion flip|gain]

Per set:

- ``ds-all``: Dawid-Skene over every available answer (no simulation): the
  accuracy to reach;
- ``fixed``: simulate --policy fixed (every answer the data has, final
  aggregation ``auto``), first seed;
- ``adaptive``: simulate --policy adaptive at its defaults (start at 1
  answer, target ``assay.simulation.crowd.DEFAULT_TARGET``, max answers = the set's
  median answers per item, re-fits as answers grow by 25 %); every seed on
  the bar's four sets, the first seed on the others;
- ``fixed@budget``: simulate --policy fixed with ``--overlap`` = the
  adaptive run's answers per item (first seed), rounded: a fixed overlap at
  about the same cost.

Bar: on d_product, d_possent, rte and sentiment_polarity, adaptive reaches
ds-all's accuracy within 0.5 points using at most 60 % of the answers.

A set is a folder under ``--data`` with ``answers.csv`` and ``truth.csv``;
by default every such folder is used. A set that is not one of the seven
shared ones (a crowd you bring) is treated like the bar's sets: every seed,
and the bar's check.
Every simulation also writes the simulated project's export and scores that
file against the truth (``export_accuracy``, :func:`_common.score_export`):
the labels a user gets, which must be the ``accuracy`` the run reports.
Prints JSON lines and two markdown tables. ``--jobs 1`` (the default) runs
one simulation at a time.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
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
    import tempfile

    from _common import score_export
    from assay.simulation.crowd import simulate

    name, folder, kind, seed, overlap, target, *rest = job
    criterion = rest[0] if rest else None
    folder = Path(folder)
    if kind == "ds-all":
        return _done(ds_all(folder), name, kind, seed, overlap)
    with tempfile.TemporaryDirectory(prefix="assay-cost-") as tmp:
        exported = Path(tmp) / "export.jsonl"
        if kind == "adaptive":
            out = simulate(folder / "answers.csv", folder / "truth.csv", policy="adaptive", seed=seed,
                           target=target, criterion=criterion, export_path=exported)
        else:
            out = simulate(folder / "answers.csv", folder / "truth.csv", policy="fixed", overlap=overlap,
                           seed=seed, target=target, export_path=exported)
        out.update(score_export(exported, folder / "truth.csv"))
    return _done(out, name, kind, seed, overlap)


def _done(out: dict, name: str, kind: str, seed: int, overlap) -> dict:
    out.update(set=name, run=kind if overlap is None else f"fixed@{overlap}", seed=seed)
    print(json.dumps(out), flush=True)
    return out


def _bar_set(s: str) -> bool:
    """The bar's four sets, and any set that is not one of the seven shared ones."""
    return s in BAR_SETS or s not in SETS


def _bar(s: str, share: float, diff: float) -> str:
    if not _bar_set(s):
        return "–"
    # accuracies are multiples of 1/items: compare the rounded difference (-0.50 is within 0.5)
    return "holds" if share <= 0.60 and round(diff, 6) >= -0.5 else "fails"


def main() -> None:
    from assay.simulation.crowd import DEFAULT_TARGET

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(HERE.parents[2] / "shared" / "data" / "crowd"))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--seeds", default="0,1,2", help="adaptive seeds on the bar's sets (others: the first)")
    ap.add_argument("--sets", help="comma-separated folder names under --data (default: every set there)")
    ap.add_argument("--target", type=float, default=DEFAULT_TARGET)
    ap.add_argument("--criterion", default=None, choices=["flip", "gain"],
                    help="what the settle table bounds (default: assay.engine.redundancy.STOP_CRITERION)")
    ap.add_argument("--render", metavar="FILE", help="only print the tables from an earlier run's JSON lines")
    args = ap.parse_args()
    data = Path(args.data)
    seeds = [int(x) for x in args.seeds.split(",")]
    s0 = seeds[0]
    if args.render:
        results = [json.loads(line) for line in open(args.render) if line.startswith("{")]
        names = args.sets.split(",") if args.sets else list(dict.fromkeys(r["set"] for r in results))
        sets = [s for s in names if any(r["set"] == s for r in results)]
        render(results, sets, seeds, args.target)
        return
    if args.sets:
        sets = [s for s in args.sets.split(",") if (data / s / "answers.csv").is_file()]
    else:
        from _common import crowd_sets

        sets = crowd_sets(data, SETS)
    if not sets:
        raise SystemExit(f"no set (a folder with answers.csv and truth.csv) under {data}")
    first = []
    for s in sets:
        first += [(s, str(data / s), "ds-all", s0, None, args.target), (s, str(data / s), "fixed", s0, None, args.target)]
        first += [(s, str(data / s), "adaptive", seed, None, args.target, args.criterion)
                  for seed in (seeds if _bar_set(s) else [s0])]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run, first))
        adaptive = {(r["set"], r["seed"]): r for r in results if r["run"] == "adaptive"}
        budget = [(s, str(data / s), "fixed", s0, max(1, round(adaptive[(s, s0)]["answers_per_item"])),
                   args.target) for s in sets]
        results += list(pool.map(run, budget))
    render(results, sets, seeds, args.target)


def render(results: list[dict], sets: list[str], seeds: list[int], target: float) -> None:
    s0 = seeds[0]
    by = {(r["set"], r["run"], r["seed"]): r for r in results}
    print()
    print(f"target {target}, seed {s0}")
    print("| set | answers | ds-all acc | fixed (all) used / acc | adaptive used (share) / acc | "
          "adaptive − ds-all | settled / review | fixed@budget used / acc | bar (≤60 %, ≥ −0.5) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in sets:
        d, f, a = by[(s, "ds-all", s0)], by[(s, "fixed", s0)], by[(s, "adaptive", s0)]
        b = next(r for r in results if r["set"] == s and r["run"].startswith("fixed@"))
        diff = 100 * (a["accuracy"] - d["accuracy"])
        share = a["answers_used"] / a["answers_available"]
        print(f"| {s} | {d['answers_available']:,} | {100 * d['accuracy']:.2f} | "
              f"{f['answers_used']:,} / {100 * f['accuracy']:.2f} | "
              f"{a['answers_used']:,} ({100 * share:.1f} %) / {100 * a['accuracy']:.2f} | {diff:+.2f} | "
              f"{a.get('items_settled', '–')} / {a['items_review']} | "
              f"{b['answers_used']:,} ({b['run']}) / {100 * b['accuracy']:.2f} | {_bar(s, share, diff)} |")
    print()
    print(f"target {target}, the bar's sets (and sets not among the shared seven), seeds {','.join(map(str, seeds))}")
    print("| set | ds-all | " + " | ".join(f"seed {x}: used (share) / acc / Δ / bar" for x in seeds) + " |")
    print("|---|---|" + "---|" * len(seeds))
    for s in sets:
        if not _bar_set(s):
            continue
        d = by[(s, "ds-all", s0)]
        cells = []
        for x in seeds:
            a = by[(s, "adaptive", x)]
            diff = 100 * (a["accuracy"] - d["accuracy"])
            share = a["answers_used"] / a["answers_available"]
            cells.append(f"{a['answers_used']:,} ({100 * share:.1f} %) / {100 * a['accuracy']:.2f} / {diff:+.2f} / "
                         f"{_bar(s, share, diff)}")
        print(f"| {s} | {100 * d['accuracy']:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
