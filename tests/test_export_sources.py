"""Exports filtered by where each final label comes from (issue 16 part 7:
"choose format, slice and label sources"): gold, review, consensus, auto,
majority (:data:`assay.engine.resolver.SOURCES`, the final label's owner).
In Python, over HTTP and from the CLI; a bad source or a format that cannot
filter is refused by name and writes no file. Both databases."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest

from _server import LiveServer
from assay.errors import InvalidInput
from factories import answer_item, item_ids, project_with_annotators, run_cli


def _mixed(ws):
    """Five items: gold, reviewed, two answered (majority vote), one untouched."""
    p, (a, b) = project_with_annotators(ws, 5, 2, overlap=2)
    ids = item_ids(ws, p["dataset_id"])
    ws.import_gold(p["id"], [{"item_id": ids[0], "label": "pos"}])
    for item, labels in ((ids[1], ("pos", "neg")), (ids[2], ("neg", "neg")), (ids[3], ("pos", "pos"))):
        answer_item(ws, p["id"], item, a, labels[0])
        answer_item(ws, p["id"], item, b, labels[1])
    _, admin = ws.add_user("boss", "admin")
    ws.review(p["id"], ids[1], "neg", "boss")
    return p, ids, admin


def test_export_keeps_only_the_chosen_label_sources(ws, tmp_path):
    p, ids, _ = _mixed(ws)
    every = {r["item_id"]: r["label_source"] for r in ws.export_records(p["id"])}
    assert every[ids[0]] == "gold" and every[ids[1]] == "review" and every[ids[4]] is None
    people = {r["item_id"] for r in ws.export_records(p["id"], sources=["gold", "review"])}
    assert people == {ids[0], ids[1]}
    crowd = {r["item_id"]: r["label"] for r in ws.export_records(p["id"], sources="majority,consensus")}
    assert crowd == {ids[2]: "neg", ids[3]: "pos"}  # the family of "consensus:<method>" counts as consensus
    out = ws.export(p["id"], tmp_path / "people.jsonl", sources=["gold", "review"])
    assert out["items"] == 2
    for bad, msg in (("gold,teacher", "unknown label source 'teacher'"), ([], "unknown label source")):
        with pytest.raises(InvalidInput, match=msg):
            ws.export(p["id"], tmp_path / "bad.jsonl", sources=bad)
    with pytest.raises(InvalidInput, match="label sources limits jsonl, csv and parquet"):
        ws.export(p["id"], tmp_path / "ls.json", "labelstudio", sources=["gold"])
    assert not (tmp_path / "bad.jsonl").exists() and not (tmp_path / "ls.json").exists()


def test_export_sources_over_http_and_the_cli(ws, tmp_path, home):
    p, ids, admin = _mixed(ws)
    with LiveServer(ws) as srv:
        url = f"{srv.base}/api/projects/{p['id']}/export"
        h = {"Authorization": f"Bearer {admin}"}
        r = httpx.get(url, params={"format": "csv", "sources": "review"}, headers=h)
        assert r.status_code == 200, r.text
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [(int(x["item_id"]), x["label"], x["label_source"]) for x in rows] == [(ids[1], "neg", "review")]
        r = httpx.get(url, params={"format": "jsonl", "sources": "nope"}, headers=h)
        assert r.status_code == 400 and "gold, review, consensus, auto, majority" in r.json()["error"]["message"]
    r = run_cli("export", p["name"], str(tmp_path / "g.jsonl"), "--source", "gold")
    assert r.exit_code == 0 and "wrote 1 items" in r.output, r.output
    assert [json.loads(x)["item_id"] for x in (tmp_path / "g.jsonl").read_text().splitlines()] == [ids[0]]
