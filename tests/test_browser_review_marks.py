"""Review of a boxes project in a real browser: the unsure items (low
agreement between the answers) show every annotator's boxes and the
consensus; a reviewer accepts the consensus of one item and edits it on
another in the box editor. The decisions are stored as reviews (final,
counting like gold). Headless Chromium against a live server, on SQLite and
PostgreSQL; the queue itself is checked through the workspace too."""

from __future__ import annotations

import pytest

from test_browser import Tab, browser, server, tabs  # noqa: F401 - fixtures
from test_browser_shapes import at, image_dataset
from assay import kinds
from assay.errors import InvalidInput
from factories import answer_item, item_ids

pytestmark = pytest.mark.browser

ANSWERS = {  # three annotators per image: two agree on a car, the third drew nothing (agreement 1/3)
    0: [[[60, 50, 160, 130, "car"]], [[62, 50, 160, 132, "car"]], []],
    1: [[[200, 100, 300, 200, "person"]], [[202, 100, 300, 198, "person"]], [[10, 10, 30, 30, "car"]]],
    2: [[[60, 50, 160, 130, "car"]], [[61, 50, 160, 130, "car"]], [[60, 51, 160, 130, "car"]]],  # all agree
}


def _setup(ws, tmp_path):
    ds = image_dataset(ws, tmp_path, 3)
    p = ws.create_project("review boxes", ds["id"], ["car", "person"], kind="boxes", overlap=3)
    ids = item_ids(ws, ds["id"])
    people = [ws.add_user(f"a{k}")[0] for k in range(3)]
    for u in people:
        ws.add_member(p["id"], u["id"])
    for i, answers in ANSWERS.items():
        for u, label in zip(people, answers):
            answer_item(ws, p["id"], ids[i], u, label)
    return p, ids


def test_queue_holds_the_items_that_agree_little(ws, tmp_path):
    p, ids = _setup(ws, tmp_path)
    rows, nxt = ws.mark_review_queue(p["id"])
    assert [r["item_id"] for r in rows] == [ids[0], ids[1]] and nxt is None  # the third: all agree
    first = rows[0]
    assert first["agreement"] == pytest.approx(1 / 3)
    assert first["consensus"] == kinds.get("boxes").majority(ANSWERS[0])[0]
    assert [a["username"] for a in first["answers"]] == ["a0", "a1", "a2"]
    ws.review(p["id"], ids[0], first["consensus"], ws.add_user("rev", "reviewer")[0])
    assert [r["item_id"] for r in ws.mark_review_queue(p["id"])[0]] == [ids[1]]  # decided: out of the queue
    single = ws.create_project("classes", p["dataset_id"], ["a", "b"])
    with pytest.raises(InvalidInput):
        ws.mark_review_queue(single["id"])


def test_reviewer_accepts_and_edits_the_consensus(ws, tabs, tmp_path):  # noqa: F811
    p, ids = _setup(ws, tmp_path)
    consensus = {i: kinds.get("boxes").majority(ANSWERS[k])[0] for k, i in enumerate(ids)}
    rev, token = ws.add_user("rev", "reviewer")
    ws.add_member(p["id"], rev["id"])
    tab = tabs()
    tab.login_link(token)
    tab.goto(f"/quality/{p['id']}")
    page = tab.page
    first = page.locator(f'#marks-review li[data-item-id="{ids[0]}"]')
    first.wait_for()
    assert page.locator("#marks-review li.review-item").count() == 2
    first.locator("rect").first.wait_for(state="attached")
    assert first.locator("rect").count() == 3  # the consensus and two annotators' boxes (the third drew none)
    first.locator("[data-accept]").click()
    page.wait_for_selector(f'#marks-review li[data-decided="consensus"][data-item-id="{ids[0]}"]')

    second = page.locator(f'#marks-review li[data-item-id="{ids[1]}"]')
    second.locator("[data-edit]").click()
    page.wait_for_selector(f'#marks-review li[data-item-id="{ids[1]}"] .shape-editor[data-ready="1"]')
    assert page.get_attribute(".shape-editor", "data-count") == str(len(consensus[ids[1]]))
    page.keyboard.press("Tab")  # select the consensus box, then class 1 makes it a car
    page.keyboard.press("1")
    box = consensus[ids[1]][0]
    page.locator(".shape-canvas").scroll_into_view_if_needed()
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    page.mouse.move(*at(page, cx, cy))  # and move it by (-100, -50)
    page.mouse.down()
    x0, y0 = at(page, cx, cy)
    x1, y1 = at(page, cx - 100, cy - 50)
    for k in range(1, 6):
        page.mouse.move(x0 + (x1 - x0) * k / 5, y0 + (y1 - y0) * k / 5)
    page.mouse.up()
    second.locator("[data-save]").click()
    page.wait_for_selector(f'#marks-review li[data-decided="edited"][data-item-id="{ids[1]}"]')

    gold = {g["item_id"]: g for g in ws.list_gold(p["id"])[0]}
    assert gold[ids[0]]["label"] == consensus[ids[0]] and gold[ids[0]]["source"] == "review"
    (edited,) = gold[ids[1]]["label"]
    want = [box[0] - 100, box[1] - 50, box[2] - 100, box[3] - 50]
    assert edited[4] == "car" and all(abs(a - b) <= 1.5 for a, b in zip(edited[:4], want)), edited
    assert gold[ids[1]]["source"] == "review" and gold[ids[1]]["created_by"] == rev["id"]
    assert ws.mark_review_queue(p["id"])[0] == []
    tab.assert_clean()


def test_reviewer_sees_every_annotators_spans_and_accepts_the_consensus(ws, tabs):  # noqa: F811
    from factories import text_dataset

    ds = text_dataset(ws, "ner review", ["Ada met Bob in Rome"])
    p = ws.create_project("ner review", ds["id"], ["PER", "LOC"], kind="spans", overlap=3)
    (iid,) = item_ids(ws, ds["id"])
    people = [ws.add_user(f"s{k}")[0] for k in range(3)]
    for u, label in zip(people, [[[0, 3, "PER"], [15, 19, "LOC"]], [[0, 3, "PER"]], [[8, 11, "PER"]]]):
        ws.add_member(p["id"], u["id"])
        answer_item(ws, p["id"], iid, u, label)
    (entry,), _ = ws.mark_review_queue(p["id"])
    assert entry["consensus"] == [[0, 3, "PER"]]  # held by two answers of three
    rev, token = ws.add_user("rev", "reviewer")
    ws.add_member(p["id"], rev["id"])
    tab = tabs()
    tab.login_link(token)
    tab.goto(f"/quality/{p['id']}")
    li = tab.page.locator(f'#marks-review li[data-item-id="{iid}"]')
    li.wait_for()
    lines = li.locator(".review-spans p")
    assert [lines.nth(k).get_attribute("data-who") for k in range(4)] == ["consensus", "s0", "s1", "s2"]
    assert lines.nth(3).locator("mark").inner_text() == "Bob"
    li.locator("[data-accept]").click()
    tab.page.wait_for_selector(f'#marks-review li[data-decided="consensus"][data-item-id="{iid}"]')
    (g,) = ws.list_gold(p["id"])[0]
    assert (g["item_id"], g["label"], g["source"]) == (iid, [[0, 3, "PER"]], "review")
    tab.assert_clean()
