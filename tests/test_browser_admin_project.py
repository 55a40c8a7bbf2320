"""Real-browser test of one project's admin page (/admin/projects/{id}),
issue 16 parts 5-7: live progress that updates without a reload while
annotators answer, gold upload, a review decision, and an export of a slice
(the downloaded file's rows are checked). Headless Chromium against a live
server, on SQLite and PostgreSQL; what was stored is read from the database."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import JSON, text

from test_browser import Tab, browser, server, tabs  # noqa: F401 - fixtures
from factories import answer_item, item_ids, project_with_annotators

pytestmark = pytest.mark.browser


def _gold_rows(ws, project_id: int) -> dict[int, tuple]:
    with ws.db.read() as conn:
        rows = conn.execute(text("SELECT item_id, label, source FROM gold WHERE project_id = :p")
                            .columns(label=JSON), {"p": project_id}).all()
    return {r.item_id: (r.label, r.source) for r in rows}


def _stat(page, key: str) -> str:
    return page.locator(f"#progress dd[data-stat='{key}']").inner_text()


def test_admin_project_progress_gold_review_export(ws, tabs, tmp_path):  # noqa: F811
    # two annotators, adaptive redundancy that sends a 1-1 split to review after 2 answers
    p, people = project_with_annotators(ws, 8, 2, overlap=1, target_confidence=0.99, max_answers=2)
    ids = item_ids(ws, p["dataset_id"])
    a0, a1 = people
    answer_item(ws, p["id"], ids[0], a0, "pos")
    answer_item(ws, p["id"], ids[0], a1, "neg")  # split: the review queue
    answer_item(ws, p["id"], ids[1], a0, "pos")
    review = [r["item_id"] for r in ws.item_consensus(p["id"], status="review")[0]]
    assert review == [ids[0]]  # the set-up did what the test needs
    ws.create_slice(p["dataset_id"], "pair", items=[ids[1], ids[3]])
    _, admin = ws.add_user("boss", "admin")

    tab = tabs()
    page = tab.page
    tab.login_link(admin)
    tab.goto("/admin")
    link = page.locator(f"section[data-project-id='{p['id']}'] a.project-link")
    link.wait_for()
    asked: list[str] = []  # the API reads since the last page navigation (the project page's own)
    page.on("request", lambda r: asked.clear() if r.resource_type == "document"
            else asked.append(r.url.split("?")[0]) if r.method == "GET" and "/api/" in r.url else None)
    link.click()
    page.wait_for_url(f"{tab.base}/admin/projects/{p['id']}")

    # part 6: live progress — the numbers move while the page stays open
    page.locator("#progress dd[data-stat='answers']").filter(has_text="3").wait_for()
    assert page.locator(f"#progress-annotators tr[data-user-id='{a1['id']}']").count() == 1
    marker = page.evaluate("() => { window.__notReloaded = 1; return 1; }")
    answer_item(ws, p["id"], ids[2], a1, "neg")
    answer_item(ws, p["id"], ids[4], a1, "pos")
    page.locator("#progress dd[data-stat='answers']").filter(has_text="5").wait_for(timeout=15_000)
    assert page.evaluate("() => window.__notReloaded") == marker  # updated in place, not reloaded
    row = page.locator(f"#progress-annotators tr[data-user-id='{a1['id']}'] td").first
    row.filter(has_text="3").wait_for()
    # each chart has its text summary and a table with one row per bucket
    summary = page.locator("#chart-per_hour figcaption").inner_text()
    assert summary.startswith("Answers per hour: latest") and "48 buckets" in summary
    assert page.locator("#chart-per_hour table tbody tr").count() == 48
    # the page asks for the shown annotator's series only (not every annotator's)
    with page.expect_response(lambda r: f"series_of={a1['id']}" in r.url) as shown:
        page.select_option("#progress-who", str(a1["id"]))
    assert [a["user_id"] for a in shown.value.json()["annotators"] if "series" in a] == [a1["id"]]
    page.locator("#progress dd[data-stat='answers']").filter(has_text="3").wait_for()
    page.locator("#chart-per_hour figcaption").filter(has_text="Answers per hour: latest").wait_for()

    # part 5: gold upload, then a review decision
    gold_csv = tmp_path / "gold.csv"
    gold_csv.write_text(f"item_id,label\n{ids[5]},neg\n{ids[6]},pos\n", encoding="utf-8")
    page.set_input_files("#gold-file", str(gold_csv))
    page.click("#gold-upload")
    page.locator("#gold-status").filter(has_text="2 added").wait_for()
    page.locator(f"#gold-list tr[data-item-id='{ids[6]}']").wait_for()
    gold = _gold_rows(ws, p["id"])
    assert gold[ids[5]] == ("neg", "import") and gold[ids[6]] == ("pos", "import")
    item = page.locator(f"#review-queue li[data-item-id='{ids[0]}']")
    item.locator("button[data-decide='neg']").click()
    page.locator(f"#review-queue li.decided[data-item-id='{ids[0]}']").wait_for()
    assert _gold_rows(ws, p["id"])[ids[0]] == ("neg", "review")

    # part 7: export a slice as JSON lines, labelled items only
    page.select_option("#export-format", "jsonl")
    page.locator("#export-slice option[value='pair']").wait_for(state="attached")
    page.select_option("#export-slice", "pair")
    with page.expect_download() as dl:
        page.click("#export-go")
    path = tmp_path / "slice.jsonl"
    dl.value.save_as(path)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["item_id"] for r in rows) == sorted([ids[1], ids[3]])
    by_id = {r["item_id"]: r for r in rows}
    assert by_id[ids[1]]["label"] == "pos" and [a["label"] for a in by_id[ids[1]]["answers"]] == ["pos"]
    assert by_id[ids[3]]["label"] is None and by_id[ids[3]]["answers"] == []
    page.check("#export-labeled")
    with page.expect_download() as dl:
        page.click("#export-go")
    dl.value.save_as(path)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["item_id"] for r in rows] == [ids[1]]
    page.locator("#export-status").filter(has_text="slice \u201cpair\u201d").wait_for()
    # label sources: only the labels people verified (gold and the review decision above)
    page.uncheck("#export-labeled")
    page.select_option("#export-slice", "")
    for src in ("consensus", "auto", "majority"):
        page.uncheck(f"#export-source-{src}")
    with page.expect_download() as dl:
        page.click("#export-go")
    dl.value.save_as(path)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert sorted((r["item_id"], r["label_source"]) for r in rows) == sorted(
        [(ids[0], "review"), (ids[5], "gold"), (ids[6], "gold")])
    page.locator("#export-status").filter(has_text="labels from gold, review").wait_for()
    # the sections share one read of the project and of the caller (api.shared)
    assert asked.count(f"{tab.base}/api/projects/{p['id']}") == 1
    assert asked.count(f"{tab.base}/api/me") == 1
    tab.screenshot(ws, "admin-project")
    tab.assert_clean()
