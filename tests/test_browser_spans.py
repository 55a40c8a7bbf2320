"""Real-browser tests of the text-span editor (label kind ``spans``,
``static/spans.js``): spans marked with the mouse and with the keyboard, a
class picked first, a span clicked and removed, an overlap refused (and
allowed where the schema says so), "no entity", undo and skip; the stored
answers are read from the database. Headless Chromium against a live
server, on SQLite and PostgreSQL. Screenshot: ``test-artifacts/spans.png``."""

from __future__ import annotations

import json

import pytest

from test_browser import Tab, browser, server, tabs  # noqa: F401 - fixtures
from test_browser import answers_of, open_label_page, wait_settled
from factories import in_id_order, item_ids, text_dataset

pytestmark = pytest.mark.browser

TEXTS = ["Ada Lovelace met Charles Babbage in London.", "Nothing to see here.", "Paris is in France.",
         "Skip me, please."]
CLASSES = ["PER", "LOC", "ORG"]


def shown(page, other_than: str | None = None) -> dict:
    """The item on screen once its text is drawn in the span editor."""
    page.wait_for_function(
        """(prev) => {
            const it = document.getElementById('item');
            return !it.hidden && it.dataset.taskId && it.dataset.taskId !== prev
                && document.querySelector('#item-editor .spans-text .seg');
        }""", arg=other_than)
    return page.evaluate("""() => ({task_id: document.getElementById('item').dataset.taskId,
        item_id: Number(document.getElementById('item').dataset.itemId),
        text: [...document.querySelectorAll('#item-editor .seg')].map(s => s.textContent).join('')})""")


def marked(page) -> list:
    return json.loads(page.get_attribute("#item-editor", "data-spans") or "[]")


def status(page) -> str:
    return page.locator("#status").inner_text()


def drag_select(page, start: int, end: int) -> None:
    """Select characters [start, end) of the text with a real mouse drag."""
    box = page.evaluate("""([start, end]) => {
        function at(offset, last) {
            for (const seg of document.querySelectorAll('#item-editor .seg')) {
                const s = Number(seg.dataset.start), n = seg.textContent.length;
                if (offset >= s && offset < s + n) {
                    const r = document.createRange();
                    r.setStart(seg.firstChild, offset - s);
                    r.setEnd(seg.firstChild, offset - s + 1);
                    return r.getBoundingClientRect();
                }
            }
            throw new Error('no character at ' + offset);
        }
        const a = at(start), b = at(end - 1);
        return {x0: a.left + 1, y0: a.top + a.height / 2, x1: b.right - 1, y1: b.top + b.height / 2};
    }""", [start, end])
    page.mouse.move(box["x0"], box["y0"])
    page.mouse.down()
    page.mouse.move((box["x0"] + box["x1"]) / 2, box["y1"], steps=3)
    page.mouse.move(box["x1"], box["y1"], steps=3)
    page.mouse.up()


def test_mark_spans_with_mouse_and_keyboard(ws, tabs):  # noqa: F811
    ds = text_dataset(ws, "news", TEXTS)
    p = ws.create_project("ner", ds["id"], CLASSES, kind="spans", instructions="Mark people and places.")
    in_id_order(ws, p["id"])
    ada, nothing, paris, skipped = item_ids(ws, ds["id"])
    tab, alice = open_label_page(ws, tabs, p)
    page = tab.page
    assert page.get_attribute("body", "data-kind") == "spans"
    assert page.locator("#submit").is_visible() and page.locator("#item-text").is_hidden()

    cur = shown(page)
    assert (cur["item_id"], cur["text"]) == (ada, TEXTS[0])
    # the mouse: select, then the class's key (a partial word snaps to the whole word)
    drag_select(page, 0, 10)
    assert page.get_attribute("#item-editor", "data-pending") == "0,12"
    page.keyboard.press("1")
    assert marked(page) == [[0, 12, "PER"]]
    # the class first, then the selection
    page.keyboard.press("2")
    drag_select(page, 36, 42)
    assert marked(page) == [[0, 12, "PER"], [36, 42, "LOC"]]
    page.keyboard.press("Escape")  # no class picked any more
    # the keyboard: → moves by word, Shift+→ extends, a key labels
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    assert page.get_attribute("#item-editor", "data-pending") == "17,24"  # "Charles"
    page.keyboard.press("Shift+ArrowRight")
    assert page.get_attribute("#item-editor", "data-pending") == "17,32"  # "Charles Babbage"
    page.keyboard.press("1")
    assert marked(page) == [[0, 12, "PER"], [17, 32, "PER"], [36, 42, "LOC"]]
    # an overlapping span is refused (this project does not allow them)
    drag_select(page, 4, 16)  # "Lovelace met"
    page.keyboard.press("3")
    assert "overlap" in status(page) and page.get_attribute("#item-editor", "data-refused") == "1"
    assert len(marked(page)) == 3
    page.keyboard.press("Escape")
    # a wrong span: marked, clicked, removed with Delete
    drag_select(page, 13, 16)  # "met"
    page.keyboard.press("3")
    assert [13, 16, "ORG"] in marked(page)
    page.locator("#item-editor .span-tag", has_text="ORG").click()
    assert page.get_attribute("#item-editor", "data-selected") == "1"
    page.keyboard.press("Delete")
    assert marked(page) == [[0, 12, "PER"], [17, 32, "PER"], [36, 42, "LOC"]]
    tab.screenshot(ws, "spans")
    page.keyboard.press("Enter")

    cur = shown(page, cur["task_id"])
    assert cur["item_id"] == nothing
    page.keyboard.press("Enter")  # nothing marked: Enter alone is not an answer
    assert "No entity" in status(page)
    assert page.get_attribute("#item", "data-task-id") == cur["task_id"]  # still on screen
    page.keyboard.press("n")  # the explicit "no entity"

    cur = shown(page, cur["task_id"])
    assert cur["item_id"] == paris
    page.keyboard.press("ArrowRight")
    page.keyboard.press("2")  # "Paris": LOC
    page.keyboard.press("Enter")
    cur2 = shown(page, cur["task_id"])
    assert cur2["item_id"] == skipped
    # undo: Paris comes back with its span; Backspace on the clicked span removes it
    page.keyboard.press("z")
    cur = shown(page, cur2["task_id"])
    assert cur["item_id"] == paris
    page.wait_for_function("() => document.getElementById('status').textContent === 'undone'")
    assert marked(page) == [[0, 5, "LOC"]]
    page.locator("#item-editor .span-mark").first.click()
    page.keyboard.press("Backspace")
    assert marked(page) == []
    drag_select(page, 12, 18)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    cur = shown(page, cur["task_id"])
    assert cur["item_id"] == skipped
    page.keyboard.press("s")  # skip still works
    page.wait_for_selector("#done:not([hidden])")
    wait_settled(page, 4)
    tab.assert_clean()

    got = {a["item_id"]: a["label"] for a in answers_of(ws, p["id"], alice["id"])}
    assert got == {ada: [[0, 12, "PER"], [17, 32, "PER"], [36, 42, "LOC"]], nothing: [], paris: [[12, 18, "LOC"]]}


def test_overlap_allowed_by_the_schema(ws, tabs):  # noqa: F811
    ds = text_dataset(ws, "news", TEXTS[:1])
    p = ws.create_project("nested", ds["id"], CLASSES, kind="spans", kind_options={"overlap": True})
    tab, alice = open_label_page(ws, tabs, p)
    page = tab.page
    shown(page)
    drag_select(page, 0, 12)
    page.keyboard.press("1")
    drag_select(page, 4, 12)
    page.keyboard.press("3")
    assert marked(page) == [[0, 12, "PER"], [4, 12, "ORG"]]
    assert page.locator("#item-editor .span-mark.is-overlap").count() == 1
    # a drag that ends below the text selects to its end; Shift+← extends a selection leftwards
    start = page.evaluate("""() => {
        const r = document.createRange(), seg = [...document.querySelectorAll('#item-editor .seg')]
            .find(s => s.textContent.includes('Charles'));
        const at = seg.textContent.indexOf('Charles');
        r.setStart(seg.firstChild, at); r.setEnd(seg.firstChild, at + 1);
        const b = r.getBoundingClientRect(), box = document.querySelector('.spans-text').getBoundingClientRect();
        return {x: b.left + 1, y: b.top + b.height / 2, below: box.bottom + 40};
    }""")
    page.mouse.move(start["x"], start["y"])
    page.mouse.down()
    page.mouse.move(start["x"] + 50, start["below"], steps=4)
    page.mouse.up()
    assert page.get_attribute("#item-editor", "data-pending") == "17,43"
    page.keyboard.press("Shift+ArrowLeft")
    assert page.get_attribute("#item-editor", "data-pending") == "13,43"
    page.keyboard.press("Escape")
    assert page.get_attribute("#item-editor", "data-pending") == ""
    page.click("#submit")
    page.wait_for_selector("#done:not([hidden])")
    wait_settled(page, 1)
    tab.assert_clean()
    assert [a["label"] for a in answers_of(ws, p["id"], alice["id"])] == [[[0, 12, "PER"], [4, 12, "ORG"]]]


def test_long_document_scrolls_to_the_caret(ws, tabs):  # noqa: F811
    words = [f"word{i}" for i in range(3000)]
    long_text = " ".join(words) + " Zurich"
    ds = text_dataset(ws, "long", [long_text])
    p = ws.create_project("long", ds["id"], CLASSES, kind="spans")
    tab, alice = open_label_page(ws, tabs, p)
    page = tab.page
    shown(page)
    box = page.locator("#item-editor .spans-text")
    size = box.evaluate("b => ({scroll: b.scrollHeight, client: b.clientHeight, top: b.scrollTop})")
    assert size["scroll"] > 2 * size["client"] and size["top"] == 0  # the text scrolls inside the item
    page.keyboard.press("ArrowLeft")  # the caret starts at the last word
    start = len(long_text) - len("Zurich")
    assert page.get_attribute("#item-editor", "data-pending") == f"{start},{len(long_text)}"
    page.wait_for_function("() => document.querySelector('#item-editor .spans-text').scrollTop > 0")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    page.wait_for_selector("#done:not([hidden])")
    wait_settled(page, 1)
    tab.assert_clean()
    assert [a["label"] for a in answers_of(ws, p["id"], alice["id"])] == [[[start, len(long_text), "LOC"]]]
