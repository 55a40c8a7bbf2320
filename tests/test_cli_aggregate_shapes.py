"""``assay aggregate ANSWERS.jsonl``: long JSON lines of spans or boxes in,
one JSON row per item out (a stable interface scripts call); bad files are
one line on stderr, exit code 1, and no output file."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from assay.cli import app
from conftest import SHARED_DATA

SPANS = [
    {"item": "s1", "worker": "a", "spans": [[0, 4, "PER"]]},
    {"item": "s1", "worker": "b", "spans": [[0, 4, "PER"]]},
    {"item": "s1", "worker": "c", "spans": []},
    {"item": "s2", "worker": "a", "spans": [[6, 11, "LOC"]]},
    {"item": "s2", "worker": "b", "spans": [[6, 11, "LOC"]]},
    {"item": "s2", "worker": "c", "spans": [[6, 11, "LOC"]]},
]
TEXTS = [{"item": "s1", "text": "John went home"}, {"item": "s2", "text": "I saw Paris today"}]
BOXES = [
    {"item": "i1", "worker": w, "boxes": [[10 + d, 20, 50 + d, 90, "pedestrian"]]} for w, d in zip("abc", (0, 1, -1))
] + [{"item": "i2", "worker": w, "boxes": []} for w in "abc"]


@pytest.fixture
def runner():
    return CliRunner()


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_spans_in_one_row_per_item_out(runner, tmp_path):
    src, items = _jsonl(tmp_path / "a.jsonl", SPANS), _jsonl(tmp_path / "items.jsonl", TEXTS)
    out = tmp_path / "out.jsonl"
    r = runner.invoke(app, ["aggregate", str(src), "--items", str(items), "--out", str(out)])
    assert r.exit_code == 0, r.output
    rows = {row["item"]: row for row in _read(out)}
    assert set(rows) == {"s1", "s2"}
    assert [s[:3] for s in rows["s2"]["spans"]] == [[6, 11, "LOC"]]
    assert [s[:3] for s in rows["s1"]["spans"]] == [[0, 4, "PER"]]
    for row in rows.values():
        assert 0.0 <= row["confidence"] <= 1.0
        assert all(0.0 <= s[3] <= 1.0 for s in row["spans"])
    # unanimous s2 is surer than s1, where one of three marked nothing
    assert rows["s2"]["spans"][0][3] > rows["s1"]["spans"][0][3]


def test_boxes_in_one_row_per_item_out_to_stdout(runner, tmp_path):
    src = _jsonl(tmp_path / "b.jsonl", BOXES)
    r = runner.invoke(app, ["aggregate", str(src)])
    assert r.exit_code == 0, r.output
    rows = {row["item"]: row for row in (json.loads(x) for x in r.stdout.splitlines())}
    assert rows["i2"]["boxes"] == []
    (box,) = rows["i1"]["boxes"]
    assert box[4] == "pedestrian" and 0.0 <= box[5] <= 1.0
    assert box[0] == pytest.approx(10, abs=1.5) and box[2] == pytest.approx(50, abs=1.5)


@pytest.mark.parametrize("lines, message", [
    (['{"item": 1, "worker": "a", "spans": []}', "not json"], "line 2: not valid JSON"),
    (['{"item": 1, "spans": []}'], "has no 'worker'"),
    (['{"item": 1, "worker": "a", "spans": []}', '{"item": 2, "worker": "a", "boxes": []}'], "mix spans and boxes"),
    (['[1, 2]'], "must be a JSON object"),
    (['{"item": 1, "worker": "a", "label": "x"}'], "must hold one of spans or boxes"),
])
def test_bad_answers_are_one_clear_line_and_no_output(runner, tmp_path, lines, message):
    src = tmp_path / "bad.jsonl"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    r = runner.invoke(app, ["aggregate", str(src), "--out", str(out)])
    assert r.exit_code == 1
    assert message in r.output, r.output
    assert not out.exists() and not list(tmp_path.glob(".out.jsonl.*"))


def test_bad_marks_are_refused_and_leave_the_old_output_alone(runner, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")
    for rows in ([{"item": 1, "worker": "a", "boxes": [[50, 20, 10, 90, "p"]]}],
                 [{"item": 1, "worker": "a", "spans": [[4, 2, "PER"]]}]):
        r = runner.invoke(app, ["aggregate", str(_jsonl(tmp_path / "bad.jsonl", rows)), "--out", str(out)])
        assert r.exit_code == 1 and r.output.startswith("error:"), r.output
    assert out.read_text() == "previous\n"


def test_kind_must_be_spans_or_boxes(runner, tmp_path):
    r = runner.invoke(app, ["aggregate", str(_jsonl(tmp_path / "a.jsonl", SPANS)), "--kind", "polygons"])
    assert r.exit_code == 1 and "--kind must be one of spans, boxes" in r.output


@pytest.mark.slow  # the real sets: a few seconds each
@pytest.mark.parametrize("kind, folder", [("spans", "conll_crowd_val"), ("boxes", "pedestrians_a")])
def test_the_shared_sets_through_the_cli(runner, tmp_path, kind, folder):
    base = SHARED_DATA / kind / folder
    if not base.exists():
        pytest.skip(f"no shared data at {base}")
    out = tmp_path / "out.jsonl"
    r = runner.invoke(app, ["aggregate", str(base / "answers.jsonl"), "--items", str(base / "items.jsonl"),
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    rows = _read(out)
    n_items = len({json.loads(x)["item"] for x in (base / "answers.jsonl").read_text().splitlines()})
    assert len(rows) == n_items and all(kind in row and "confidence" in row for row in rows)
