"""The whole labeling operation through the browser only (issue 16's first
bar): an empty workspace; the first admin claims it on /setup with the code
``assay serve`` prints; the admin creates a dataset and drops a CSV on the
data page, creates a project in the wizard (classes with keys, Markdown
instructions, adaptive redundancy), adds two annotators on the people page
and makes them members on the project page, uploads gold matched on a
metadata field; the two annotators open their login links and label with
the keyboard; the admin decides the review queue and exports JSON lines.
The exported file is checked item by item. Headless Chromium against a
live server, on SQLite and PostgreSQL; the test itself only reads the
database to map texts to item ids for its assertions."""

from __future__ import annotations

import json
import re

import pytest

from test_browser import Tab, browser, server, tabs  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

#: (ref, text, what annotator 1 answers, what annotator 2 answers)
ROWS = [
    ("r1", "The soup was wonderful", "positive", "positive"),
    ("r2", "Service was slow and rude", "negative", "negative"),
    ("r3", "Lovely view and kind staff", "positive", "positive"),
    ("r4", "Cold food and a long wait", "negative", "negative"),
    ("r5", "Fine, I suppose", "positive", "negative"),  # the split: goes to review
    ("r6", "Best bread in town", "positive", "positive"),
]
GOLD = {"r2": "negative"}
KEYS = {"positive": "p", "negative": "m"}
DECIDE = {"r5": "negative"}  # the reviewer's call on the split


def _drop_csv(page, name: str, content: str) -> None:
    dt = page.evaluate_handle(
        "([name, content]) => { const dt = new DataTransfer();"
        " dt.items.add(new File([content], name, {type: 'text/csv'})); return dt; }", [name, content])
    page.dispatch_event("#dropzone", "dragover", {"dataTransfer": dt})
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": dt})


def _label_until_done(tab: Tab, answer_of: dict[str, str]) -> list[str]:
    """Answer every item the page shows with the class key of ``answer_of[text]``
    until the page says all is done; returns the texts answered, in order."""
    page, seen, prev = tab.page, [], None
    page.wait_for_selector("#classes button.class-btn:not([disabled])")
    for _ in range(3 * len(ROWS)):
        page.wait_for_function(
            """(prev) => { const it = document.getElementById('item');
                 return !document.getElementById('done').hidden
                   || (!it.hidden && it.dataset.taskId && it.dataset.taskId !== prev); }""", arg=prev)
        if page.locator("#done").is_visible():
            return seen
        assert page.locator("#paused").is_hidden()
        text = page.locator("#item-text").inner_text()
        prev = page.get_attribute("#item", "data-task-id")
        seen.append(text)
        page.keyboard.press(KEYS[answer_of[text]])
    raise AssertionError(f"the labeling page never said it was done (answered {seen})")


def _login_link(page) -> str:
    link = page.input_value("#new-user-link")
    assert "/login#token=" in link
    return link


def test_whole_operation_in_the_browser(ws, tabs, tmp_path):  # noqa: F811
    admin = tabs()
    page = admin.page

    # 1. first run: the setup page with the one-time code printed in the terminal
    admin.goto("/")
    page.wait_for_url(admin.base + "/setup")
    page.fill("#code", ws.setup_code())
    page.fill("#username", "boss")
    page.fill("#password", "correct horse")
    page.fill("#password2", "correct horse")
    page.click("#setup-submit")
    page.wait_for_url(admin.base + "/admin")

    # 2. data: a dataset and a CSV dropped on the data page
    page.click("nav a[href='/admin/data']")
    page.wait_for_url(admin.base + "/admin/data")
    page.fill("#create-name", "reviews")
    page.click("#create-submit")
    page.locator("#datasets tr.dataset-row th", has_text="reviews").wait_for()
    page.fill("#upload-source", "cafe survey")
    _drop_csv(page, "reviews.csv", "text,ref\n" + "".join(f'"{t}",{r}\n' for r, t, _, _ in ROWS))
    page.locator("#upload-status[data-result='ok']").filter(has_text="imported 6 new items").wait_for()

    # 3. the project wizard: classes with keys, Markdown instructions, adaptive redundancy
    page.click("nav a[href='/admin/projects/new']")
    page.wait_for_url(admin.base + "/admin/projects/new")
    page.fill("#p-name", "Sentiment")
    page.locator("#p-dataset option", has_text="reviews").wait_for(state="attached")
    page.select_option("#p-dataset", label=page.locator("#p-dataset option", has_text="reviews").inner_text())
    page.check("#kind-single")
    for n, (name, key) in enumerate(KEYS.items(), 1):
        if page.locator(f"#class-{n}-name").count() == 0:
            page.click("#class-add")
        page.fill(f"#class-{n}-name", name)
        page.fill(f"#class-{n}-description", f"The review is {name}")
        page.fill(f"#class-{n}-key", key)
    page.fill("#p-instructions", "Is the review **positive** or **negative**?")
    page.fill("#new-overlap", "1")
    page.fill("#new-target_confidence", "0.9")
    page.fill("#new-max_answers", "2")
    page.click("#create")
    page.wait_for_url(re.compile(r".*/admin/projects/\d+$"))
    pid = int(page.url.rsplit("/", 1)[1])

    # 4. people: two annotators, each with a login link shown once
    page.click("nav a[href='/admin/people']")
    page.wait_for_url(admin.base + "/admin/people")
    links = {}
    for name in ("ann1", "ann2"):
        page.fill("#new-username", name)
        page.select_option("#new-role", "annotator")
        page.click("#add-user-submit")
        page.locator("#users tbody tr").filter(has_text=name).wait_for()
        page.locator("label[for='new-user-link']", has_text=f"Login link of {name}").wait_for()
        links[name] = _login_link(page)
    assert links["ann1"] != links["ann2"]

    # ... made members on the project page; gold matched on the 'ref' column
    admin.goto(f"/admin/projects/{pid}")
    for name in ("ann1", "ann2"):
        page.fill("#member-username", name)
        page.click("#member-add")
        page.locator("#members-list tbody tr").filter(has_text=name).wait_for()
    gold_csv = tmp_path / "gold.csv"
    gold_csv.write_text("ref,label\n" + "".join(f"{r},{v}\n" for r, v in GOLD.items()), encoding="utf-8")
    page.set_input_files("#gold-file", str(gold_csv))
    page.fill("#gold-key", "ref")
    page.click("#gold-upload")
    page.locator("#gold-status").filter(has_text="1 added").wait_for()

    # 5. two annotators label with the keyboard, one after the other
    by_text = {t: (r, a1, a2) for r, t, a1, a2 in ROWS}
    answered = {}
    for n, name in enumerate(("ann1", "ann2"), 1):
        ann = tabs()
        ann.goto(links[name][len(ann.base):])
        ann.page.wait_for_url(ann.base + "/")
        ann.page.click(f"#projects li[data-project-id='{pid}'] a.label-link")
        ann.page.wait_for_url(f"{ann.base}/label/{pid}")
        assert ann.page.locator("#instructions strong").first.inner_text() == "positive"
        answered[name] = _label_until_done(ann, {t: v[n] for t, v in by_text.items()})
        ann.assert_clean()
    assert set(answered["ann1"]) | set(answered["ann2"]) >= {t for r, t, _, _ in ROWS if r not in GOLD}
    assert "Fine, I suppose" in answered["ann2"]  # one answer was not enough for anybody

    # 6. review: decide every item the queue holds (the split as DECIDE says)
    admin.goto(f"/admin/projects/{pid}")
    queue = page.locator("#review-queue li[data-item-id]")
    queue.first.wait_for()
    items = {r: i for i, r in _refs(ws, pid).items()}
    ref_of = {i: r for r, i in items.items()}
    decided = []
    while page.locator("#review-queue li[data-item-id]:not(.decided)").count():
        li = page.locator("#review-queue li[data-item-id]:not(.decided)").first
        ref = ref_of[int(li.get_attribute("data-item-id"))]
        want = DECIDE.get(ref) or next(a1 for r, _, a1, a2 in ROWS if r == ref)
        li.locator(f"button[data-decide='{want}']").click()
        page.locator(f"#review-queue li.decided[data-item-id='{items[ref]}']").wait_for()
        decided.append(ref)
    assert "r5" in decided

    # 7. export everything as JSON lines, and check the file
    page.select_option("#export-format", "jsonl")
    with page.expect_download() as dl:
        page.click("#export-go")
    path = tmp_path / "export.jsonl"
    dl.value.save_as(path)
    rows = {r["item_id"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}
    assert set(rows) == set(items.values())
    for ref, text, a1, a2 in ROWS:
        row = rows[items[ref]]
        assert row["text"] == text
        assert row["label"] == (GOLD.get(ref) or DECIDE.get(ref) or a1), (ref, row)
        given = sorted(a["label"] for a in row["answers"])
        assert set(given) <= {a1, a2}
    assert sorted(a["label"] for a in rows[items["r5"]]["answers"]) == ["negative", "positive"]
    admin.screenshot(ws, "operation-admin-project")
    admin.assert_clean()


def _refs(ws, project_id: int) -> dict[int, str]:
    """item id -> its 'ref' metadata (to read the exported file by the CSV's rows)."""
    p = ws.get_project(project_id)
    rows, _ = ws.list_items(p["dataset_id"], limit=100)
    return {r["id"]: r["meta"]["ref"] for r in rows}
