"""``assay simulate`` with the arrival model (``--arrivals workers``) and the
routed policy: workers arrive as often as they really answered and only ever
get items they really answered."""

from __future__ import annotations

import json
import random
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.errors import InvalidInput
from assay.simulation.arrivals import arrival_order
from assay.simulation.crowd import simulate
from factories import write_csv


@pytest.fixture
def crowd(tmp_path):
    """60 items, 10 workers of mixed skill (two near-random), 2 to 6 answers per item."""
    rng = random.Random(5)
    truth = {f"i{n}": rng.choice("ab") for n in range(60)}
    skill = {f"w{n}": (0.92 if n < 5 else 0.75 if n < 8 else 0.5) for n in range(10)}
    rows = []
    for item, t in truth.items():
        for w in rng.sample(sorted(skill), rng.randint(2, 6)):
            rows.append((item, w, t if rng.random() < skill[w] else ("b" if t == "a" else "a")))
    a = write_csv(tmp_path / "answers.csv", ["item", "worker", "label"], rows)
    t = write_csv(tmp_path / "truth.csv", ["item", "label"], sorted(truth.items()))
    return a, t, rows


def test_arrival_order_has_each_worker_as_often_as_they_answered(crowd):
    _, _, rows = crowd
    df = pd.DataFrame(rows, columns=["item", "worker", "label"])
    order = arrival_order(df, np.random.default_rng(3))
    assert Counter(order) == Counter(df["worker"])
    assert order != list(df["worker"])  # shuffled, not the file's order
    assert arrival_order(df, np.random.default_rng(3)) == order  # seeded


@pytest.mark.parametrize("policy", ["fixed", "adaptive", "routed"])
def test_worker_arrivals_respect_counts_and_real_answers(crowd, policy):
    a, t, rows = crowd
    r = simulate(a, t, policy=policy, arrivals="workers", seed=2, refit_min=30, target=0.95, max_answers=4)
    assert r["policy"] == policy and r["arrivals"] == "workers"
    assert r["arrivals_total"] == len(rows)  # every worker arrived as often as they answered
    assert r["answers_used"] + r["arrivals_passed"] == r["arrivals_total"]  # each arrival answered or passed
    assert r["answers_not_in_data"] == 0 and r["handout_mismatches"] == 0  # only items they really answered
    assert r["accuracy"] is not None and 0.5 < r["accuracy"] <= 1.0
    if policy == "fixed":  # overlap = the most answers per item: every real answer is used
        assert r["answers_used"] == len(rows)
    else:
        assert r["answers_used"] < len(rows)
    assert (r["settings"].get("routing") == "skill") == (policy == "routed")


def test_routed_runs_are_reproducible_and_seeds_differ(crowd):
    a, t, _ = crowd
    one = simulate(a, t, policy="routed", seed=4, refit_min=30)
    two = simulate(a, t, policy="routed", seed=4, refit_min=30)
    other = simulate(a, t, policy="routed", seed=5, refit_min=30)
    keys = ("answers_used", "accuracy", "arrivals_passed", "items_review")
    assert [one[k] for k in keys] == [two[k] for k in keys]
    assert one["arrivals"] == "workers" and other["arrivals"] == "workers"


def test_item_arrivals_stay_the_default_of_fixed_and_adaptive(crowd):
    a, t, _ = crowd
    r = simulate(a, t, policy="adaptive", seed=1, refit_min=30)
    assert r["arrivals"] == "items" and "arrivals_total" not in r and r["answers_not_in_data"] == 0
    with pytest.raises(InvalidInput, match="routed policy needs --arrivals workers"):
        simulate(a, t, policy="routed", arrivals="items")
    with pytest.raises(InvalidInput, match="unknown arrivals"):
        simulate(a, t, policy="adaptive", arrivals="everyone")


def test_cli_routed_prints_its_policy(crowd):
    a, t, rows = crowd
    res = CliRunner().invoke(app, ["simulate", "--answers", str(a), "--truth", str(t), "--policy", "routed",
                                   "--seed", "1", "--target", "0.95"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["policy"] == "routed" and out["arrivals"] == "workers" and out["arrivals_total"] == len(rows)
    res = CliRunner().invoke(app, ["simulate", "--answers", str(a), "--truth", str(t), "--policy", "adaptive",
                                   "--arrivals", "workers", "--seed", "1"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["arrivals"] == "workers"
