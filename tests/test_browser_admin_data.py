"""Real-browser test of the data page (/admin/data), issue 16 part 2: create
a dataset, drop a CSV onto the page (a drop event carrying a DataTransfer)
and pick a zip of images with the file input, watch the progress bar and
the import result, see the provenance, browse items in keyset pages with
thumbnails, filter by text and metadata; a bad CSV shows the server's error
and adds nothing. Headless Chromium against a live server, on SQLite and
PostgreSQL; what was stored is read from the database."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import text

from test_browser import Tab, browser, server, tabs  # noqa: F401 - fixtures
from factories import snapshot, zip_bytes

pytestmark = pytest.mark.browser

ROWS = [(f"row {i} {'apple' if i % 4 == 0 else 'pear'} pie", "en" if i % 2 else "de") for i in range(30)]


def _csv(rows) -> str:
    return "text,lang\n" + "".join(f"{t},{lang}\n" for t, lang in rows)


def _png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (6, 4), color).save(buf, format="PNG")
    return buf.getvalue()


def _drop(page, name: str, content: str) -> None:
    """Drop a text file on the drop zone, as a browser does for a dragged file."""
    dt = page.evaluate_handle(
        "([name, content]) => { const dt = new DataTransfer();"
        " dt.items.add(new File([content], name, {type: 'text/csv'})); return dt; }", [name, content])
    page.dispatch_event("#dropzone", "dragover", {"dataTransfer": dt})
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": dt})


def _items(ws, dataset_id: int) -> list:
    with ws.db.read() as conn:
        return conn.execute(text("SELECT id, kind, text, source, license, consent FROM items "
                                 "WHERE dataset_id = :d ORDER BY id"), {"d": dataset_id}).all()


def _shown_ids(page) -> list[int]:
    return [int(x) for x in page.locator("#items tbody tr").evaluate_all(
        "rows => rows.map(r => r.getAttribute('data-item-id'))")]


def test_admin_data_upload_browse_filter(ws, tabs):  # noqa: F811
    _, admin = ws.add_user("boss", "admin")
    tab = tabs()
    page = tab.page
    tab.login_link(admin)
    tab.goto("/admin/data")
    page.locator("#empty").wait_for()

    page.fill("#create-name", "fruit")
    page.click("#create-submit")
    page.locator("#datasets tr.dataset-row th", has_text="fruit").wait_for()
    ds = ws.get_dataset("fruit")
    assert page.input_value("#upload-dataset") == str(ds["id"])

    # a CSV dropped on the page, with its provenance
    page.fill("#upload-source", "orchard survey")
    page.fill("#upload-license", "CC-BY-4.0")
    page.fill("#upload-consent", "opt-in")
    _drop(page, "fruit.csv", _csv(ROWS))
    status = page.locator("#upload-status[data-result='ok']")
    status.wait_for()
    assert "imported 30 new items (0 already there)" in status.inner_text()
    assert page.locator("#upload-progress").evaluate("p => p.value") == 100
    rows = _items(ws, ds["id"])
    assert [(r.kind, r.text) for r in rows] == [("text", t) for t, _ in ROWS]
    assert {(r.source, r.license, r.consent) for r in rows} == {("orchard survey", "CC-BY-4.0", "opt-in")}

    # a zip of images through the file picker (no provenance given: the file name is the source)
    for k in ("source", "license", "consent"):
        page.fill(f"#upload-{k}", "")
    pics = zip_bytes({f"pics/{n}.png": _png(c) for n, c in
                      (("red", (255, 0, 0)), ("green", (0, 255, 0)), ("blue", (0, 0, 255)))})
    page.evaluate("() => document.getElementById('upload-status').removeAttribute('data-result')")
    page.set_input_files("#upload-file", files=[{"name": "pics.zip", "mimeType": "application/zip", "buffer": pics}])
    status.wait_for()
    assert "imported 3 new items" in status.inner_text()
    row = page.locator(f"#datasets tr[data-dataset-id='{ds['id']}']")
    row.locator("td[data-field='items']", has_text="33").wait_for()
    assert row.locator("td[data-field='kind']").inner_text() == "image, text"
    assert "orchard survey · CC-BY-4.0 · opt-in" in row.inner_text()
    assert "upload:pics.zip · no license given" in row.inner_text()

    # a bad CSV: the server's message, and nothing changes
    before = snapshot(ws)
    page.evaluate("() => document.getElementById('upload-status').removeAttribute('data-result')")
    _drop(page, "bad.csv", "title,lang\nx,en\n")
    bad = page.locator("#upload-status[data-result='error']")
    bad.wait_for()
    assert "bad.csv was not imported (nothing changed)" in bad.inner_text() and "text" in bad.inner_text()
    assert snapshot(ws) == before
    assert len(_items(ws, ds["id"])) == 33

    # browse: keyset pages of 25, thumbnails for images
    ids = [r.id for r in _items(ws, ds["id"])]
    row.locator("button[data-browse]").click()
    page.wait_for_url(f"**/admin/data?dataset={ds['id']}")
    page.locator(f"#items tbody tr[data-item-id='{ids[32]}']").wait_for()  # 50 a page: all 33
    page.select_option("#filter-limit", "25")
    page.click("#filter-apply")
    page.wait_for_function("() => document.querySelectorAll('#items tbody tr').length === 25")
    assert _shown_ids(page) == ids[:25]
    assert page.is_disabled("#page-prev")
    page.click("#page-next")
    page.locator(f"#items tbody tr[data-item-id='{ids[32]}']").wait_for()
    assert _shown_ids(page) == ids[25:]
    assert page.is_disabled("#page-next")
    page.wait_for_function("() => [...document.querySelectorAll('#items img.item-thumb')]"
                           ".filter(i => i.src.startsWith('blob:') && i.naturalWidth === 6).length === 3")
    tab.screenshot(ws, "admin_data")
    page.click("#page-prev")
    page.locator(f"#items tbody tr[data-item-id='{ids[0]}']").wait_for()
    assert _shown_ids(page) == ids[:25]

    # filter: text and metadata together
    page.fill("#filter-q", "APPLE")
    page.fill("#filter-meta", "lang=de")
    page.click("#filter-apply")
    want = [ids[i] for i, (t, lang) in enumerate(ROWS) if "apple" in t and lang == "de"]
    page.wait_for_function("n => document.querySelectorAll('#items tbody tr').length === n", arg=len(want))
    assert _shown_ids(page) == want and len(want) == 8
    page.fill("#filter-q", "no such fruit")
    page.click("#filter-apply")
    page.locator("#items-empty").wait_for()
    tab.assert_clean()
