"""``assay simulate`` on span and box answers (issue 14 part 5): the real
crowd's answers replayed under the adaptive and fixed policies, the share
of answers used and the F1 against the experts beside that of every answer;
bad files and options are one clear line and exit code 1."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from assay.cli import app


@pytest.fixture
def runner():
    return CliRunner()


def _sim(runner, *args):
    r = runner.invoke(app, ["simulate", *map(str, args)])
    return r, (json.loads(r.stdout.strip().splitlines()[-1]) if r.exit_code == 0 else None)


def test_boxes_adaptive_uses_fewer_answers_than_fixed_all_and_keeps_f1(runner, shared_data):
    d = shared_data / "boxes" / "pedestrians_a"
    common = ["--answers", d / "answers.jsonl", "--truth", d / "truth.jsonl", "--items", d / "items.jsonl"]
    r, ada = _sim(runner, *common)
    assert r.exit_code == 0, r.output
    r, full = _sim(runner, *common, "--policy", "fixed")
    assert r.exit_code == 0, r.output
    r, two = _sim(runner, *common, "--policy", "fixed", "--overlap", "2")
    assert r.exit_code == 0, r.output
    assert ada["kind"] == "boxes" and ada["items"] == 724 and ada["answers_all"] == full["answers_used"]
    # every answer, in another order: the same merged boxes up to the fit's order effects
    assert full["share"] == 1.0 and full["f1_vs_all_answers_consensus"] >= 0.99
    # the bar on this set: at most half the answers, within 0.01 F1 of every answer's consensus
    assert ada["share"] <= 0.5 and ada["f1_vs_truth"] >= full["f1_vs_truth"] - 0.01
    # an even budget of two per image is worse than asking where unsure
    assert two["share"] < ada["share"] and two["f1_vs_truth"] < ada["f1_vs_truth"]


def test_spans_replay_on_a_small_file(runner, tmp_path):
    rows = [{"item": f"s{i}", "worker": w, "spans": [[0, 4, "PER"]] if w != "c" or i % 2 else []}
            for i in range(6) for w in "abcd"]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps({"item": f"s{i}", "spans": [[0, 4, "PER"]]})
                                                for i in range(6)))
    (tmp_path / "i.jsonl").write_text("\n".join(json.dumps({"item": f"s{i}", "text": "John went home"})
                                                for i in range(6)))
    r, out = _sim(runner, "--answers", tmp_path / "a.jsonl", "--truth", tmp_path / "t.jsonl",
                  "--items", tmp_path / "i.jsonl", "--method", "mv")
    assert r.exit_code == 0, r.output
    assert out["kind"] == "spans" and out["answers_all"] == 24 and 12 <= out["answers_used"] < 24
    assert out["f1_vs_truth"] == 1.0


@pytest.mark.parametrize("args, message", [
    (["--policy", "routed"], "adaptive or fixed"),
    (["--policy", "fixed", "--target", "0.9"], "--target is for the adaptive policy"),
    (["--overlap", "1"], "start must be an integer >= 2"),
    (["--kind", "polygons"], "--kind must be one of"),
])
def test_bad_options_are_one_clear_line(runner, tmp_path, args, message):
    (tmp_path / "a.jsonl").write_text(json.dumps({"item": "i", "worker": "w", "boxes": []}))
    r = runner.invoke(app, ["simulate", "--answers", str(tmp_path / "a.jsonl"), *args])
    assert r.exit_code != 0 and message in r.output, r.output


def test_a_bad_truth_file_is_named(runner, tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps({"item": "i", "worker": "w", "boxes": []}))
    (tmp_path / "t.jsonl").write_text(json.dumps({"item": "i", "spans": []}))
    r = runner.invoke(app, ["simulate", "--answers", str(tmp_path / "a.jsonl"), "--truth", str(tmp_path / "t.jsonl")])
    assert r.exit_code == 1 and "t.jsonl, line 1" in r.output, r.output
