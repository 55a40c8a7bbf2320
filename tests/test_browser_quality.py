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


def test_paused_annotator_sees_why_and_an_admin_lifts_the_pause(ws, tabs):  # noqa: F811
    p, (bad,) = project_with_annotators(ws, 40, 1, classes=("pos", "neg"), name="g",
                                        gold_rate=0.5, gold_min_accuracy=0.8, gold_min_answers=3)
    from factories import item_ids
    gold_items = item_ids(ws, p["dataset_id"])[:20]
    ws.import_gold(p["id"], [{"item_id": i, "label": "pos"} for i in gold_items])
    _, admin_token = ws.add_user("boss", "admin")
    ann = tabs()
    ann.login_link(ws.create_token(bad["id"]))
    ann.goto(f"/label/{p['id']}")
    # answer "neg" (key 2) to everything until the page says we are paused
    for _ in range(200):
        if ann.page.locator("#paused").is_visible():
            break
        if ann.page.locator("#item").is_visible():
            ann.page.keyboard.press("2")
        ann.page.wait_for_timeout(60)
    assert ann.page.locator("#paused").is_visible()
    reason = ann.page.locator("#paused-reason").inner_text()
    # why, but nothing about gold: no counts, no bar
    assert "paused" in reason and not any(ch.isdigit() for ch in reason) and "gold" not in reason.lower()
    assert not ann.page.locator("#item").is_visible()
    stats = {s["username"]: s for s in ws.gold_stats(p["id"])}
    assert stats[bad["username"]]["paused"] is True

    admin = tabs()
    admin.login_link(admin_token)
    admin.goto(f"/quality/{p['id']}")
    row = admin.page.locator(f'#gold tbody tr[data-user-id="{bad["id"]}"]')
    row.wait_for()
    assert "paused" in row.inner_text()
    row.locator("[data-lift]").click()
    admin.page.wait_for_function(
        f"() => document.querySelector('#gold tbody tr[data-user-id=\"{bad['id']}\"]').innerText.includes('active')")
    assert {s["username"]: s for s in ws.gold_stats(p["id"])}[bad["username"]]["paused"] is False

    # back to work after "Check again"
    ann.page.click("#paused-retry")
    ann.page.wait_for_selector("#item:not([hidden])")
    assert not ann.page.locator("#paused").is_visible()
    ann.assert_clean()
    admin.assert_clean()
    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if ws.db.dialect == "sqlite" else f"-{ws.db.dialect}"
    admin.page.screenshot(path=str(ARTIFACTS / f"quality-gold{suffix}.png"), full_page=True)


def test_reviewer_decides_an_item_from_the_review_queue(ws, tabs):  # noqa: F811
    p, (a, b) = project_with_annotators(ws, 3, 2, classes=("x", "y"), name="r",
                                        target_confidence=0.95, max_answers=2)
    t = ws.next_task(p["id"], a)
    ws.submit(t["id"], a, "x")
    t2 = ws.next_task(p["id"], b)
    ws.submit(t2["id"], b, "y")
    item = t["item"]["id"]
    assert [q["item_id"] for q in ws.review_queue(p["id"])[0]] == [item]
    rev, token = ws.add_user("rev", "reviewer")
    ws.add_member(p["id"], rev["id"])
    tab = tabs()
    tab.login_link(token)
    tab.goto(f"/quality/{p['id']}")
    entry = tab.page.locator(f'#review li[data-item-id="{item}"]')
    entry.wait_for()
    assert "r item" in entry.inner_text()
    entry.locator('[data-decide="y"]').click()
    tab.page.wait_for_selector(f'#review li.decided[data-item-id="{item}"]')
    assert ws.review_queue(p["id"])[0] == []
    rec = next(r for r in ws.export_records(p["id"]) if r["item_id"] == item)
    assert (rec["label"], rec["label_method"]) == ("y", "review")
    tab.assert_clean()


def test_learning_curve_on_the_quality_page(ws, tabs):  # noqa: F811
    from assay.learn.step import ml_step
    from factories import embedded_dataset

    ds, ids, y = embedded_dataset(ws, 240, seed=1, name="m-data")
    p = ws.create_project("m", ds["id"], ["a", "b"], overlap=1)
    ws.update_project(p["id"], ml_space="f")
    ws.import_gold(p["id"], [{"item_id": ids[i], "label": "ab"[y[i]]} for i in range(80)])
    ml_step(ws, p["id"])
    ws.import_gold(p["id"], [{"item_id": ids[i], "label": "ab"[y[i]]} for i in range(80, 200)])
    ml_step(ws, p["id"])
    report = ws.model_report(p["id"])
    assert [v["version"] for v in report["versions"]] == [1, 2]
    _, token = ws.add_user("boss", "admin")
    tab = tabs()
    tab.login_link(token)
    tab.goto(f"/quality/{p['id']}")
    tab.page.wait_for_selector("#model-card:not([hidden]) svg.learning-curve")
    assert tab.page.locator("circle.curve-oof.curve-point").count() == 2
    assert "Version 2" in tab.page.locator("#model-summary").inner_text()
    tab.assert_clean()


def _skill_map_as_admin(ws, tabs, p):  # noqa: F811
    """A new admin's tab on the project's quality page, once the skill map shows; its rows."""
    _, token = ws.add_user("boss", "admin")
    tab = tabs()
    tab.login_link(token)
    tab.goto(f"/quality/{p['id']}")
    tab.page.wait_for_selector("#skills tbody tr[data-user-id]")
    return tab, tab.page.locator("#skills tbody tr[data-user-id]")


def test_skill_map_shows_who_confuses_what(ws, tabs):  # noqa: F811
    from factories import answer_item, item_ids

    classes = ("cat", "dog", "fox")
    p, (good, dog_fox) = project_with_annotators(ws, 45, 2, overlap=2, classes=classes)
    ids = item_ids(ws, p["dataset_id"])
    truth = {i: classes[j % 3] for j, i in enumerate(ids)}
    for i in ids:
        answer_item(ws, p["id"], i, good, truth[i])
        answer_item(ws, p["id"], i, dog_fox, "fox" if truth[i] == "dog" else truth[i])
    ws.import_gold(p["id"], [{"item_id": i, "label": truth[i],
                              "nuance": "dog vs fox" if truth[i] in ("dog", "fox") else None} for i in ids])
    tab, rows = _skill_map_as_admin(ws, tabs, p)
    assert rows.count() == 2
    weak = tab.page.locator(f'#skills tr[data-user-id="{dog_fox["id"]}"]')
    assert weak.locator("td.skill-cell[data-class]").count() == 3
    dog = float(weak.locator('td[data-class="dog"]').get_attribute("data-skill"))
    cat = float(weak.locator('td[data-class="cat"]').get_attribute("data-skill"))
    assert dog < 0.5 < cat
    assert "dog>fox" in weak.locator("td[data-confused]").get_attribute("data-confused").split(",")
    assert "dog \u2192 fox" in weak.inner_text()
    strong = tab.page.locator(f'#skills tr[data-user-id="{good["id"]}"] td[data-class="dog"]')
    assert float(strong.get_attribute("data-skill")) > 0.8
    assert "45 gold items" in tab.page.locator("#skills-basis").inner_text()
    # the named nuance has its own column: the dog/fox mixer is weak on it, the other is not
    assert "dog vs fox" in tab.page.locator("#skills thead").inner_text()
    mix = float(weak.locator('td[data-nuance="dog vs fox"]').get_attribute("data-skill"))
    sure = float(tab.page.locator(f'#skills tr[data-user-id="{good["id"]}"] td[data-nuance="dog vs fox"]')
                 .get_attribute("data-skill"))
    assert mix < 0.7 < sure
    tab.assert_clean()
    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if ws.db.dialect == "sqlite" else f"-{ws.db.dialect}"
    tab.page.locator("#skills-card").screenshot(path=str(ARTIFACTS / f"skill-map{suffix}.png"))


def test_skill_map_pages_through_every_annotator(ws, tabs):  # noqa: F811
    from factories import answer_item, item_ids

    n = 104  # more than one page of 100
    p, people = project_with_annotators(ws, 4, n, overlap=60, classes=("cat", "dog"), name="many")
    ids = item_ids(ws, p["dataset_id"])
    for k, u in enumerate(people):  # two items each, half the people on each pair
        for j in (2 * (k % 2), 2 * (k % 2) + 1):
            answer_item(ws, p["id"], ids[j], u, "cat" if j % 2 else "dog")
    ws.import_gold(p["id"], [{"item_id": i, "label": "cat" if j % 2 else "dog"} for j, i in enumerate(ids)])
    tab, rows = _skill_map_as_admin(ws, tabs, p)
    assert rows.count() == 100
    more = tab.page.locator("#skills-more")
    assert more.is_visible()
    more.click()
    rows.nth(n - 1).wait_for()
    assert rows.count() == n
    shown = {int(rows.nth(i).get_attribute("data-user-id")) for i in range(rows.count())}
    assert shown == {u["id"] for u in people}  # each once, none missing
    assert more.is_hidden()
    tab.assert_clean()
