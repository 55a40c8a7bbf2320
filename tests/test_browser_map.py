"""Real-browser test of the embedding map page (/map/{dataset_id}): opened
from the admin page, the points drawn, a region lassoed by mouse drags and
saved as a slice (exactly the items inside the drawn polygon), a click on a
point opening the item in the search page. Headless Chromium against a live
server, on SQLite and PostgreSQL. Screenshot: ``test-artifacts/map.png``."""

from __future__ import annotations

import numpy as np
import pytest

from test_browser import Tab, browser, server, tabs  # noqa: F401 - fixtures
from factories import item_ids, project_with_annotators

pytestmark = pytest.mark.browser

META = {"model": "given", "kind": "given"}


def inside(poly, x, y) -> bool:
    """Ray casting, as the page does."""
    hit, n = False, len(poly)
    for a in range(n):
        b = a - 1
        (xa, ya), (xb, yb) = poly[a], poly[b]
        if (ya > y) != (yb > y) and x < (xb - xa) * (y - ya) / (yb - ya) + xa:
            hit = not hit
    return hit


def test_map_lasso_into_slice_and_click_through(ws, tabs):  # noqa: F811
    p, _people = project_with_annotators(ws, 30, 1, overlap=1)
    ids = item_ids(ws, p["dataset_id"])
    rng = np.random.default_rng(0)
    x = np.repeat(np.eye(3, 8, dtype=np.float32) * 10, 10, axis=0) + 0.3 * rng.normal(size=(30, 8)).astype(np.float32)
    ws.vectors.add("given", np.array(ids), x, META)
    _, token = ws.add_user("boss", "admin")
    tab = tabs()
    tab.login_link(token)
    tab.goto("/admin")
    link = tab.page.locator(f'[data-project-id="{p["id"]}"] a.map-link')
    link.wait_for()
    href = link.get_attribute("href")
    assert href == f"/map/{p['dataset_id']}?project={p['id']}"
    tab.goto(href + "&method=pca")
    tab.page.wait_for_function("() => window.assayMap && window.assayMap.ready", timeout=60_000)
    got_ids, xy = ws.embedding_map_points(p["dataset_id"], method="pca")
    assert got_ids.tolist() == ids
    from test_accessibility import _violations
    assert _violations(tab) == []  # axe: no serious or critical violation

    # lasso around the first group's centroid, by mouse drags
    c = xy[:10].mean(axis=0)
    r = 0.35
    ring = [(c[0] + r * np.cos(t), c[1] + r * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 24)]
    tab.page.check("#m-lasso")
    pts = [tab.page.evaluate("([x, y]) => window.assayMap.clientOf(x, y)", [float(a), float(b)]) for a, b in ring]
    tab.page.mouse.move(*pts[0])
    tab.page.mouse.down()
    for q in pts[1:]:
        tab.page.mouse.move(*q, steps=2)
    tab.page.mouse.up()
    poly = tab.page.evaluate("() => window.assayMap.lasso")
    want = sorted(i for i, (a, b) in zip(ids, xy.tolist()) if inside(poly, a, b))
    assert want, "the lasso caught nothing"
    assert set(want) <= set(ids[:10])  # the groups lie apart: only the first group's items
    assert tab.page.locator("#lasso-count").inner_text() == f"{len(want)} selected"
    tab.page.fill("#slice-name", "lassoed")
    tab.page.click("#save-slice")
    tab.page.wait_for_function("() => document.getElementById('save-state').textContent.startsWith('Saved')")
    assert ws.slice_items(p["dataset_id"], "lassoed") == want
    tab.screenshot(ws, "map")

    # click-through: a click on a point opens it in the search page
    tab.page.uncheck("#m-lasso")
    far = int(np.argmax(np.linalg.norm(xy - c, axis=1)))
    q = tab.page.evaluate("([x, y]) => window.assayMap.clientOf(x, y)", [float(xy[far, 0]), float(xy[far, 1])])
    tab.page.mouse.click(*q)
    tab.page.wait_for_url(f"{tab.base}/search/{p['dataset_id']}?item={ids[far]}")
    tab.assert_clean()


def test_annotator_gets_no_map(ws, tabs):  # noqa: F811
    p, (worker,) = project_with_annotators(ws, 5, 1, overlap=1)
    ids = item_ids(ws, p["dataset_id"])
    ws.vectors.add("given", np.array(ids), np.eye(5, 8, dtype=np.float32), META)
    tab = tabs()
    tab.login_link(ws.create_token(worker["id"]))
    tab.goto(f"/map/{p['dataset_id']}?method=pca")
    tab.page.wait_for_selector("#error:not([hidden])")
    assert tab.error_text() != ""
    assert tab.page.evaluate("() => window.assayMap.ready") is False
