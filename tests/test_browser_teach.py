"""Real-browser test of teaching by nuance: on the labeling page a teaching
item is flagged "Practice", cannot be skipped, and its answer brings the
teaching card at once (right or wrong, the right label, the explanation, the
reference items) until Continue; the quality page shows who is taught what
with the skill before and after. Headless Chromium against a live server, on
SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from test_browser import Tab, browser, server, tabs  # noqa: F401 - fixtures
from test_browser import wait_item, wait_ready
from factories import item_ids, text_dataset

pytestmark = pytest.mark.browser

NUANCE = "irony vs praise"


def _project(ws):
    ds = text_dataset(ws, "teach-texts", [f"teach text {i}" for i in range(60)])
    p = ws.create_project("teach", ds["id"], ["positive", "negative"], overlap=1)
    ids = item_ids(ws, ds["id"])
    check, teach = ids[1::5][:8], ids[3::10][:3]
    ws.update_project(p["id"], gold_rate=0.5, teach_bar=0.6, teach_rate=1.0, teach_items=2)
    ws.import_gold(p["id"], [{"item_id": i, "label": "positive", "nuance": NUANCE} for i in check]
                   + [{"item_id": i, "label": "positive", "purpose": "teach", "nuance": NUANCE,
                       "explanation": "Praise that says the opposite of what it means is irony: positive.",
                       "reference_items": [teach[0]]} for i in teach])
    return ws.get_project(p["id"]), set(check), set(teach), teach[0]


def _weak(ws, p, name, check):
    """An annotator who gets the nuance's hidden checks wrong (4 of them), and the round that finds it."""
    u, tok = ws.add_user(name, "annotator")
    ws.add_member(p["id"], u["id"])
    wrong = 0
    while wrong < 4:
        t = ws.next_task(p["id"], u)
        wrong += t["item"]["id"] in check
        ws.submit(t["id"], u, "negative")
    assert ws.refresh_teaching(p["id"])["opened"] == [{"user_id": u["id"], "nuance": NUANCE}]
    return u, tok


def _card(page) -> dict:
    return page.evaluate("""() => { const c = document.getElementById('teach-card');
        return {hidden: c.hidden, correct: c.dataset.correct,
                verdict: document.getElementById('teach-verdict').textContent,
                right: document.getElementById('teach-right').textContent,
                yours: document.getElementById('teach-yours').textContent,
                explanation: document.getElementById('teach-explanation').textContent,
                nuance: document.getElementById('teach-nuance').textContent,
                refs: Array.from(document.querySelectorAll('#teach-refs .teach-ref')).map(r => r.textContent)}; }""")


def test_a_teaching_card_with_immediate_feedback_and_explanation(ws, tabs):  # noqa: F811
    p, check, teach, ref = _project(ws)
    u, tok = _weak(ws, p, "ann", check)
    tab = tabs()
    tab.login_link(tok)
    tab.goto(f"/label/{p['id']}")
    wait_ready(tab.page)
    page = tab.page
    shown = wait_item(page)
    assert shown["item_id"] in teach  # teach_rate 1: practice first
    assert page.locator("#teach-banner").is_visible() and "Practice" in page.locator("#teach-banner").inner_text()
    assert page.locator("#skip").is_disabled() and _card(page)["hidden"]
    page.keyboard.press("2")  # negative: wrong
    page.wait_for_selector("#teach-card:not([hidden])")
    card = _card(page)
    assert card["correct"] == "0" and card["verdict"] == "Not quite."
    assert card["right"] == "positive" and card["yours"] == "negative"
    assert card["explanation"].startswith("Praise that says the opposite") and NUANCE in card["nuance"]
    assert card["refs"] == ["positive teach text 3"]  # the reference (a teaching item) with its label
    tab.screenshot(ws, "teach-card")
    # the card stays until Continue: digits do not answer anything meanwhile
    page.keyboard.press("1")
    page.wait_for_timeout(300)
    assert not _card(page)["hidden"] and page.locator("#item").get_attribute("data-task-id") == shown["task_id"]
    page.keyboard.press("Enter")
    nxt = wait_item(page, other_than=shown["task_id"])
    assert _card(page)["hidden"]
    # the next teaching item answered right says so
    while nxt["item_id"] not in teach:
        page.keyboard.press("2")
        nxt = wait_item(page, other_than=nxt["task_id"])
    assert nxt["item_id"] != shown["item_id"]
    page.keyboard.press("1")
    page.wait_for_selector("#teach-card:not([hidden])")
    assert _card(page)["correct"] == "1" and _card(page)["verdict"] == "Right!"
    page.locator("#teach-continue").click()
    wait_item(page, other_than=nxt["task_id"])
    page.wait_for_function("() => document.body.dataset.pending === '0'")
    with ws.db.read() as conn:
        practice = conn.execute(text("SELECT item_id, correct FROM teach_answers WHERE annotator_id = :u"
                                     " AND answered_at IS NOT NULL ORDER BY answered_at"), {"u": u["id"]}).all()
        in_answers = conn.execute(text("SELECT count(*) FROM answers WHERE annotator_id = :u AND item_id IN (:a, :b)"),
                                  {"u": u["id"], "a": shown["item_id"], "b": nxt["item_id"]}).scalar_one()
    assert [(r.item_id, bool(r.correct)) for r in practice] == [(shown["item_id"], False), (nxt["item_id"], True)]
    assert in_answers == 0  # practice answers are no answers
    tab.assert_clean()


def test_the_quality_page_shows_teaching_before_and_after(ws, tabs):  # noqa: F811
    p, check, teach, ref = _project(ws)
    u, _ = _weak(ws, p, "bob", check)
    for _ in range(2):
        t = ws.next_task(p["id"], u)
        assert "teach" in t
        ws.submit_practice(t["id"], u, "positive")
    _, admin_token = ws.add_user("boss", "admin")
    admin = tabs()
    admin.login_link(admin_token)
    admin.goto(f"/quality/{p['id']}")
    row = admin.page.locator(f'#teaching tbody tr[data-user-id="{u["id"]}"]')
    row.wait_for()
    assert NUANCE in row.inner_text() and "taught, measuring" in row.inner_text() and "2 (2)" in row.inner_text()
    assert row.locator("[data-before]").inner_text().startswith("0.0% (0/4;")
    assert row.locator("[data-change-since]").inner_text() == "—"  # no checks since: nothing to compare yet
    assert "60.0%" in admin.page.locator("#teach-settings").inner_text()
    assert f"{NUANCE} (3)" in admin.page.locator("#teach-settings").inner_text()
    assert "over 1 nuance(s) taught" in admin.page.locator("#teach-pooled").inner_text()
    admin.page.locator("#teach-card").scroll_into_view_if_needed()
    admin.screenshot(ws, "teach-quality")
    admin.assert_clean()
