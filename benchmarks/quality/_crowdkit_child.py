"""Run one crowd-kit aggregator on the seeded synthetic crowd; prints one JSON
line. Runs in crowd-kit's own virtualenv (never assay's): it imports only
numpy, pandas, crowd-kit and synth.py beside it."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from synth import make_crowd  # noqa: E402


def peak_mb() -> float:
    """High-water RSS of this process (VmHWM; unlike ru_maxrss it is not
    inherited across exec from the parent that started us)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    method, n_iter = sys.argv[1], int(sys.argv[2])
    from crowdkit import aggregation as agg
    import importlib.metadata as md

    items, workers, labels, truth = make_crowd()
    df = pd.DataFrame({"task": items, "worker": workers, "label": labels})
    model = {"ds": agg.DawidSkene, "glad": agg.GLAD}[method](n_iter=n_iter)
    t0 = time.perf_counter()
    pred = model.fit_predict(df)
    seconds = time.perf_counter() - t0
    iters = len(getattr(model, "loss_history_", []) or []) or n_iter
    acc = float((pred.sort_index().to_numpy() == truth[np.sort(pred.index.to_numpy())]).mean())
    print(json.dumps({"method": method, "seconds": seconds, "iterations": iters, "per_iter_s": seconds / iters,
                      "accuracy": acc, "peak_mb": peak_mb(),
                      "crowd_kit": md.version("crowd-kit")}))


if __name__ == "__main__":
    main()
