"""Export limited to a slice or a tag: chosen in SQL (an explicit slice joins
``slice_items``), so an export of a small slice of a big project reads only
its rows; a query slice is still evaluated once and filtered."""

from __future__ import annotations

import json
import tracemalloc

import pandas as pd

from assay.formats import export as _export
from factories import item_ids, project_with_annotators


def _peak(fn) -> tuple[int, object]:
    tracemalloc.start()
    try:
        out = fn()
        return tracemalloc.get_traced_memory()[1], out
    finally:
        tracemalloc.stop()


def test_export_slice_is_exactly_its_items_across_pages(ws, tmp_path, monkeypatch):
    p, people = project_with_annotators(ws, 40, 1, overlap=1)
    ids = item_ids(ws, p["dataset_id"])
    for i in ids[:10]:
        t = ws.next_task(p["id"], people[0])
        ws.submit(t["id"], people[0], "pos")
    want = [ids[0], ids[7], ids[8], ids[21], ids[39]]
    s = ws.create_slice(p["dataset_id"], "spread", items=want)
    # pages of 3 tasks: the slice's items come from several pages, each exactly once, with their answers
    got = list(_export.iter_records(ws.db, p, page=3, slice_id=s["id"]))
    assert [r["item_id"] for r in got] == want
    full = {r["item_id"]: r for r in _export.iter_records(ws.db, p)}
    assert got == [full[i] for i in want]
    # the explicit slice is not evaluated in Python on the way
    monkeypatch.setattr(type(ws), "slice_items", lambda *a, **k: (_ for _ in ()).throw(AssertionError("python")))
    out = ws.export(p["id"], tmp_path / "s.jsonl", slice="spread")
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert out["items"] == 5 and [r["item_id"] for r in rows] == want
    monkeypatch.undo()
    # a query slice still works (evaluated once, filtered)
    ws.import_dataframe(p["dataset_id"], pd.DataFrame({"text": ["late"], "grp": ["x"]}))
    ws.create_slice(p["dataset_id"], "grp-x", query={"meta": {"grp": "x"}})
    assert ws.slice_items(p["dataset_id"], "grp-x") == [max(item_ids(ws, p["dataset_id"]))]
    ws.create_project("p2", p["dataset_id"], ["pos", "neg"])
    out = ws.export("p2", tmp_path / "q.jsonl", slice="grp-x")
    assert out["items"] == 1


def test_export_of_a_small_slice_holds_one_small_page(ws):
    """Memory of a 3-item slice's export over 3000 tasks: a fraction of the
    whole export's (filtering in Python reads the same 2000-row pages)."""
    p, _ = project_with_annotators(ws, 3000, 0, overlap=1)
    ids = item_ids(ws, p["dataset_id"])
    s = ws.create_slice(p["dataset_id"], "three", items=[ids[5], ids[1500], ids[2999]])
    list(_export.iter_records(ws.db, p, slice_id=s["id"]))  # warm caches (statements, resolver)
    whole, n_all = _peak(lambda: sum(1 for _ in _export.iter_records(ws.db, p)))
    part, got = _peak(lambda: [r["item_id"] for r in _export.iter_records(ws.db, p, slice_id=s["id"])])
    assert n_all == 3000 and got == [ids[5], ids[1500], ids[2999]]
    assert part * 5 < whole, (part, whole)
