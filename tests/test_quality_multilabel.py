"""Multi-label truth inference (binary relevance) and `assay aggregate --multi-label`."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.errors import InvalidInput
from assay.quality.multilabel import BinaryRelevance, aggregate_multilabel


def _crowd(seed=0, n_items=400, k=4, n_workers=12, per_item=5):
    """True label sets; good workers (90 % per class), careless ones (60 %)
    and two who tick almost everything."""
    rng = np.random.default_rng(seed)
    truth = rng.random((n_items, k)) < 0.3
    acc = np.r_[np.full(6, 0.9), np.full(4, 0.6), np.full(n_workers - 10, 0.5)]
    items, workers, chosen = [], [], []
    for i in range(n_items):
        for w in rng.choice(n_workers, per_item, replace=False):
            if w >= 10:
                row = rng.random(k) < 0.9  # ticks everything
            else:
                right = rng.random(k) < acc[w]
                row = np.where(right, truth[i], ~truth[i])
            items.append(i)
            workers.append(w)
            chosen.append(row.astype(int))
    return np.array(items), np.array(workers), np.array(chosen), truth


def _mv(items, chosen, n_items):
    votes = np.zeros((n_items, chosen.shape[1]))
    np.add.at(votes, items, chosen)
    n = np.bincount(items, minlength=n_items)[:, None]
    return votes / n > 0.5


def test_binary_relevance_beats_per_class_majority_on_a_noisy_crowd():
    items, workers, chosen, truth = _crowd()
    m = BinaryRelevance(method="ds").fit(items, workers, chosen)
    assert m.proba_.shape == truth.shape and ((0 <= m.proba_) & (m.proba_ <= 1)).all()
    exact = (m.labels_ == truth).all(axis=1).mean()
    exact_mv = (_mv(items, chosen, len(truth)) == truth).all(axis=1).mean()
    assert exact > exact_mv + 0.05, (exact, exact_mv)
    assert ((0 < m.set_confidence_) & (m.set_confidence_ <= 1)).all()
    # the "ticks everything" workers get a worse per-class accuracy than the good ones
    assert m.accuracy_[10:].max() < m.accuracy_[:6].min()


def test_gold_sets_are_clamped_and_names_round_trip():
    items = ["a", "a", "a", "b", "b", "c"]
    workers = ["u", "v", "w", "u", "v", "u"]
    sets = [["x"], ["x", "y"], ["x"], [], ["y"], ["z"]]
    r = aggregate_multilabel(items, workers, sets, method="mv", gold={"b": ["z"]})
    by = dict(zip(r.item_ids, r.labels))
    assert by["a"] == ["x"]
    assert by["b"] == ["z"]
    assert r.confidence[list(r.item_ids).index("b")] == pytest.approx(1.0)
    assert list(r.classes) == ["x", "y", "z"]
    frame = r.to_frame()
    assert list(frame.columns) == ["item", "label", "confidence"]


def test_bad_input_is_refused():
    with pytest.raises(InvalidInput, match="empty"):
        aggregate_multilabel([], [], [])
    with pytest.raises(InvalidInput, match="not among"):
        aggregate_multilabel(["a"], ["u"], [["q"]], classes=["x"])
    with pytest.raises(InvalidInput, match="0 and 1"):
        BinaryRelevance().fit(np.array([0]), np.array([0]), np.array([[2]]))


def test_cli_multi_label(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("item,worker,label\n1,u,x|y\n1,v,x|y\n1,w,x\n2,u,z\n2,v,z\n2,w,y|z\n")
    out = tmp_path / "out.csv"
    res = CliRunner().invoke(app, ["aggregate", str(f), "--multi-label", "--method", "mv", "--out", str(out)])
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert lines[0] == "item,label,confidence"
    assert [ln.split(",")[:2] for ln in lines[1:]] == [["1", "x|y"], ["2", "z"]]
    res = CliRunner().invoke(app, ["aggregate", str(tmp_path / "missing.csv"), "--multi-label"])
    assert res.exit_code == 1 and "error:" in res.output
