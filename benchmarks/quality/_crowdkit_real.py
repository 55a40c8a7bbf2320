"""crowd-kit's DS, GLAD, one-coin DS, MACE, Wawa and MV on the real crowd sets,
for an accuracy comparison with assay. Runs in crowd-kit's own virtualenv;
prints one JSON line per (set, method).

    /tmp/ckvenv/bin/python benchmarks/quality/_crowdkit_real.py ../shared/data/crowd ds glad [--sets a,b]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd

SETS = ["d_product", "d_possent", "s_rel", "duck", "rte", "web", "sentiment_polarity"]


def main() -> None:
    args = sys.argv[1:]
    sets = SETS
    if "--sets" in args:
        i = args.index("--sets")
        sets = args[i + 1].split(",")
        del args[i:i + 2]
    root = Path(args[0])
    methods = args[1:] or ["ds", "glad"]
    from crowdkit import aggregation as agg

    make = {"ds": agg.DawidSkene, "glad": agg.GLAD, "one-coin": agg.OneCoinDawidSkene, "mace": agg.MACE,
            "wawa": agg.Wawa, "mv": agg.MajorityVote}
    for s in sets:
        a = pd.read_csv(root / s / "answers.csv", dtype=str, keep_default_na=False)
        t = pd.read_csv(root / s / "truth.csv", dtype=str, keep_default_na=False)
        df = a.rename(columns={"item": "task"})
        for m in methods:
            t0 = time.perf_counter()
            try:
                pred = make[m]().fit_predict(df)
            except Exception as exc:  # noqa: BLE001 - report and go on
                print(json.dumps({"set": s, "method": m, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
                continue
            tt = t[t["item"].isin(pred.index)]
            acc = float((pred.loc[tt["item"]].astype(str).to_numpy() == tt["label"].to_numpy()).mean())
            print(json.dumps({"set": s, "method": m, "accuracy": acc, "seconds": time.perf_counter() - t0}),
                  flush=True)


if __name__ == "__main__":
    main()
