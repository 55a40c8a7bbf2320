"""Needle mining (issue 15): the pure loop on synthetic clusters, and
``assay simulate --mine`` end to end on a small synthetic .npy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.errors import InvalidInput
from assay.learn.mining import mine, random_expected_labels
from assay.simulation.mine import simulate_mine


def _clusters(seed=0, n_common=2000, n_rare=20, d=16):
    """Ten broad common clusters plus one small rare cluster in its own direction."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(11, d))
    common = centres[rng.integers(0, 10, n_common)] + rng.normal(scale=0.8, size=(n_common, d))
    rare = centres[10] + rng.normal(scale=0.5, size=(n_rare, d))
    X = np.vstack([common, rare])
    y = np.r_[np.zeros(n_common, bool), np.ones(n_rare, bool)]
    perm = rng.permutation(len(X))
    return X[perm], y[perm]


def test_mining_finds_rare_cluster_with_far_fewer_labels_than_random():
    X, y = _clusters()
    rare = np.flatnonzero(y)
    seeds = rare[:3].tolist()
    to_find = len(rare) - 3
    goal = int(np.ceil(0.8 * to_find))
    asked = []
    res = mine(X, seeds, lambda rows: (asked.extend(rows), [bool(y[r]) for r in rows])[1], budget=len(X), goal=goal)
    assert res.found >= goal
    assert res.order == asked and not set(seeds) & set(asked)  # seeds are never asked again
    assert len(set(res.order)) == len(res.order)
    random = random_expected_labels(len(X) - 3, to_find, goal)
    assert len(res.order) * 10 < random  # random needs ~1,600 labels here
    assert res.curve[-1] == {"labels": len(res.order), "found": res.found}
    assert [c["found"] for c in res.curve] == sorted(c["found"] for c in res.curve)


def test_mining_respects_budget_and_pool():
    X, y = _clusters(n_common=50, n_rare=5)
    seeds = np.flatnonzero(y)[:1].tolist()
    res = mine(X, seeds, lambda rows: [bool(y[r]) for r in rows], budget=7, batch=3)
    assert len(res.order) == 7 and [c["labels"] for c in res.curve] == [3, 6, 7]
    res = mine(X, seeds, lambda rows: [bool(y[r]) for r in rows], budget=10_000)
    assert len(res.order) == len(X) - 1 and res.found == 4  # exhausted: every rare item found


def test_mining_bad_input():
    X = np.eye(4)
    with pytest.raises(InvalidInput, match="seed"):
        mine(X, [], lambda rows: [], budget=2)
    with pytest.raises(InvalidInput, match="seed rows"):
        mine(X, [9], lambda rows: [], budget=2)
    with pytest.raises(InvalidInput, match="oracle answered"):
        mine(X, [0], lambda rows: [], budget=2)


@pytest.fixture
def files(tmp_path):
    X, y = _clusters(seed=1, n_common=1500, n_rare=200)
    ids = [f"i{k}" for k in range(len(X))]
    np.save(tmp_path / "f.npy", X.astype(np.float32))
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    (tmp_path / "truth.csv").write_text("item,label\n" + "".join(f"{i},{'rare' if r else 'common'}\n"
                                                               for i, r in zip(ids, y)))
    return tmp_path


def _args(p, *extra):
    return ["simulate", "--mine", "--features", str(p / "f.npy"), "--feature-ids", str(p / "ids.txt"),
            "--truth", str(p / "truth.csv"), *extra]


def test_cli_mine(files):
    res = CliRunner().invoke(app, _args(files, "--rare-class", "rare", "--rare-share", "0.01", "--seed", "3"))
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["rare_items"] == 15 and r["pool"] == 1515  # down-sampled: 15 / 1515 = 1 %
    assert r["found_share"] >= 0.8 and r["reached"]
    assert r["ratio"] <= 5 < r["random_ratio"]
    assert r["labels_used"] == r["curve"][-1]["labels"]
    # the same seed replays the same run
    again = CliRunner().invoke(app, _args(files, "--rare-class", "rare", "--rare-share", "0.01", "--seed", "3"))
    assert json.loads(again.stdout) == r


@pytest.mark.parametrize("extra, message", [
    (["--rare-class", "nope"], "rare class 'nope' has no item"),
    (["--rare-class", "rare", "--seeds", "15"], "--seeds 15 leaves nothing to find"),
    (["--rare-class", "rare", "--rare-share", "1.5"], "--rare-share must be in"),
])
def test_cli_mine_bad_input(files, extra, message):
    res = CliRunner().invoke(app, _args(files, *extra))
    assert res.exit_code == 1
    assert message in res.output


def test_simulate_mine_needs_feature_ids(files):
    with pytest.raises(InvalidInput, match="--feature-ids"):
        simulate_mine(files / "f.npy", None, files / "truth.csv", "rare")
