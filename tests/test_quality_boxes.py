"""Consensus for bounding boxes (assay.quality.boxes): skills recovered on a
synthetic crowd, better than the vote baseline there and on real crowd boxes,
and clear errors on bad rows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import SHARED_DATA

from assay.errors import InvalidInput
from assay.quality._boxes_synth import synthetic_crowd
from assay.quality.io import read_jsonl
from assay.quality.boxes import aggregate_boxes, fit_boxes, score_boxes

PED = "pedestrian"


def _row(item, worker, *boxes):
    return {"item": item, "worker": worker, "boxes": [list(b) for b in boxes]}


@pytest.fixture(scope="module")
def crowd():
    rows, truth, skills = synthetic_crowd(1500, seed=3)
    return rows, truth, skills, fit_boxes(rows, method="em"), fit_boxes(rows, method="vote")


def test_recovers_known_skills(crowd):
    _, _, skills, em, _ = crowd
    order = [int(w[1:]) for w in em.workers]
    for est, key in ((em.recall, "recall"), (em.false_rate, "false_rate"), (em.loc_error, "jitter")):
        r = np.corrcoef(est, skills[key][order])[0, 1]
        assert r > 0.9, (key, r)
    assert np.abs(em.recall - skills["recall"][order]).mean() < 0.05
    assert np.abs(em.false_rate - skills["false_rate"][order]).mean() < 0.05
    # precision: the share of one's boxes on real objects falls with the false-box rate
    assert np.corrcoef(em.precision, skills["false_rate"][order])[0, 1] < -0.8
    sk = em.skills()
    assert set(sk) == set(em.workers) and set(sk["w0"]) == {"boxes", "precision", "recall", "false_rate", "loc_error"}


def test_beats_vote_on_synthetic(crowd):
    _, truth, _, em, vote = crowd
    s_em, s_vote = score_boxes(em.results, truth), score_boxes(vote.results, truth)
    assert s_em["f1"] > s_vote["f1"] + 0.01, (s_em, s_vote)
    assert s_em["mean_iou"] > s_vote["mean_iou"], (s_em, s_vote)


def test_confidence_is_calibrated_enough(crowd):
    _, truth, _, em, _ = crowd
    by_item = {r["item"]: r["boxes"] for r in truth}
    conf, hit = [], []
    for r in em.results:
        for b in r["boxes"]:
            conf.append(b[5])
            t = by_item[r["item"]]
            hit.append(bool(t) and max(score_boxes({0: [b[:5]]}, {0: [x]})["matched"] for x in t) == 1)
    conf, hit = np.asarray(conf), np.asarray(hit)
    assert ((conf >= 0.5) & (conf <= 1.0)).all()  # only boxes judged real are returned
    assert hit[conf > 0.99].mean() > hit[conf < 0.9].mean()


def test_output_shape_and_coordinates():
    rows = [_row("a", f"w{k}", (10 + k, 20, 50 + k, 120, PED)) for k in range(5)]
    rows += [_row("b", f"w{k}") for k in range(5)]  # everyone: nothing to mark
    out = aggregate_boxes(rows)
    assert [r["item"] for r in out] == ["a", "b"]
    (box,) = out[0]["boxes"]
    assert len(box) == 6 and box[4] == PED and 0.5 <= box[5] <= 1.0
    assert box[:4] == pytest.approx([12, 20, 52, 120], abs=1.0)
    assert out[1]["boxes"] == [] and 0.0 <= out[1]["confidence"] <= 1.0
    # with image sizes, boxes are clipped to the image
    rows = [_row("a", f"w{k}", (-5, 10, 30, 60, PED)) for k in range(3)]
    (box,) = aggregate_boxes(rows, items={"a": {"width": 100, "height": 50}})[0]["boxes"]
    assert box[:4] == pytest.approx([0, 10, 30, 50])


def test_empty_answers_are_evidence():
    # 20 images: 5 annotators box one object each; on image "x" only one of them
    # draws a box and the others answer "nothing": that box is dropped
    rows = []
    for i in range(20):
        x = 40.0 * i
        rows += [_row(f"i{i}", f"w{k}", (x + k, 100, x + 30 + k, 170, PED)) for k in range(5)]
    rows += [_row("x", "w0", (500, 300, 530, 370, PED))] + [_row("x", f"w{k}") for k in range(1, 5)]
    out = {r["item"]: r for r in aggregate_boxes(rows)}
    assert out["x"]["boxes"] == []
    assert all(len(out[f"i{i}"]["boxes"]) == 1 for i in range(20))
    # the same single box with nobody else answering is all the evidence there is: kept
    alone = aggregate_boxes([_row("y", "w0", (500, 300, 530, 370, PED))])
    assert len(alone[0]["boxes"]) == 1


def test_adjacent_objects_stay_apart_and_classes_too():
    rows = []
    for k in range(5):
        rows.append(_row("a", f"w{k}", (100 + k, 100, 140 + k, 200, PED), (125 + k, 100, 165 + k, 200, PED),
                         (300, 300, 340, 340, "car")))
    rows.append(_row("a", "w5", (300, 300, 340, 340, PED)))
    out = aggregate_boxes(rows, method="em")[0]["boxes"]
    peds = sorted(b[0] for b in out if b[4] == PED)
    assert len(peds) == 2 and peds[0] == pytest.approx(102, abs=1) and peds[1] == pytest.approx(127, abs=1)
    assert [b[4] for b in out].count("car") == 1


def test_fast_clusters_equal_the_box_by_box_ones(crowd, monkeypatch):
    from assay.quality import _boxes_cluster as clusters
    from assay.quality._boxes_io import read_answers

    ans = read_answers(crowd[0])
    group = ans.box_item * len(ans.labels) + ans.box_label
    fast = clusters.assigned_clusters(ans.xyxy, group, ans.box_worker, 1 / 3)
    monkeypatch.setattr(clusters, "_clean_components", lambda xyxy, *a: np.full(len(xyxy), -1))
    slow = clusters.assigned_clusters(ans.xyxy, group, ans.box_worker, 1 / 3)
    n = len(set(fast.tolist()))
    assert n == len(set(slow.tolist())) == len(set(zip(fast.tolist(), slow.tolist(), strict=True)))
    assert n < len(fast)  # boxes did cluster


def test_vote_keeps_half_or_more():
    # 7 annotators: a box drawn by 3 is kept (7 // 2), one drawn by 2 is not
    rows = [_row("a", f"w{k}", *([(10, 10, 50, 90, PED)] if k < 3 else []) + ([(200, 10, 240, 90, PED)] if k >= 5 else []))
            for k in range(7)]
    out = aggregate_boxes(rows, method="vote")[0]
    assert [b[:4] for b in out["boxes"]] == [[10, 10, 50, 90]]
    assert out["boxes"][0][5] == pytest.approx(3 / 7)


def test_auto_learns_skills_only_from_enough_images():
    rows = [_row(f"i{i}", "w0", (1, 1, 5, 5, PED)) for i in range(30)]
    assert fit_boxes(rows).method == "vote"  # one annotator per image: nothing to compare
    rows += [_row(f"i{i}", "w1", (1, 1, 5, 5, PED)) for i in range(9)]
    assert fit_boxes(rows).method == "vote"  # 9 images with two annotators
    rows.append(_row("i9", "w1", (1, 1, 5, 5, PED)))
    assert fit_boxes(rows).method == "em"
    # one image, two annotators agree, a third draws elsewhere: the vote keeps the agreed box first
    tiny = [_row("a", "w1", (10, 10, 50, 90, PED)), _row("a", "w2", (11, 10, 51, 90, PED)),
            _row("a", "w3", (200, 10, 240, 90, PED))]
    first = aggregate_boxes(tiny)[0]["boxes"][0]
    assert first[0] == pytest.approx(10.5) and first[5] == pytest.approx(2 / 3)


def test_zero_area_clicks_are_left_out():
    rows = [_row("a", f"w{k}", (10, 10, 50, 90, PED), (60, 60, 60, 60, PED)) for k in range(3)]
    fit = fit_boxes(rows)
    assert len(fit.results[0]["boxes"]) == 1


@pytest.mark.parametrize("rows, message", [
    ([{"item": "a", "boxes": []}], "missing 'worker'"),
    ([{"worker": "w", "boxes": []}], "missing 'item'"),
    ([{"item": "a", "worker": "w"}], "missing 'boxes'"),
    (["not a dict"], "must be a dict"),
    ([_row("a", "w", (50, 10, 40, 20, PED))], "x2 >= x1"),
    ([_row("a", "w", (10, 30, 40, 20, PED))], "y2 >= y1"),
    ([_row("a", "w", ("10", 10, 40, 20, PED))], "must be a number"),
    ([_row("a", "w", (True, 10, 40, 20, PED))], "must be a number"),
    ([_row("a", "w", (float("nan"), 10, 40, 20, PED))], "finite"),
    ([_row("a", "w", (0, 10, float("inf"), 20, PED))], "finite"),
    ([_row("a", "w", (0, 10, 40))], "must be [x1, y1, x2, y2, label]"),
    ([_row("a", "w", (0, 10, 40, 20, ["x"]))], "label must be"),
    ([{"item": "a", "worker": "w", "boxes": "0 0 1 1"}], "must be a list"),
    ([{"item": ["a"], "worker": "w", "boxes": []}], "item must be"),
    ([_row("a", "w"), _row("a", "w")], "twice"),
])
def test_bad_rows(rows, message):
    with pytest.raises(ValueError, match="row") as exc:
        aggregate_boxes(rows)
    assert message in str(exc.value)
    assert isinstance(exc.value, InvalidInput)


def test_bad_method_and_items():
    with pytest.raises(ValueError, match="unknown box method"):
        aggregate_boxes([_row("a", "w")], method="mean")
    with pytest.raises(ValueError, match="missing from items"):
        aggregate_boxes([_row("a", "w")], items={"b": {"width": 1, "height": 1}})
    with pytest.raises(ValueError, match="width and height"):
        aggregate_boxes([_row("a", "w")], items={"a": {"width": 0, "height": 1}})


def test_label_may_be_left_out_and_numbers_may_be_numpy():
    rows = [_row("a", f"w{k}", (np.float32(10), 10, np.int64(50), 90)) for k in range(3)]
    (box,) = aggregate_boxes(rows)[0]["boxes"]
    assert box[4] is None and box[:4] == pytest.approx([10, 10, 50, 90])


def test_score_boxes_by_hand():
    truth = {"a": [[0, 0, 10, 10, PED], [100, 100, 110, 110, PED]], "b": []}
    pred = [{"item": "a", "boxes": [[0, 0, 10, 10, PED, 0.9], [50, 50, 60, 60, PED, 0.8]]},
            {"item": "b", "boxes": [[1, 1, 2, 2, PED, 0.7]]}]
    s = score_boxes(pred, truth)
    assert (s["matched"], s["predicted"], s["true"]) == (1, 3, 2)
    assert s["precision"] == pytest.approx(1 / 3) and s["recall"] == pytest.approx(0.5)
    assert s["f1"] == pytest.approx(2 / 5) and s["mean_iou"] == pytest.approx(1.0)
    # a box of another class does not match; IoU 0.47 misses at 0.5 and hits at 0.4
    assert score_boxes({"a": [[0, 0, 10, 10, "car"]]}, {"a": [[0, 0, 10, 10, PED]]})["matched"] == 0
    near = {"a": [[0, 0, 10, 10, PED]]}, {"a": [[0, 0, 10, 4.7, PED]]}
    assert score_boxes(*near)["matched"] == 0 and score_boxes(*near, iou=0.4)["matched"] == 1
    assert math.isnan(score_boxes({}, {"a": []})["precision"])


@pytest.mark.slow
def test_real_pedestrians_beat_the_vote_baseline():
    folder = SHARED_DATA / "boxes" / "pedestrians_a"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder}")
    rows, truth = read_jsonl(folder / "answers.jsonl"), read_jsonl(folder / "truth.jsonl")
    items = {r["item"]: r for r in read_jsonl(folder / "items.jsonl")}
    vote = score_boxes(aggregate_boxes(rows, items, method="vote"), truth)
    auto = score_boxes(aggregate_boxes(rows, items), truth)
    assert vote["f1"] == pytest.approx(0.929, abs=0.005)  # the documented baseline, reproduced
    assert auto["f1"] > vote["f1"] and auto["mean_iou"] > vote["mean_iou"], (auto, vote)
