"""Real-browser test of the quality page (/quality/{id}): headless Chromium
against a live server, on SQLite and PostgreSQL. Screenshot:
``test-artifacts/quality.png``."""

from __future__ import annotations

import pytest

from test_browser import ARTIFACTS, Tab, browser, server, tabs  # noqa: F401 - fixtures
from factories import project_with_annotators

pytestmark = pytest.mark.browser


def test_quality_page_as_admin(ws, tabs):  # noqa: F811
    classes = ("cat", "dog", "fox")
    p, people = project_with_annotators(ws, 30, 4, overlap=4, classes=classes)
    for n, u in enumerate(people):
        while (t := ws.next_task(p["id"], u)) is not None:
            i = t["item"]["id"]
            right = classes[i % 3]
            wrong = classes[(i + 1) % 3]
            ws.submit(t["id"], u, wrong if n == 3 and i % 2 else right)  # the last one is sloppy
    _, token = ws.add_user("boss", "admin")
    tab = tabs()
    tab.login_link(token)

    # the admin page links to the quality page
    tab.goto("/admin")
    link = tab.page.locator(f'[data-project-id="{p["id"]}"] a.quality-link')
    link.wait_for()
    link.click()
    tab.page.wait_for_url(f"{tab.base}/quality/{p['id']}")
    tab.page.wait_for_selector("#report:not([hidden]) #annotators tbody tr[data-user-id]")

    answered = {a["user_id"] for a in ws.quality_report(p["id"])["annotators"]}
    rows = tab.page.locator("#annotators tbody tr[data-user-id]")
    assert rows.count() == len(answered) == 4
    assert {int(rows.nth(i).get_attribute("data-user-id")) for i in range(rows.count())} == answered
    # one 3x3 heatmap per annotator, cells shaded and numbered
    assert tab.page.locator("table.heatmap").count() == 4
    cells = tab.page.locator("table.heatmap td.hm-cell")
    assert cells.count() == 4 * 9
    bg = cells.first.evaluate("c => getComputedStyle(c).backgroundColor")
    assert bg.startswith("rgba(47, 111, 235")
    assert 0.0 <= float(cells.first.inner_text()) <= 1.0
    # histogram bars sum to the answered items; alpha shown
    total = tab.page.evaluate(
        "() => [...document.querySelectorAll('#histogram rect.bar-rect')]"
        ".reduce((s, r) => s + Number(r.dataset.count), 0)")
    assert total == 30
    assert tab.page.locator('[data-stat="alpha"]').inner_text() != "—"

    # Re-fit now: the report switches to the stored re-fit
    tab.page.click("#refit")
    tab.page.wait_for_function("() => document.getElementById('refit-state').textContent === 'Re-fit done.'")
    assert ws.quality_report(p["id"])["source"] == "refit"
    assert "last re-fit" in tab.page.locator("#method").inner_text()

    tab.assert_clean()
    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if ws.db.dialect == "sqlite" else f"-{ws.db.dialect}"
    tab.page.screenshot(path=str(ARTIFACTS / f"quality{suffix}.png"), full_page=True)
