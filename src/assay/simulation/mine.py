"""``assay simulate --mine``: needle mining (:func:`assay.learn.mining.mine`)
replayed on real data with a chosen rare class.

The pool is every item with a feature row and a true label; the rare class
is down-sampled at random to ``rare_share`` of the pool (all of it if it is
already rarer), ``seeds`` of its items are given as the known examples, and
the truth answers as people would. The loop runs until ``recall`` of the
other rare items is found or the pool is exhausted.

Counts are strict: ``labels_used`` and ``found`` leave the seeds out, and
``found_share`` is over the rare items that were not seeds. ``ratio`` is
labels used per rare item in the pool (seeds included), the quantity the
"people label at most 5x as many items as there are rare ones" bar reads.
The random baseline is exact, not sampled: the expected number of random
labels to find the same number of rare items.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from assay.errors import InvalidInput
from assay.learn.mining import BATCH, mine, random_expected_labels

RECALL = 0.8  # share of the (non-seed) rare items to find


def _load(features: Path, ids_path: Path, truth: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    if not Path(features).is_file():
        raise InvalidInput(f"{features} does not exist")
    X = np.load(features)
    if X.ndim != 2:
        raise InvalidInput(f"{Path(features).name} must hold a 2-d array (one row per item)")
    ids = [ln.strip() for ln in Path(ids_path).read_text().splitlines() if ln.strip()]
    if len(ids) != len(X):
        raise InvalidInput(f"{len(ids)} ids for {len(X)} feature rows")
    t = pd.read_csv(truth, dtype=str, keep_default_na=False)
    if not {"item", "label"} <= set(t.columns):
        raise InvalidInput("--truth must be a CSV with columns item,label")
    lab = dict(zip(t["item"], t["label"]))
    keep = [j for j, i in enumerate(ids) if i in lab]
    if not keep:
        raise InvalidInput("no feature id has a true label in --truth")
    return X[keep], [ids[j] for j in keep], np.array([lab[ids[j]] for j in keep])


def simulate_mine(features: Path, feature_ids: Path | None, truth: Path, rare_class: str, rare_share: float = 0.01,
                  seeds: int = 5, seed: int = 0, batch: int = BATCH, recall: float = RECALL) -> dict:
    if feature_ids is None:
        raise InvalidInput("--mine needs --feature-ids (one item id per line, aligned with --features)")
    if not 0 < rare_share < 1:
        raise InvalidInput(f"--rare-share must be in (0, 1), got {rare_share}")
    if seeds < 1:
        raise InvalidInput("--seeds must be at least 1")
    X, ids, y = _load(features, feature_ids, truth)
    rare_rows = np.flatnonzero(y == str(rare_class))
    if len(rare_rows) == 0:
        known = ", ".join(sorted(set(y.tolist()))[:20])
        raise InvalidInput(f"rare class {rare_class!r} has no item in --truth (classes: {known})")
    rng = np.random.default_rng(seed)
    others = np.flatnonzero(y != str(rare_class))
    want = max(1, round(rare_share * len(others) / (1 - rare_share)))
    rare = rng.permutation(rare_rows)[:min(want, len(rare_rows))]
    if seeds >= len(rare):
        raise InvalidInput(f"--seeds {seeds} leaves nothing to find: the pool holds {len(rare)} rare items")
    rows = np.sort(np.r_[others, rare])
    pos = {int(r): k for k, r in enumerate(rows)}
    is_rare = np.isin(rows, rare)
    seed_rows = [pos[int(r)] for r in rare[:seeds]]
    to_find = len(rare) - seeds
    goal = math.ceil(recall * to_find)
    res = mine(X[rows], seed_rows, lambda rs: [bool(is_rare[r]) for r in rs], budget=len(rows), batch=batch, goal=goal)
    pool = len(rows) - seeds
    rnd = random_expected_labels(pool, to_find, min(res.found, to_find)) if res.found else 0.0
    return {
        "rare_class": str(rare_class), "pool": len(rows), "rare_items": len(rare), "rare_share": len(rare) / len(rows),
        "seeds": seeds, "seed": seed, "batch": batch, "goal_found": goal,
        "labels_used": len(res.order), "found": res.found, "found_share": res.found / to_find,
        "ratio": len(res.order) / len(rare), "reached": res.found >= goal,
        "random_expected_labels": rnd, "random_ratio": rnd / len(rare),
        "curve": res.curve,
    }
