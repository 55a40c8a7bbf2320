"""Real-browser test of the curation page (/curate/{dataset_id}): opened
from the search page's header, the background scan polled with a progress
bar, a near-duplicate group resolved ("keep one, tag the rest" — the tags
checked in the database), an outlier tagged, exact duplicates listed, and
axe-core clean. Headless Chromium against a live server, on SQLite and
PostgreSQL. Screenshot: ``test-artifacts/curate.png``."""

from __future__ import annotations

import time

import pytest

from test_browser import Tab, browser, server, tabs  # noqa: F401 - fixtures
from factories import item_ids, text_dataset
from test_curation import vectors_dataset

pytestmark = pytest.mark.browser


def test_curate_scan_resolve_group_and_tag_outlier(ws, tabs, monkeypatch):  # noqa: F811
    from assay.learn import curation as _learn

    ds, ids = vectors_dataset(ws)  # groups: ids[2:5], ids[0:2]; ids[-1] far from the rest
    copy = text_dataset(ws, "copy", ["pics item 3"])
    real_scan = _learn.scan

    def slow_scan(*args, progress=None, **kw):  # long enough to see the progress bar
        if progress is not None:
            progress(0.4)
        time.sleep(1.5)
        return real_scan(*args, progress=progress, **kw)

    monkeypatch.setattr(_learn, "scan", slow_scan)
    _, token = ws.add_user("boss", "admin")
    tab = tabs()
    tab.login_link(token)
    tab.goto(f"/search/{ds['id']}")
    link = tab.page.locator("#curate-link")
    link.wait_for()
    assert link.get_attribute("href") == f"/curate/{ds['id']}"
    tab.goto(f"/curate/{ds['id']}?threshold=0.98&k=5")
    tab.page.wait_for_selector("#scan-progress:not([hidden])")
    tab.page.wait_for_function("() => document.getElementById('scan-progress').value >= 0.4")  # polled
    assert "Scanning 60 items" in tab.page.locator("#scan-state").inner_text()
    tab.page.wait_for_function("() => window.assayCurate.ready", timeout=60_000)
    assert tab.page.locator("#scan-progress").is_hidden()
    groups = tab.page.locator("#groups > li.curate-group")
    assert groups.count() == 2
    first = groups.nth(0)
    assert first.locator("label.result").count() == 3
    assert "similarity" in first.locator("label.result").nth(0).inner_text()
    # keep the second item of the first group (keyboard: focus its radio, Space), tag the rest
    first.locator(f'input[value="{ids[3]}"]').focus()
    tab.page.keyboard.press("Space")
    button = first.locator("button[data-group]")
    assert button.inner_text() == f"Keep #{ids[3]}, tag the other 2"
    tab.page.fill("#dup-tag", "dup-copy")
    button.click()
    tab.page.locator("#groups > li.curate-group.is-resolved").wait_for()
    assert "tagged 2 items" in tab.page.locator("#groups > li.is-resolved [role=status]").inner_text()
    tags = ws.item_tags(ids[2:5])
    assert tags.get(ids[2]) == ["dup-copy"] and tags.get(ids[4]) == ["dup-copy"] and ids[3] not in tags
    # exact duplicates: item 3's text is also in the other dataset
    exact = tab.page.locator("#exact").inner_text()
    assert f"item #{item_ids(ws, copy['id'])[0]} in dataset {copy['id']}" in exact
    # outliers: the far item first, with its scores; select it and tag it
    top = tab.page.locator("#outliers .result").nth(0)
    assert top.get_attribute("data-item-id") == str(ids[-1])
    assert "uniqueness" in top.inner_text() and "representativeness" in top.inner_text()
    top.focus()
    tab.page.keyboard.press("Enter")
    assert top.get_attribute("aria-pressed") == "true"
    tab.page.fill("#tag-name", "odd")
    tab.page.click("#tag-selected")
    tab.page.wait_for_function("() => document.getElementById('action-state').textContent.startsWith('Tagged')")
    assert ws.item_tags([ids[-1]]) == {ids[-1]: ["odd"]}
    from test_accessibility import _violations
    assert _violations(tab) == []
    tab.page.evaluate("() => window.scrollTo(0, 0)")
    tab.screenshot(ws, "curate")
    tab.assert_clean()


def test_annotator_gets_no_curation(ws, tabs):  # noqa: F811
    ds, _ids = vectors_dataset(ws)
    _, token = ws.add_user("ann", "annotator")
    tab = tabs()
    tab.login_link(token)
    tab.goto(f"/curate/{ds['id']}")
    tab.page.wait_for_selector("#error:not([hidden])")
    assert tab.error_text() != ""
    assert tab.page.evaluate("() => window.assayCurate.ready") is False
