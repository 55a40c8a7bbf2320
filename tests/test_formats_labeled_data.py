"""The label formats whose texts are data (issue 16 part 2): a CoNLL file
without item ids and a Label Studio export of text tasks, dropped on the
data page's upload route, become items; the same file on the project page's
gold route then labels exactly those items. Image tasks and malformed files
are refused by name and store nothing. Over HTTP, both databases."""

from __future__ import annotations

import json

import httpx

from _server import LiveServer
from factories import snapshot

CONLL = ("John\tB-PER\nSmith\tI-PER\nlives\tO\nin\tO\nParis\tB-LOC\n.\tO\n\n"
         "Acme\tB-ORG\nhired\tO\nAnn\tB-PER\n\n")
LS = [{"id": 11, "data": {"text": "good film", "lang": "en"},
       "annotations": [{"id": 1, "was_cancelled": False, "result": [
           {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["pos"]}}]}]},
      {"id": 12, "data": {"text": "dull film", "lang": "en"},
       "annotations": [{"id": 2, "was_cancelled": False, "result": [
           {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["neg"]}}]}]},
      {"id": 13, "data": {"text": "not labeled yet", "lang": "de"}, "annotations": []}]


def _items(ws, dataset_id) -> dict[str, tuple[int, dict]]:
    return {it["text"]: (it["id"], it.get("meta") or {}) for it in ws.list_items(dataset_id, limit=100)[0]}


def test_conll_and_labelstudio_files_are_data_then_gold(ws, tmp_path):
    _, token = ws.add_user("boss", role="admin")
    h = {"Authorization": f"Bearer {token}"}
    ner, films = ws.create_dataset("ner"), ws.create_dataset("films")
    with LiveServer(ws) as srv, httpx.Client(base_url=srv.base, headers=h, timeout=30) as c:
        def upload(ds, name, body):
            return c.post(f"/api/datasets/{ds['id']}/import", files={"file": (name, body)})

        # refused by name, nothing stored
        before = snapshot(ws)
        bad = upload(ner, "bad.conll", "John\tB-PER\nlives\tX-Y\n")
        assert bad.status_code == 400 and "CoNLL line 2" in bad.json()["error"]["message"]
        images = [{"id": 1, "data": {"image": "/data/upload/1/a.jpg"}, "annotations": []}]
        bad = upload(films, "images.json", json.dumps(images))
        assert bad.status_code == 400 and "image task" in bad.json()["error"]["message"]
        bad = upload(films, "broken.json", "[{")
        assert bad.status_code == 400 and "broken.json" in bad.json()["error"]["message"]
        assert snapshot(ws) == before

        r = upload(ner, "crowd.conll", CONLL)
        assert r.status_code == 200 and r.json()["added"] == 2, r.text
        got = _items(ws, ner["id"])
        assert set(got) == {"John Smith lives in Paris .", "Acme hired Ann"}
        r = upload(films, "ls.json", json.dumps(LS))
        assert r.status_code == 200 and r.json()["added"] == 3, r.text
        films_items = _items(ws, films["id"])
        assert films_items["good film"][1] == {"lang": "en", "ls_task_id": 11}

        spans = ws.create_project("ner", ner["id"], ["PER", "LOC", "ORG"], kind="spans")
        r = c.post(f"/api/projects/{spans['id']}/gold/file", files={"file": ("crowd.conll", CONLL)})
        assert r.status_code == 201 and r.json()["added"] == 2, r.text
        single = ws.create_project("films", films["id"], ["pos", "neg"])
        r = c.post(f"/api/projects/{single['id']}/gold/file", files={"file": ("ls.json", json.dumps(LS))})
        assert r.status_code == 201 and r.json()["added"] == 2, r.text

    gold = {g["item_id"]: g["label"] for g in ws.list_gold(spans["id"])[0]}
    john, acme = got["John Smith lives in Paris ."][0], got["Acme hired Ann"][0]
    text = "John Smith lives in Paris ."
    assert gold[john] == [[0, 10, "PER"], [20, 25, "LOC"]] and text[0:10] == "John Smith" and text[20:25] == "Paris"
    assert gold[acme] == [[0, 4, "ORG"], [11, 14, "PER"]]
    films_gold = {g["item_id"]: g["label"] for g in ws.list_gold(single["id"])[0]}
    assert films_gold == {films_items["good film"][0]: "pos", films_items["dull film"][0]: "neg"}


def test_a_conll_gold_file_naming_no_item_and_no_text_stores_nothing(ws, tmp_path):
    ds = ws.create_dataset("ner")
    (tmp_path / "a.conll").write_text(CONLL, encoding="utf-8")
    ws.import_file(ds["id"], tmp_path / "a.conll")
    p = ws.create_project("ner", ds["id"], ["PER", "LOC", "ORG"], kind="spans")
    (tmp_path / "b.conll").write_text(CONLL + "Nobody\tB-PER\n", encoding="utf-8")
    before = snapshot(ws)
    import pytest

    from assay.errors import InvalidInput

    with pytest.raises(InvalidInput, match="no text item of the dataset reads 'Nobody'"):
        ws.import_gold_file(p["id"], tmp_path / "b.conll")
    assert snapshot(ws) == before
