"""``assay simulate --teach`` (assay.simulation.teach): synthetic annotators
weak on some nuances go through the real hand-out, hidden checks, detection
rounds, teaching items and report; the simulation compares the report with
what it simulated. Small configurations (seconds each)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from assay.cli import app
from assay.errors import InvalidInput
from assay.simulation.teach import Config, simulate_teach

SMALL = {"annotators": 8, "answers": 120, "weak_share": 0.35, "check_rate": 0.5, "checks": 40, "seed": 3}


@pytest.fixture(scope="module")
def learn1():
    return simulate_teach(**SMALL, teach_rate=1.0)


@pytest.fixture(scope="module")
def learn0():
    return simulate_teach(**SMALL, teach_rate=0.0)


def test_weak_pairs_are_detected_and_taught(learn1):
    d, t = learn1["detection"], learn1["teaching"]
    assert d["pairs"] == 8 * 2 and d["weak_pairs"] >= 3
    assert d["detected_weak"] >= d["weak_pairs"] - 1 and d["power"] >= 0.75
    assert d["false_detections"] == 0
    at = d["checks_at_detection"]
    assert at["median"] >= 3 and at["max"] == max(at["values"]) and len(at["values"]) == d["detected_weak"]
    # every need got its 3 teaching items; with learning chance 1 the first one fixed each weak pair
    assert t["needs_taught"] == t["needs"] == d["detected_weak"] and t["items_served"] == 3 * t["needs_taught"]
    assert learn1["teaching_answers"] == t["items_served"] and t["learned"] == d["detected_weak"]
    assert learn1["answers"] == 8 * 120 and learn1["unspent"] == 0  # teaching items do not eat the budget


def test_with_learning_the_measured_change_is_positive(learn1):
    m = learn1["measurement"]
    assert m["needs_measured"] >= 3
    assert all(n["weak"] and n["learned"] and n["true_change"] > 0.3 for n in m["needs"])
    p = m["pooled"]
    assert p["interval"][0] > 0 and p["measured_change"] > 0.2 and p["true_change"] > 0.3
    assert p["before_checks"] == sum(n["before_checks"] for n in m["needs"])
    assert p["after_checks"] == sum(n["after_checks"] for n in m["needs"])
    assert all(n["interval"][0] <= n["measured_change"] <= n["interval"][1] for n in m["needs"])
    assert m["coverage"] == pytest.approx(sum(n["covers"] for n in m["needs"]) / len(m["needs"]), abs=1e-4)
    clean = m["pooled_after_detection"]  # the report's change_since_detection, its counts as the raw answers say
    assert clean["raw_mismatches"] == 0 and clean["after_checks"] == p["after_checks"]
    assert 0 < clean["before_checks"] < p["before_checks"]
    rep = learn1["measurement"]["report_project"]  # the report's own pooled figures, over every need taught
    assert rep["needs"] >= m["needs_measured"] and rep["before"]["checks"] >= p["before_checks"]


def test_without_learning_nothing_changes(learn0, learn1):
    t, m = learn0["teaching"], learn0["measurement"]
    assert t["items_served"] > 0 and t["learned"] == 0
    assert m["needs"] and all(n["true_change"] == 0 and not n["learned"] for n in m["needs"])
    assert m["pooled"]["true_change"] == pytest.approx(0.0)
    clean = m["pooled_after_detection"]  # "before" from the checks after the detection only: no selection
    assert clean["raw_mismatches"] == 0 and clean["interval"][0] <= 0 <= clean["interval"][1]
    assert m["pooled"]["measured_change"] < learn1["measurement"]["pooled"]["interval"][0]


def test_a_seed_gives_the_same_run():
    a = simulate_teach(**{**SMALL, "annotators": 4, "answers": 60, "seed": 5})
    b = simulate_teach(**{**SMALL, "annotators": 4, "answers": 60, "seed": 5})
    for key in ("detection", "teaching", "measurement", "answers", "teaching_answers"):
        assert a[key] == b[key]


@pytest.mark.parametrize("bad, word", [
    ({"classes": 3}, "even"), ({"annotators": 1}, "annotators"), ({"weak": 0.95}, "weak skill"),
    ({"check_rate": 0.6}, "check-rate"), ({"teach_rate": 1.5}, "teach-rate"), ({"weak_share": -0.1}, "weak-share"),
    ({"teach_items": 0}, "teach-items"), ({"refresh_every": 0}, "refresh-every"),
])
def test_bad_settings_are_refused(bad, word):
    with pytest.raises(InvalidInput) as e:
        simulate_teach(**bad)
    assert word in e.value.message
    with pytest.raises(TypeError):
        Config(no_such_setting=1)


def test_cli(tmp_path):
    res = CliRunner().invoke(app, ["simulate", "--teach", "--annotators", "4", "--teach-rate", "1", "--seed", "2"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["settings"]["annotators"] == 4 and out["settings"]["teach_rate"] == 1.0
    assert out["answers"] == 4 * 150 and "power" in out["detection"]
    assert "detection:" in res.stderr and "teaching:" in res.stderr
    for args, word in ((["--teach", "--answers", str(tmp_path / "a.csv")], "no --answers"),
                       ([], "--answers is required"), (["--teach", "--teach-rate", "2"], "teach-rate")):
        res = CliRunner().invoke(app, ["simulate", *args])
        assert res.exit_code in (1, 2) and word in res.output, res.output
