"""Adaptive redundancy for boxes and spans (assay.quality.shape_redundancy):
on synthetic crowds it asks for fewer answers than all and stays close to
the all-answers consensus; the replay is seeded; bad input is refused."""

from __future__ import annotations


import pytest
from conftest import IN_CI, SHARED_DATA

from assay.quality._boxes_synth import synthetic_crowd
from assay.quality.io import read_jsonl
from assay.quality._spans_synth import synthetic_span_crowd
from assay.quality.shape_redundancy import replay_adaptive, score_spans


@pytest.fixture(scope="module")
def box_crowd():
    rows, truth, _ = synthetic_crowd(300, n_workers=30, per_item=7, seed=3)
    return rows, truth


@pytest.fixture(scope="module")
def span_crowd():
    items, rows, truth = synthetic_span_crowd(400, 30, 5, seed=3)
    return items, rows, truth


def test_boxes_fewer_answers_close_to_all(box_crowd):
    rows, truth = box_crowd
    out = replay_adaptive(rows, "boxes", truth=truth, seed=0)
    assert out["answers_all"] == len(rows)
    assert out["share"] < 0.95, out["share"]
    assert out["answers_used"] == sum(out["used"].values())
    assert all(min(2, out["available"][it]) <= n <= out["available"][it] for it, n in out["used"].items())
    assert out["vs_consensus"]["f1"] >= 0.97, out["vs_consensus"]
    assert out["vs_truth"]["f1"] >= out["all_vs_truth"]["f1"] - 0.02, (out["vs_truth"], out["all_vs_truth"])
    # a fixed budget of two answers per item does clearly worse against the truth
    two = replay_adaptive(rows, "boxes", start=2, max_answers=2, truth=truth, seed=0, consensus=out["consensus"])
    assert two["share"] == pytest.approx(2 / 7)
    assert two["vs_truth"]["f1"] < out["vs_truth"]["f1"] - 0.02


def test_spans_fewer_answers_close_to_all(span_crowd):
    items, rows, truth = span_crowd
    out = replay_adaptive(rows, "spans", items=items, truth=truth, seed=0)
    assert out["share"] < 0.95, out["share"]
    assert out["vs_consensus"]["f1"] >= 0.93, out["vs_consensus"]
    assert out["vs_truth"]["f1"] >= out["all_vs_truth"]["f1"] - 0.03, (out["vs_truth"], out["all_vs_truth"])
    assert {r["item"] for r in out["results"]} == set(items)


def test_lower_target_asks_for_fewer_answers_and_seed_fixes_the_replay(box_crowd):
    rows, _ = box_crowd
    strict = replay_adaptive(rows, "boxes", target=0.99, seed=1)
    loose = replay_adaptive(rows, "boxes", target=0.6, seed=1, consensus=strict["consensus"])
    assert loose["answers_used"] < strict["answers_used"]
    again = replay_adaptive(rows, "boxes", target=0.99, seed=1, consensus=strict["consensus"])
    assert again["used"] == strict["used"]
    capped = replay_adaptive(rows, "boxes", max_answers=3, seed=1, consensus=strict["consensus"])
    assert max(capped["used"].values()) == 3


def test_score_spans_exact_match():
    pred = {"a": [[0, 3, "PER", 0.9], [5, 8, "LOC"]], "b": [[1, 2, "ORG"]]}
    truth = {"a": [[0, 3, "PER"], [5, 9, "LOC"]], "b": []}
    s = score_spans(pred, truth)
    assert (s["matched"], s["predicted"], s["true"]) == (1, 3, 2)
    assert s["f1"] == pytest.approx(2 / 5)


@pytest.mark.parametrize("kwargs, msg", [
    ({"kind": "polygons"}, "unknown kind"),
    ({"start": 1}, "start must be"),
    ({"start": True}, "start must be"),
    ({"max_answers": 1}, "max_answers must be"),
    ({"target": 1.0}, "target must be"),
    ({"target": "high"}, "target must be"),
])
def test_bad_arguments(box_crowd, kwargs, msg):
    rows, _ = box_crowd
    args = {"kind": "boxes", **kwargs}
    kind = args.pop("kind")
    with pytest.raises(ValueError, match=msg):
        replay_adaptive(rows[:20], kind, **args)


def test_bad_rows():
    with pytest.raises(ValueError, match="needs 'item', 'worker' and 'boxes'"):
        replay_adaptive([{"item": "a", "worker": "w", "spans": []}], "boxes")
    with pytest.raises(ValueError, match="no answers"):
        replay_adaptive([], "spans")
    with pytest.raises(ValueError):  # a bad box reaches the consensus's own check
        replay_adaptive([{"item": "a", "worker": "w", "boxes": [[5, 5, 1, 1]]},
                         {"item": "a", "worker": "v", "boxes": []}], "boxes")


@pytest.mark.slow
def test_real_pedestrians_half_the_answers():
    folder = SHARED_DATA / "boxes" / "pedestrians_a"
    if not folder.is_dir():
        if IN_CI:
            pytest.fail(f"shared data not found at {folder}")
        pytest.skip(f"shared data not found at {folder}")
    rows, truth = read_jsonl(folder / "answers.jsonl"), read_jsonl(folder / "truth.jsonl")
    items = {r["item"]: r for r in read_jsonl(folder / "items.jsonl")}
    out = replay_adaptive(rows, "boxes", items=items, truth=truth, seed=0)
    assert out["share"] <= 0.5, out["share"]
    assert out["vs_truth"]["f1"] >= out["all_vs_truth"]["f1"] - 0.01, (out["vs_truth"], out["all_vs_truth"])
    assert out["vs_consensus"]["f1"] >= 0.98, out["vs_consensus"]
