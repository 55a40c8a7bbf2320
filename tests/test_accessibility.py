"""Accessibility (issue 16): axe-core, shipped with the package under
/static/vendor/axe-core (from the npm registry), reports no serious or
critical violation on any page of the UI, each in a real state (a task on
the labeling page, results on the search page, …). Headless Chromium
against a live server."""

from __future__ import annotations

import numpy as np
import pytest

from test_browser import Tab, browser, server, tabs, wait_ready  # noqa: F401 - fixtures
from factories import item_ids, project_with_annotators

pytestmark = pytest.mark.browser

AXE = "/static/vendor/axe-core/axe.min.js"
BAD = ("serious", "critical")


def _violations(tab: Tab) -> list[str]:
    """Serious and critical axe violations of the page as it is now, one line each."""
    tab.page.add_script_tag(url=tab.base + AXE)
    found = tab.page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))")
    return [f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes'][:5]}" for v in found if v["impact"] in BAD]


def _check(tab: Tab, where: str, found: dict) -> None:
    bad = _violations(tab)
    if bad:
        found[where] = bad


def test_no_serious_violation_on_any_page(ws, tabs):  # noqa: F811
    found: dict[str, list[str]] = {}
    ws.setup_code()
    tab = tabs()
    tab.goto("/setup")
    tab.page.wait_for_selector("#password-rule:has-text('characters')")
    _check(tab, "/setup", found)

    p, (alice,) = project_with_annotators(ws, 12, 1, overlap=1)
    ids = item_ids(ws, p["dataset_id"])
    x = np.repeat(np.eye(3, 8, dtype=np.float32), 4, axis=0) + 0.01 * np.arange(96, dtype=np.float32).reshape(12, 8)
    ws.vectors.add("given", np.array(ids), x, {"model": "given", "kind": "given"})
    _, admin_token = ws.add_user("boss", "admin")
    _, alice_token = ws.add_user("alice2", "annotator")
    ws.add_member(p["id"], ws.get_user("alice2")["id"])

    tab.goto("/login")
    tab.page.wait_for_selector("#login-form")
    _check(tab, "/login", found)

    tab.login_link(alice_token)  # lands on / (the annotator's projects)
    tab.page.wait_for_selector(f"a[href='/label/{p['id']}']")
    _check(tab, "/ (annotator)", found)
    tab.goto(f"/label/{p['id']}")
    wait_ready(tab.page)
    _check(tab, "/label (a task shown)", found)

    admin = tabs()
    admin.login_link(admin_token)
    admin.goto("/admin")
    admin.page.wait_for_selector(f'[data-project-id="{p["id"]}"]')
    _check(admin, "/admin", found)
    admin.goto(f"/admin/data?dataset={p['dataset_id']}")  # the datasets, an upload's error, a page of items
    admin.page.wait_for_selector(f"#items tbody tr[data-item-id='{ids[11]}']")
    admin.page.set_input_files("#upload-file", files=[{"name": "bad.csv", "mimeType": "text/csv",
                                                       "buffer": b"title\nx\n"}])
    admin.page.wait_for_selector("#upload-status[data-result='error']")
    _check(admin, "/admin/data (datasets, upload error, items)", found)
    u2 = ws.get_user("alice2")  # one project's page with an answer, gold and a slice to export
    ws.submit(ws.next_task(p["id"], u2)["id"], u2, "pos")
    ws.import_gold(p["id"], [{"item_id": ids[11], "label": "neg"}])
    ws.create_slice(p["dataset_id"], "first", items=ids[:3])
    admin.goto(f"/admin/projects/{p['id']}")
    admin.page.locator("#progress dd[data-stat='answers']").filter(has_text="1").wait_for()
    admin.page.wait_for_selector(f"#gold-list tr[data-item-id='{ids[11]}']")
    admin.page.wait_for_selector("#export-slice option[value='first']", state="attached")
    admin.page.wait_for_selector("#members-list tbody tr[data-user-id]")
    _check(admin, "/admin/projects/{id} (progress, gold, export, members)", found)
    admin.goto("/admin/projects/new")  # the wizard with a Markdown preview and the server's refusal
    admin.page.wait_for_selector("body[data-ready='1']")
    admin.page.fill("#p-instructions", "# Rules\n\n**Read** the [guide](https://example.org).\n\n- one\n- two")
    admin.page.wait_for_selector("#instructions-preview h1")
    admin.page.click("#create")  # no name: refused
    admin.page.wait_for_selector("#error:not([hidden])")
    _check(admin, "/admin/projects/new (preview, error)", found)
    admin.goto(f"/admin/people?user={alice['id']}")  # users, a person's projects, a fresh login link
    admin.page.wait_for_selector(f"#person-projects tr[data-project-id='{p['id']}']")
    admin.page.click("#link-create")
    admin.page.wait_for_selector("#link-result:not([hidden])")
    _check(admin, "/admin/people (users, a person, a login link)", found)
    admin.goto(f"/quality/{p['id']}")
    admin.page.wait_for_load_state("networkidle")
    _check(admin, "/quality", found)
    admin.goto(f"/search/{p['dataset_id']}?project={p['id']}&item={ids[0]}")
    admin.page.wait_for_selector("#results .result")
    _check(admin, "/search (results)", found)
    admin.goto(f"/map/{p['dataset_id']}?project={p['id']}&method=pca")
    admin.page.wait_for_function("() => window.assayMap && window.assayMap.ready")
    _check(admin, "/map (points drawn)", found)
    admin.goto(f"/curate/{p['dataset_id']}")
    admin.page.wait_for_function("() => window.assayCurate && window.assayCurate.ready")
    _check(admin, "/curate (groups, exact duplicates, outliers)", found)
    admin.goto("/docs")
    admin.page.wait_for_selector(".swagger-ui .opblock")
    _check(admin, "/docs", found)

    assert not found, "axe-core found serious/critical violations:\n" + "\n".join(
        f"{page}: {line}" for page, lines in found.items() for line in lines)
