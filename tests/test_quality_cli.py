"""``assay aggregate``: CSV answers in, ``item,label,confidence`` out; bad
files are one line on stderr and exit code 1."""

from __future__ import annotations

import csv

import pytest
from typer.testing import CliRunner

from assay.cli import app

ANSWERS = "item,worker,label\nq1,ann,cat\nq1,bob,cat\nq1,cy,dog\nq2,ann,dog\nq2,bob,dog\nq3,cy,cat\n"


@pytest.fixture
def runner():
    return CliRunner()


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def _rows(text):
    return list(csv.DictReader(text.splitlines()))


def test_aggregate_to_stdout(runner, tmp_path):
    src = _write(tmp_path / "answers.csv", ANSWERS)
    r = runner.invoke(app, ["aggregate", str(src), "--method", "mv"])
    assert r.exit_code == 0, r.output
    rows = _rows(r.stdout)
    assert [(x["item"], x["label"]) for x in rows] == [("q1", "cat"), ("q2", "dog"), ("q3", "cat")]
    assert float(rows[0]["confidence"]) == pytest.approx(2 / 3, abs=1e-6)


@pytest.mark.parametrize("method", ["auto", "mv", "wawa", "ds", "one-coin", "glad", "mace", "bwa"])
def test_aggregate_every_method_to_file(runner, tmp_path, method):
    src = _write(tmp_path / "answers.csv", ANSWERS)
    out = tmp_path / "labels.csv"
    r = runner.invoke(app, ["aggregate", str(src), "--method", method, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "wrote 3 items" in r.stdout
    rows = _rows(out.read_text())
    assert [x["item"] for x in rows] == ["q1", "q2", "q3"]
    assert all(0 < float(x["confidence"]) <= 1 for x in rows)


def test_aggregate_with_gold(runner, tmp_path):
    src = _write(tmp_path / "answers.csv", ANSWERS)
    gold = _write(tmp_path / "gold.csv", "item,label\nq2,cat\nnot-answered,dog\n")
    r = runner.invoke(app, ["aggregate", str(src), "--gold", str(gold)])
    assert r.exit_code == 0, r.output
    rows = {x["item"]: x for x in _rows(r.stdout)}
    assert rows["q2"]["label"] == "cat" and float(rows["q2"]["confidence"]) == 1.0
    assert set(rows) == {"q1", "q2", "q3"}


@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    ("item,worker,label\n", "no rows"),
    ("item,annotator,label\nq1,a,x\n", "lacks column(s) worker"),
    ("item,worker,label\nq1,a,\n", "empty value (first on line 2)"),
])
def test_bad_answer_files_fail_in_one_line(runner, tmp_path, content, message):
    src = _write(tmp_path / "answers.csv", content)
    r = runner.invoke(app, ["aggregate", str(src)])
    assert r.exit_code == 1
    assert message in r.stderr and r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")


def test_bad_method_gold_and_missing_file(runner, tmp_path):
    src = _write(tmp_path / "answers.csv", ANSWERS)
    r = runner.invoke(app, ["aggregate", str(src), "--method", "best"])
    assert r.exit_code == 1 and "unknown method 'best'" in r.stderr
    gold = _write(tmp_path / "gold.csv", "item,label\nq1,cat\nq1,dog\n")
    r = runner.invoke(app, ["aggregate", str(src), "--gold", str(gold)])
    assert r.exit_code == 1 and "more than one label" in r.stderr
    r = runner.invoke(app, ["aggregate", str(tmp_path / "nope.csv")])
    assert r.exit_code == 1 and "not found" in r.stderr
