"""Real-browser test of the probable-label-errors card on the quality page
(/quality/{id}): headless Chromium against a live server, on SQLite and
PostgreSQL. A reviewer decides the top item from the card; the decision is
recorded and the item leaves the ranking."""

from __future__ import annotations

import pytest

from test_browser import ARTIFACTS, Tab, browser, server, tabs  # noqa: F401 - fixtures
from factories import answer_item, item_ids, predict, project_with_annotators

pytestmark = pytest.mark.browser


def test_label_errors_card_ranks_and_decides(ws, tabs):  # noqa: F811
    p, people = project_with_annotators(ws, 30, 3, overlap=3, name="be")
    ids = sorted(item_ids(ws, p["dataset_id"]))
    truth = {i: ("pos", "neg")[j % 2] for j, i in enumerate(ids)}
    split = set(ids[:4])  # two of three people answer wrongly here; the model says the truth
    for i in ids:
        for n, u in enumerate(people):
            wrong = i in split and n < 2
            answer_item(ws, p["id"], i, u, ("neg" if truth[i] == "pos" else "pos") if wrong else truth[i])
    predict(ws, p["id"], {i: (truth[i], 0.95 if truth[i] == "pos" else 0.05) for i in ids})
    bare, (ann,) = project_with_annotators(ws, 3, 1, name="bm")  # one answer per item, no predictions
    for i in item_ids(ws, bare["dataset_id"]):
        answer_item(ws, bare["id"], i, ann, "pos")
    boss, token = ws.add_user("be-boss", "reviewer")
    ws.add_member(p["id"], boss["id"])
    ws.add_member(bare["id"], boss["id"])
    tab = tabs()
    tab.login_link(token)

    tab.goto(f"/quality/{p['id']}")
    tab.page.wait_for_selector("#errors-card:not([hidden]) #errors li[data-item-id]")
    shown = [int(x) for x in tab.page.eval_on_selector_all("#errors li[data-item-id]",
                                                            "els => els.map(e => e.dataset.itemId)")]
    assert len(shown) == 20 and set(shown[:4]) == split
    assert "flagged" in tab.page.locator("#errors-summary").inner_text()
    top = shown[0]
    tab.page.click(f'#errors li[data-item-id="{top}"] button[data-decide="{truth[top]}"]')
    tab.page.wait_for_selector(f'#errors li[data-item-id="{top}"].decided')
    assert top not in {it["item_id"] for it in ws.label_errors(p["id"], limit=None)["items"]}
    final = {r["item_id"]: r for r in ws.final_labels(p["id"], limit=100)[0]}
    assert final[top]["source"] == "review" and final[top]["label"] == truth[top]
    tab.assert_clean()

    # nothing to rank (one answer per item and no model): no card, no error shown
    tab.goto(f"/quality/{bare['id']}")
    tab.page.wait_for_selector("#report:not([hidden])")
    tab.page.wait_for_function("() => document.getElementById('loading').hidden")
    assert tab.page.locator("#errors-card").is_hidden()
    tab.assert_clean()
