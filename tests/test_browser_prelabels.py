"""Real-browser test of pre-labels on the labeling page: the model's
suggestion and its confidence show, ``a`` accepts it, and the database
records whether each answer took it. Headless Chromium against a live
server, on SQLite and PostgreSQL. Screenshot: ``test-artifacts/prelabels.png``."""

from __future__ import annotations

import pytest
from sqlalchemy import JSON, text

from test_browser import ARTIFACTS, Tab, browser, server, tabs  # noqa: F401 - fixtures
from test_browser import wait_item, wait_ready, wait_settled
from factories import in_id_order, item_ids, predict, project_with_annotators

pytestmark = pytest.mark.browser


def stored(ws, project_id: int) -> dict[int, tuple]:
    """item id -> (label, suggestion, suggestion_accepted) of the project's answers."""
    with ws.db.read() as conn:
        return {r.item_id: (r.label, r.suggestion, r.suggestion_accepted) for r in conn.execute(text(
            "SELECT item_id, label, suggestion, suggestion_accepted FROM answers WHERE project_id = :p")
            .columns(label=JSON, suggestion=JSON), {"p": project_id})}


def suggestion_shown(page) -> dict:
    return page.evaluate("""() => {
        const box = document.getElementById('suggestion');
        return {visible: !box.hidden && box.offsetParent !== null,
                label: document.getElementById('suggestion-label').textContent,
                confidence: document.getElementById('suggestion-confidence').textContent,
                marked: [...document.querySelectorAll('#classes .class-btn.is-suggested')]
                        .map(b => b.dataset.class)};
    }""")


def test_suggestion_shows_and_a_accepts_it(ws, tabs):  # noqa: F811
    p, (ann,) = project_with_annotators(ws, 5, 1, classes=("positive", "negative", "neutral"))
    ids = item_ids(ws, p["dataset_id"])
    in_id_order(ws, p["id"])  # the test walks the items in order
    preds = {ids[0]: ("negative", 0.87), ids[1]: ("positive", 0.64), ids[2]: ("neutral", 0.996),
             ids[4]: ("positive", 0.9)}
    predict(ws, p["id"], preds, version=3)
    tab = tabs()
    tab.login_link(ws.create_token(ann["id"]))
    tab.goto(f"/label/{p['id']}")
    page = tab.page
    wait_ready(page)
    keys = {"positive": "1", "negative": "2", "neutral": "3"}

    cur = wait_item(page)
    assert cur["item_id"] == ids[0]
    shown = suggestion_shown(page)
    assert shown == {"visible": True, "label": "negative", "confidence": "87%", "marked": ["negative"]}
    assert "a" in page.locator("#suggestion").inner_text().lower()  # the hint names the key
    assert page.locator("#accept").is_enabled()
    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if ws.db.dialect == "sqlite" else f"-{ws.db.dialect}"
    page.screenshot(path=str(ARTIFACTS / f"prelabels{suffix}.png"))

    page.keyboard.press("a")                           # item 0: accepted with one key
    cur = wait_item(page, other_than=cur["task_id"])
    assert cur["item_id"] == ids[1]
    assert suggestion_shown(page)["label"] == "positive" and suggestion_shown(page)["confidence"] == "64%"
    page.keyboard.press(keys["neutral"])               # item 1: overridden
    cur = wait_item(page, other_than=cur["task_id"])
    assert cur["item_id"] == ids[2]
    assert suggestion_shown(page)["confidence"] == "99%"  # never rounds up to a certain 100%
    page.keyboard.press(keys["neutral"])               # item 2: the same class, clicked by hand
    cur = wait_item(page, other_than=cur["task_id"])
    assert cur["item_id"] == ids[3]
    shown = suggestion_shown(page)                     # item 3: no prediction, nothing shown
    assert not shown["visible"] and shown["marked"] == []
    assert page.locator("#accept").is_disabled()
    page.keyboard.press("a")                           # nothing to accept: no answer
    page.wait_for_function("() => document.getElementById('status').textContent === 'no suggestion for this item'")
    assert page.locator("#item").get_attribute("data-task-id") == cur["task_id"]
    page.keyboard.press(keys["positive"])
    cur = wait_item(page, other_than=cur["task_id"])
    assert cur["item_id"] == ids[4]
    page.click("#accept")                              # the button accepts too
    page.wait_for_selector("#done:not([hidden])")
    wait_settled(page, 5)

    assert stored(ws, p["id"]) == {
        ids[0]: ("negative", "negative", True),
        ids[1]: ("neutral", "positive", False),
        ids[2]: ("neutral", "neutral", True),
        ids[3]: ("positive", None, None),
        ids[4]: ("positive", "positive", True),
    }
    s = ws.suggestion_stats(p["id"])
    assert (s["answers_with_suggestion"], s["accepted"]) == (4, 3)
    tab.assert_clean()


def test_multi_label_a_preselects_the_suggestion(ws, tabs):  # noqa: F811
    p, (ann,) = project_with_annotators(ws, 2, 1, classes=("cat", "dog", "bird"), kind="multi")
    ids = item_ids(ws, p["dataset_id"])
    in_id_order(ws, p["id"])
    predict(ws, p["id"], {ids[0]: (["cat", "bird"], 0.7), ids[1]: (["dog"], 0.55)})
    tab = tabs()
    tab.login_link(ws.create_token(ann["id"]))
    tab.goto(f"/label/{p['id']}")
    page = tab.page
    wait_ready(page)
    cur = wait_item(page)
    shown = suggestion_shown(page)
    assert shown["visible"] and shown["label"] == "cat, bird" and shown["confidence"] == "70%"
    assert shown["marked"] == ["cat", "bird"]
    assert page.locator("#classes .class-btn.is-selected").count() == 0  # shown, not chosen for you
    page.keyboard.press("a")
    page.wait_for_function("() => document.querySelectorAll('#classes .class-btn.is-selected').length === 2")
    page.keyboard.press("Enter")                       # item 0: the suggested set
    cur = wait_item(page, other_than=cur["task_id"])
    page.keyboard.press("a")                           # item 1: take "dog", then add "cat"
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_selector("#done:not([hidden])")
    wait_settled(page, 2)
    assert stored(ws, p["id"]) == {
        ids[0]: (["cat", "bird"], ["cat", "bird"], True),
        ids[1]: (["cat", "dog"], ["dog"], False),
    }
    tab.assert_clean()
