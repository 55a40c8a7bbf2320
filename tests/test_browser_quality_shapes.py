"""Real-browser test of the quality page of a boxes project: no class report
(it is for one-class-of-K projects), the skill table on reviewed items
instead, and the gold card, on SQLite and PostgreSQL. Screenshot:
``test-artifacts/quality-boxes.png``."""

from __future__ import annotations

import pytest

from test_browser import ARTIFACTS, Tab, browser, server, tabs  # noqa: F401 - fixtures
from test_kinds_shapes import DRAWN, _answer_all, image_dataset

pytestmark = pytest.mark.browser


def test_quality_page_of_a_boxes_project_shows_the_skill_table(ws, tabs, tmp_path):  # noqa: F811
    ds, order = image_dataset(ws, tmp_path)
    p = ws.create_project("street", ds["id"], ["car", "person"], kind="boxes", overlap=3)
    people = [ws.add_user(f"u{i}")[0] for i in range(3)]
    admin, token = ws.add_user("boss", "admin")
    for u in people:
        ws.add_member(p["id"], u["id"])
    _answer_all(ws, p, people, order)
    ws.review(p["id"], order[0], [[20, 30, 80, 90, "car"]], admin)
    ws.review(p["id"], order[2], [[40, 30, 100, 90, "car"], [100, 10, 130, 60, "person"]], admin)
    want = {a["user_id"]: a for a in ws.known_skills(p["id"])["annotators"]}

    tab = tabs()
    tab.login_link(token)
    tab.goto(f"/quality/{p['id']}")
    tab.page.wait_for_selector("#known-card:not([hidden]) #known-skills tbody tr[data-user-id]")
    rows = tab.page.locator("#known-skills tbody tr[data-user-id]")
    assert rows.count() == 3
    heads = tab.page.locator("#known-skills thead th").all_inner_texts()
    assert [h.lower() for h in heads] == ["annotator", "items", "drawn", "known", "precision", "recall", "f1",
                                          "mean iou", "localisation error"]
    for i in range(3):
        uid = int(rows.nth(i).get_attribute("data-user-id"))
        cells = rows.nth(i).locator("td").all_inner_texts()
        a = want[uid]
        assert cells[0] == a["username"] and cells[1] == "2"
        assert cells[4] == f"{100 * a['precision']:.1f}%" and cells[5] == f"{100 * a['recall']:.1f}%"
        assert cells[7] == f"{a['mean_iou']:.2f}"
    u1 = rows.filter(has_text="u1").locator("td").all_inner_texts()
    assert u1[4] == "66.7%" and u1[5] == "66.7%"
    # the class report's cards are hidden, the gold card is shown; nothing failed on the way
    assert tab.page.locator("#annotators").is_hidden() and tab.page.locator("#skills-card").is_hidden()
    assert tab.page.locator("#gold-card").is_visible()
    assert "80.0%" in tab.page.locator("#known-basis").inner_text()
    tab.assert_clean()
    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if ws.db.dialect == "sqlite" else f"-{ws.db.dialect}"
    tab.page.screenshot(path=str(ARTIFACTS / f"quality-boxes{suffix}.png"), full_page=True)


def test_quality_page_of_a_spans_project_shows_scores_per_entity_type(ws, tabs):  # noqa: F811
    from factories import text_dataset

    ds = text_dataset(ws, "notes", ["Ada Lovelace met Babbage in London", "Ada Lovelace met Babbage in Lisbon"])
    p = ws.create_project("ner", ds["id"], ["PER", "LOC"], kind="spans", overlap=2)
    admin, token = ws.add_user("boss", "admin")
    people = [ws.add_user("a")[0], ws.add_user("b")[0]]
    for u in people:
        ws.add_member(p["id"], u["id"])
    truth = [[0, 12, "PER"], [17, 24, "PER"], [28, 34, "LOC"]]
    drawn = {"a": truth[:2] + [[28, 34, "PER"]], "b": truth}
    for u in people:
        while (task := ws.next_task(p["id"], u)) is not None:
            ws.submit(task["id"], u, drawn[u["username"]])
    for i in {t["item_id"] for t in ws.list_answers(p["id"], limit=10)[0]}:
        ws.review(p["id"], i, truth, admin)

    tab = tabs()
    tab.login_link(token)
    tab.goto(f"/quality/{p['id']}")
    tab.page.wait_for_selector("#known-card:not([hidden]) #known-skills tbody tr[data-user-id]")
    heads = tab.page.locator("#known-skills thead th").all_inner_texts()
    assert [h.lower() for h in heads] == ["annotator", "items", "precision", "recall", "f1",
                                          "loc (p / r / f1)", "per (p / r / f1)"]
    a = tab.page.locator("#known-skills tbody tr", has_text="a").first.locator("td").all_inner_texts()
    assert a[:5] == ["a", "2", "66.7%", "66.7%", "66.7%"]
    assert a[5] == "— / 0.0% / 0.0%" and a[6] == "66.7% / 100.0% / 80.0%"
    tab.assert_clean()
