"""``assay simulate``: real answers replayed through the real hand-out."""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.simulation.crowd import simulate
from factories import write_csv

KEYS = {"answers_used", "answers_available", "answers_per_item", "items", "accuracy", "items_resolved",
        "accuracy_resolved"}


@pytest.fixture
def synthetic(tmp_path):
    """40 items, 8 workers (two of them bad), 3 to 6 answers per item."""
    rng = random.Random(1)
    truth = {f"i{n}": rng.choice("ab") for n in range(40)}
    skill = {f"w{n}": (0.9 if n < 6 else 0.3) for n in range(8)}
    rows = []
    for item, t in truth.items():
        for w in rng.sample(sorted(skill), rng.randint(3, 6)):
            right = rng.random() < skill[w]
            rows.append((item, w, t if right else ("b" if t == "a" else "a")))
    a = write_csv(tmp_path / "answers.csv", ["item", "worker", "label"], rows)
    t = write_csv(tmp_path / "truth.csv", ["item", "label"], sorted(truth.items()))
    return a, t, len(rows)


def test_fixed_policy_uses_all_answers_by_default(synthetic):
    a, t, n = synthetic
    r = simulate(a, t, policy="fixed")
    assert KEYS <= set(r)
    assert r["answers_used"] == r["answers_available"] == n
    assert r["items"] == 40 and r["items_with_truth"] == 40
    # the accuracy is the exported labels': a plain vote before any re-fit ...
    assert r["label_sources"] == {"majority": 40} and r["refits"] == 0
    # ... the project's aggregation once fixed overlap is re-fitted (as the server does)
    r3 = simulate(a, t, policy="fixed", refit_min=20)
    assert r3["refits"] >= 1 and r3["label_sources"] == {"consensus:ds": 40}
    assert r["handout_mismatches"] == 0
    r2 = simulate(a, t, policy="fixed", overlap=2)
    assert r2["answers_used"] == 80 and r2["answers_per_item"] == 2


def test_adaptive_policy_uses_fewer_answers(synthetic):
    a, t, n = synthetic
    r = simulate(a, t, policy="adaptive", target=0.9, max_answers=4, seed=3, refit_min=20)
    assert KEYS <= set(r)
    assert 40 <= r["answers_used"] <= r["answers_available"] == n
    assert r["answers_used"] <= 4 * 40
    assert 0 <= r["items_resolved"] <= r["items"]
    assert 0.0 <= r["accuracy"] <= 1.0
    assert r["refits"] >= 1 and r["handout_mismatches"] == 0
    assert 0 <= r["items_settled"] <= r["items"]
    assert simulate(a, t, policy="adaptive", target=0.9, max_answers=4, seed=3, refit_min=20)["answers_used"] \
        == r["answers_used"]  # seeded: the same run twice


def test_adaptive_defaults(synthetic):
    from assay.simulation.crowd import DEFAULT_TARGET

    a, t, _ = synthetic
    r = simulate(a, t, policy="adaptive", seed=3, refit_min=20)
    assert r["settings"]["target_confidence"] == DEFAULT_TARGET == 0.995
    assert r["settings"]["overlap"] == 1 and r["settings"]["max_answers"] == 5  # the median answers per item


def test_cli_prints_one_json_object(synthetic):
    a, t, _ = synthetic
    res = CliRunner().invoke(app, ["simulate", "--answers", str(a), "--truth", str(t), "--policy", "adaptive",
                                   "--target", "0.9", "--max-answers", "3", "--method", "mv", "--seed", "1"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert KEYS <= set(out) and out["method"] == "mv" and out["answers_used"] <= out["answers_available"]


def test_cli_rejects_a_bad_policy(synthetic):
    a, t, _ = synthetic
    res = CliRunner().invoke(app, ["simulate", "--answers", str(a), "--truth", str(t), "--policy", "nope"])
    assert res.exit_code == 1 and "policy" in res.output


@pytest.mark.slow
def test_real_set_rte(shared_data):
    d = shared_data / "crowd" / "rte"
    r = simulate(d / "answers.csv", d / "truth.csv", policy="adaptive")
    assert r["answers_available"] == 8000 and r["items"] == 800
    assert r["answers_used"] < 0.8 * r["answers_available"]
    assert r["accuracy"] > 0.88  # DS over all 8000 answers: 0.9275


def test_many_classes_do_not_stop_items_on_one_weak_answer(tmp_path):
    """Regression: on a 10-class crowd the settle table once stopped nearly
    every item after one answer (accuracy = a single answer's)."""
    import numpy as np

    from assay.simulation.crowd import simulate

    rng = np.random.default_rng(0)
    rows, truth = [], []
    for i in range(300):
        y = int(rng.integers(10))
        truth.append(f"i{i},{y}")
        for w in rng.choice(30, 5, replace=False):
            lab = y if rng.random() < 0.7 else int(rng.choice([c for c in range(10) if c != y]))
            rows.append(f"i{i},w{w},{lab}")
    (tmp_path / "a.csv").write_text("item,worker,label\n" + "\n".join(rows) + "\n")
    (tmp_path / "t.csv").write_text("item,label\n" + "\n".join(truth) + "\n")
    r = simulate(tmp_path / "a.csv", tmp_path / "t.csv", policy="adaptive", max_answers=3, target=0.95)
    assert r["answers_per_item"] > 1.8
    # the answers collected hold a label: their majority is right > 80 % (one
    # answer alone: about 70 %) ...
    assert r["accuracy_offline"] > 0.8
    # ... while what the project exports is its own aggregation (Dawid-Skene
    # re-fits: 30 answers per annotator for a 10 x 10 confusion; about 66 %)
    assert r["label_sources"] == {"consensus:ds": 300} and r["accuracy"] > 0.6


def test_the_accuracy_is_the_exported_files(synthetic, tmp_path):
    """What simulate reports is what a user exports: --export writes the
    simulated project's export, and its labels score the same."""
    a, t, _ = synthetic
    out = tmp_path / "labels.jsonl"
    res = CliRunner().invoke(app, ["simulate", "--answers", str(a), "--truth", str(t), "--policy", "adaptive",
                                   "--target", "0.9", "--max-answers", "4", "--seed", "3", "--export", str(out)])
    assert res.exit_code == 0, res.output
    r = json.loads(res.output)
    truth = dict(line.split(",") for line in t.read_text().splitlines()[1:])
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == r["items"] == 40
    scored = [rec["label"] == truth[rec["meta"]["item"]] for rec in recs if rec["label"] is not None]
    assert round(sum(scored) / len(scored), 6) == r["accuracy"]
    assert sum(1 for rec in recs if rec["confidence"] is not None and rec["confidence"] >= 0.9) == r["items_resolved"]
