"""Real-browser test of the dataset search page (/search/{dataset_id}):
"more like this" from an item, results in a grid, selection by click,
Shift+click and keyboard, saved as a slice, sent to a project's hand-out
queue; annotators get no search. Headless Chromium against a live server, on
SQLite and PostgreSQL. Screenshot: ``test-artifacts/search.png``."""

from __future__ import annotations

import numpy as np
import pytest

from test_browser import Tab, browser, server, tabs  # noqa: F401 - fixtures
from factories import item_ids, project_with_annotators

pytestmark = pytest.mark.browser

META = {"model": "given", "kind": "given"}


def _project_with_vectors(ws):
    """12 items in 3 tight groups of 4 (items 0-3, 4-7, 8-11) by their vectors."""
    p, people = project_with_annotators(ws, 12, 1, overlap=1)
    ids = item_ids(ws, p["dataset_id"])
    rng = np.random.default_rng(0)
    centers = np.eye(3, 8, dtype=np.float32) * 10
    x = np.repeat(centers, 4, axis=0) + 0.1 * rng.normal(size=(12, 8)).astype(np.float32)
    ws.vectors.add("given", np.array(ids), x, META)
    return p, people, ids


def _open_from_admin(tab: Tab, p: dict) -> None:
    tab.goto("/admin")
    link = tab.page.locator(f'[data-project-id="{p["id"]}"] a.search-link')
    link.wait_for()
    link.click()
    tab.page.wait_for_url(f"{tab.base}/search/{p['dataset_id']}?project={p['id']}")
    tab.page.wait_for_selector("#search-ui:not([hidden])")


def _search_item(tab: Tab, item: int, k: int) -> list[int]:
    tab.page.fill("#q-item", str(item))
    tab.page.fill("#q-k", str(k))
    tab.page.click("#search")
    tab.page.wait_for_function(f"() => document.querySelectorAll('#results .result').length === {k}")
    res = tab.page.locator("#results .result")
    return [int(res.nth(i).get_attribute("data-item-id")) for i in range(res.count())]


def test_search_select_into_slice_and_queue(ws, tabs):  # noqa: F811
    p, (worker,), ids = _project_with_vectors(ws)
    _, token = ws.add_user("boss", "admin")
    tab = tabs()
    tab.login_link(token)
    _open_from_admin(tab, p)

    shown = _search_item(tab, ids[0], 5)
    assert set(shown[:3]) == set(ids[1:4])  # its own group first, the item itself left out
    assert ids[0] not in shown
    assert "p item" in tab.page.locator("#results .result").first.inner_text()  # a text snippet
    res = tab.page.locator("#results .result")
    res.nth(0).click()
    res.nth(2).click(modifiers=["Shift"])  # a range: the first three
    assert tab.page.locator("#selected-count").inner_text() == "3 selected"
    assert [res.nth(i).get_attribute("aria-pressed") for i in range(5)] == ["true"] * 3 + ["false"] * 2
    tab.page.fill("#slice-name", "group one")
    tab.page.click("#save-slice")
    tab.page.wait_for_function("() => document.getElementById('action-state').textContent.startsWith('Saved')")
    assert ws.slice_items(p["dataset_id"], "group one") == sorted(shown[:3])

    # keyboard: clear, then select one result with Tab-focus and Space, send it to the queue
    far = _search_item(tab, ids[8], 3)
    assert set(far) == set(ids[9:12])
    res.nth(1).focus()
    tab.page.keyboard.press("Space")
    assert res.nth(1).get_attribute("aria-pressed") == "true"
    assert tab.page.locator("#selected-count").inner_text() == "1 selected"
    assert tab.page.locator("#queue-project").input_value() == str(p["id"])
    tab.page.fill("#queue-priority", "7")
    tab.page.click("#send-queue")
    tab.page.wait_for_function("() => document.getElementById('action-state').textContent.startsWith('Sent 1 items')")
    t = ws.next_task(p["id"], worker)
    assert t["item"]["id"] == far[1]  # the prioritized item is handed out first
    tab.assert_clean()
    tab.screenshot(ws, "search")


def test_mine_from_the_selected_results(ws, tabs):  # noqa: F811
    """Selected results are the seeds of a mining round: the items most like
    them go to the front of the chosen project's queue."""
    p, (worker,), ids = _project_with_vectors(ws)
    _, token = ws.add_user("boss", "admin")
    tab = tabs()
    tab.login_link(token)
    _open_from_admin(tab, p)
    shown = _search_item(tab, ids[0], 2)
    assert set(shown) <= set(ids[1:4])
    tab.page.locator("#results .result").nth(0).click()  # one seed of the first group
    assert tab.page.locator("#mine-class option").all_inner_texts() == ["pos", "neg"]
    tab.page.select_option("#mine-class", "pos")
    tab.page.fill("#mine-batch", "2")
    tab.page.click("#mine")
    tab.page.wait_for_function("() => document.getElementById('action-state').textContent.startsWith('Mined 2 items')")
    assert "from 1 examples of \u201cpos\u201d" in tab.page.locator("#action-state").inner_text()
    from sqlalchemy import text

    with ws.db.read() as conn:
        pinned = set(conn.execute(text("SELECT item_id FROM tasks WHERE project_id = :p AND pinned_priority = 10"),
                                  {"p": p["id"]}).scalars())
    assert len(pinned) == 2 and pinned <= set(ids[0:4]) - {shown[0]}  # the seed's own group, not the seed
    assert ws.next_task(p["id"], worker)["item"]["id"] in pinned
    tab.assert_clean()


def test_annotator_gets_no_search(ws, tabs):  # noqa: F811
    p, (worker,), ids = _project_with_vectors(ws)
    tab = tabs()
    tab.login_link(ws.create_token(worker["id"]))
    with tab.page.expect_response(lambda r: r.url.endswith(f"/api/datasets/{p['dataset_id']}")) as resp:
        tab.goto(f"/search/{p['dataset_id']}?item={ids[0]}")
    assert resp.value.status == 403
    tab.page.wait_for_selector("#error:not([hidden])")
    assert tab.error_text() != ""
    assert tab.page.locator("#search-ui").is_hidden()
    assert tab.js_errors == []


def test_image_results_show_thumbnails(ws, tabs, tmp_path):  # noqa: F811
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, colour in enumerate(["red", "green", "blue", "yellow"]):
        Image.new("RGB", (32, 24), colour).save(folder / f"im{i}.png")
    ds = ws.create_dataset("pictures")
    assert ws.import_file(ds["id"], folder)["added"] == 4
    ids = item_ids(ws, ds["id"])
    ws.vectors.add("given", np.array(ids), np.eye(4, 8, dtype=np.float32) + 0.5, META)
    _, token = ws.add_user("boss", "admin")
    tab = tabs()
    tab.login_link(token)
    tab.goto(f"/search/{ds['id']}?item={ids[0]}")  # ?item= searches at once
    tab.page.wait_for_function(
        "() => { const ims = [...document.querySelectorAll('#results img.result-thumb')];"
        " return ims.length === 3 && ims.every(im => im.complete && im.naturalWidth === 32); }")
    src = tab.page.locator("#results img.result-thumb").first.get_attribute("src")
    assert src.startswith("blob:")  # fetched with the token, not a bare URL
    assert tab.page.locator("#q-item").input_value() == str(ids[0])
    # no project labels this dataset: nothing to send to a queue
    assert tab.page.locator("#send-queue").is_disabled()
    tab.assert_clean()


def _wait_results(tab: Tab, n: int) -> list[int]:
    tab.page.wait_for_function(
        f"() => document.getElementById('search-state').textContent === '{n} results.'")
    res = tab.page.locator("#results .result")
    return [int(res.nth(i).get_attribute("data-item-id")) for i in range(res.count())]


def test_filters_and_tagging_the_selection(ws, tabs):  # noqa: F811
    from factories import answer_item

    p, (worker,), ids = _project_with_vectors(ws)
    for k, label in [(1, "neg"), (5, "pos"), (9, "pos"), (10, "neg")]:
        answer_item(ws, p["id"], ids[k], worker, label)
    ws.tag_items(p["dataset_id"], [ids[2], ids[3], ids[6]], "keep")
    ws.create_slice(p["dataset_id"], "firsts", items=ids[:6])
    rev, _ = ws.add_user("rev", "reviewer")
    ws.add_member(p["id"], rev["id"])
    tab = tabs()
    tab.login_link(ws.create_token(rev["id"]))  # a reviewer searches and tags (no slices, no queue)
    tab.goto(f"/search/{p['dataset_id']}?project={p['id']}")
    tab.page.wait_for_selector("#search-ui:not([hidden])")
    filters = tab.page.locator("#filters")
    for name in ("Project", "Label", "Min confidence", "Max confidence", "Slice", "Tag"):
        assert filters.get_by_label(name, exact=True).count() == 1, name  # each control has its label

    # by tag: only the tagged items, each card showing its tag
    filters.get_by_label("Tag", exact=True).select_option("keep")
    tab.page.fill("#q-item", str(ids[0]))
    tab.page.fill("#q-k", "10")
    tab.page.click("#search")
    got = _wait_results(tab, 3)
    assert sorted(got) == sorted([ids[2], ids[3], ids[6]])
    assert tab.page.locator("#results .result-tag").all_inner_texts() == ["keep"] * 3
    # by tag and slice together
    filters.get_by_label("Slice", exact=True).select_option("firsts")
    tab.page.click("#search")
    assert sorted(_wait_results(tab, 2)) == [ids[2], ids[3]]
    # a label filter needs its project; then only items whose final label is it
    filters.get_by_label("Tag", exact=True).select_option("")
    filters.get_by_label("Slice", exact=True).select_option("")
    filters.get_by_label("Project", exact=True).select_option(str(p["id"]))
    filters.get_by_label("Label", exact=True).select_option("pos")
    tab.page.click("#search")
    assert sorted(_wait_results(tab, 2)) == [ids[5], ids[9]]
    filters.get_by_label("Min confidence", exact=True).fill("0.9")
    filters.get_by_label("Max confidence", exact=True).fill("0.1")
    tab.page.click("#search")
    tab.page.wait_for_selector("#error:not([hidden])")
    assert "above max_confidence" in tab.error_text()  # the server's word, shown
    filters.get_by_label("Min confidence", exact=True).fill("")
    filters.get_by_label("Max confidence", exact=True).fill("")
    filters.get_by_label("Label", exact=True).select_option("")
    filters.get_by_label("Project", exact=True).select_option("")

    # tag the selection, with the keyboard: Space on two results, type the tag, Enter
    tab.page.click("#search")
    got = _wait_results(tab, 10)
    res = tab.page.locator("#results .result")
    res.nth(0).focus()
    tab.page.keyboard.press("Space")
    res.nth(1).focus()
    tab.page.keyboard.press("Enter")
    assert tab.page.locator("#selected-count").inner_text() == "2 selected"
    tab.page.locator("#tag-name").focus()
    tab.page.keyboard.type("checked")
    tab.page.keyboard.press("Enter")
    tab.page.wait_for_function("() => document.getElementById('action-state').textContent.startsWith('Tagged 2')")
    assert ws.tagged_items(p["dataset_id"], "checked") == sorted(got[:2])
    assert "checked" in res.nth(0).inner_text() and "checked" not in res.nth(2).inner_text()
    # the new tag is offered as a filter at once
    tab.page.wait_for_function("() => [...document.querySelectorAll('#f-tag option')].some(o => o.value === 'checked')")
    tab.assert_clean()
    tab.screenshot(ws, "search-filters")
