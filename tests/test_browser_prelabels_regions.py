"""Real-browser tests of pre-labels in the box and span editors: the model's
prediction (stored by a registered Python model through the same run as an
HTTP backend's) is drawn as the starting answer, marked as suggested; taken
unchanged or edited, the stored answer says whether it accepted the
suggestion (the kind's equality). Headless Chromium against a live server,
on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from test_browser import Tab, browser, server, tabs  # noqa: F401 - fixtures
from test_browser import answers_of, wait_settled
from test_browser_shapes import drag, image_dataset
from test_browser import open_label_page as open_shapes
from test_browser_shapes import shown as shown_image
from test_browser_spans import marked
from test_browser_spans import shown as shown_text
from assay.learn import ml_backend as backends
from factories import in_id_order, text_dataset

pytestmark = pytest.mark.browser

BOX = [60.0, 50.0, 160.0, 130.0, "car"]


def _predict_with(ws, p, name, label):
    backends.register_model(name, lambda items: [{"label": label, "score": 0.75} for _ in items])
    try:
        ws.connect_backend(p["id"], f"python:{name}")
        assert ws.backend_predict(p["id"])["stored"] > 0
    finally:
        backends.unregister_model(name)


def _stored(ws, p, user) -> dict[int, dict]:
    return {a["item_id"]: a for a in answers_of(ws, p["id"], user["id"])}


def test_pre_drawn_box_accepted_and_moved(ws, tabs, tmp_path):  # noqa: F811
    ds = image_dataset(ws, tmp_path, 2)
    p = ws.create_project("pre boxes", ds["id"], ["car", "person"], kind="boxes")
    in_id_order(ws, p["id"])
    _predict_with(ws, p, "boxes_pre", [BOX])
    tab, user = open_shapes(ws, tabs, p)
    page = tab.page
    first = shown_image(page)
    assert page.get_attribute("#item-editor .shape-editor", "data-count") == "1"  # pre-drawn
    assert page.get_attribute("#item-editor .shape-editor", "data-suggested") == "1"
    assert page.locator(".shape-suggested").is_visible() and page.locator("#suggestion").is_visible()
    assert "1 pre-drawn mark" in page.locator("#suggestion").inner_text()
    page.keyboard.press("Enter")  # taken as it is
    second = shown_image(page, first["task_id"])
    drag(page, (110, 90), (310, 240))  # the box moved by (200, 150): another answer
    page.keyboard.press("Enter")
    page.wait_for_selector("#done:not([hidden])")
    wait_settled(page, 2)
    got = _stored(ws, p, user)
    a, b = got[first["item_id"]], got[second["item_id"]]
    assert a["label"] == [BOX] and a["suggestion"] == [BOX] and a["suggestion_accepted"] is True
    (moved,) = b["label"]
    assert all(abs(x - y) <= 1.5 for x, y in zip(moved[:4], [260, 200, 360, 280])), moved
    assert b["suggestion"] == [BOX] and b["suggestion_accepted"] is False
    tab.assert_clean()


def test_pre_marked_span_accepted_and_reclassed(ws, tabs):  # noqa: F811
    ds = text_dataset(ws, "pre ner", ["Ada met Bob", "Ann saw Rome"])
    p = ws.create_project("pre spans", ds["id"], ["PER", "LOC"], kind="spans")
    in_id_order(ws, p["id"])
    _predict_with(ws, p, "spans_pre", [[0, 3, "PER"]])
    user, token = ws.add_user("alice")
    ws.add_member(p["id"], user["id"])
    tab = tabs()
    tab.login_link(token)
    tab.goto(f"/label/{p['id']}")
    page = tab.page
    first = shown_text(page)
    assert marked(page) == [[0, 3, "PER"]]
    assert page.get_attribute("#item-editor", "data-suggested") == "1"
    assert page.locator(".spans-suggested").is_visible()
    page.keyboard.press("a")  # accept the suggestion
    second = shown_text(page, first["task_id"])
    assert marked(page) == [[0, 3, "PER"]]
    page.locator("#item-editor .span-tag").click()  # select the span, then class 2 re-classes it
    page.keyboard.press("2")
    assert marked(page) == [[0, 3, "LOC"]]
    page.keyboard.press("Enter")
    page.wait_for_selector("#done:not([hidden])")
    wait_settled(page, 2)
    got = _stored(ws, p, user)
    a, b = got[first["item_id"]], got[second["item_id"]]
    assert a["label"] == [[0, 3, "PER"]] and a["suggestion_accepted"] is True
    assert b["label"] == [[0, 3, "LOC"]] and b["suggestion"] == [[0, 3, "PER"]] and b["suggestion_accepted"] is False
    tab.assert_clean()
