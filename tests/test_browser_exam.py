"""Real-browser test of the qualification exam on the labeling page: the
banner "Qualification: question i of n", no skipping, one question at a time
(no prefetch past it), real work after a pass, and the refusal after a final
fail. Headless Chromium against a live server, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from test_browser import Tab, browser, server, tabs  # noqa: F401 - fixtures
from test_browser import wait_item, wait_ready
from factories import item_ids, text_dataset

pytestmark = pytest.mark.browser


def _project(ws, *, retries):
    ds = text_dataset(ws, "exam-texts", [f"exam text {i}" for i in range(20)])
    p = ws.create_project("exam", ds["id"], ["positive", "negative"], overlap=1,
                          exam_size=2, exam_pass=1.0, exam_retries=retries)
    ids = item_ids(ws, ds["id"])
    exam = ids[2::5]
    ws.import_gold(p["id"], [{"item_id": i, "label": "positive", "purpose": "exam"} for i in exam])
    return p, set(exam)


def _open(ws, tabs, p, name):  # noqa: F811
    u, tok = ws.add_user(name, "annotator")
    ws.add_member(p["id"], u["id"])
    tab = tabs()
    tab.login_link(tok)
    tab.goto(f"/label/{p['id']}")
    wait_ready(tab.page)
    return u, tab


def _banner(page) -> str | None:
    return page.evaluate("() => { const b = document.getElementById('exam-banner');"
                         " return b.hidden ? null : b.textContent; }")


def test_exam_banner_then_real_work_after_a_pass(ws, tabs):  # noqa: F811
    p, exam = _project(ws, retries=1)
    u, tab = _open(ws, tabs, p, "ann")
    page = tab.page
    shown = wait_item(page)
    assert shown["item_id"] in exam and _banner(page) == "Qualification: question 1 of 2"
    assert page.locator("#skip").is_disabled()
    page.keyboard.press("s")  # no skipping an exam question
    page.wait_for_function("() => document.getElementById('status').textContent.includes('cannot be skipped')")
    page.keyboard.press("1")
    shown = wait_item(page, other_than=shown["task_id"])
    assert shown["item_id"] in exam and _banner(page) == "Qualification: question 2 of 2"
    page.keyboard.press("1")
    page.wait_for_function("() => document.getElementById('status').textContent.includes('qualification passed')")
    shown = wait_item(page, other_than=shown["task_id"])
    assert shown["item_id"] not in exam and _banner(page) is None
    page.keyboard.press("2")
    wait_item(page, other_than=shown["task_id"])
    page.wait_for_function("() => document.body.dataset.pending === '0'")
    with ws.db.read() as conn:
        answered = conn.execute(text("SELECT item_id FROM answers WHERE annotator_id = :u"),
                                {"u": u["id"]}).scalars().all()
    assert answered == [shown["item_id"]]  # exam answers are no answers
    tab.assert_clean()


def test_a_final_fail_is_said_clearly_and_nothing_more_is_served(ws, tabs):  # noqa: F811
    p, exam = _project(ws, retries=0)
    u, tab = _open(ws, tabs, p, "bob")
    page = tab.page
    shown = wait_item(page)
    page.keyboard.press("2")
    shown = wait_item(page, other_than=shown["task_id"])
    assert _banner(page) == "Qualification: question 2 of 2"
    page.keyboard.press("2")
    page.wait_for_selector("#paused:not([hidden])")
    assert page.locator("#paused-title").inner_text() == "Qualification not passed"
    assert "qualification exam" in page.locator("#paused-reason").inner_text()
    assert page.locator("#item").is_hidden() and _banner(page) is None
    assert tab.js_errors == []


def test_the_quality_page_shows_the_exam_and_an_admin_grants_an_attempt(ws, tabs):  # noqa: F811
    p, exam = _project(ws, retries=0)
    ann, _ = ws.add_user("carl", "annotator")
    ws.add_member(p["id"], ann["id"])
    for _ in range(2):  # two wrong answers: failed, no attempt left
        t = ws.next_task(p["id"], ann)
        ws.submit(t["id"], ann, "negative")
    _, admin_token = ws.add_user("boss", "admin")
    admin = tabs()
    admin.login_link(admin_token)
    admin.goto(f"/quality/{p['id']}")
    row = admin.page.locator(f'#exam tbody tr[data-user-id="{ann["id"]}"]')
    row.wait_for()
    assert "failed" in row.inner_text() and "0.0%" in row.inner_text()
    assert "2 questions per attempt from 4 exam items" in admin.page.locator("#exam-settings").inner_text()
    row.locator("[data-grant]").click()
    admin.page.wait_for_function(
        f"() => document.querySelector('#exam tbody tr[data-user-id=\"{ann['id']}\"] [data-status]')"
        ".dataset.status === 'open'")
    assert ws.exam_report(p["id"])["annotators"][0]["status"] == "open"
    assert "exam" in ws.next_task(p["id"], ann)
    admin.assert_clean()
