"""Real-browser tests of the box and polygon editors (label kinds ``boxes``
and ``polygons``, ``static/shapes.js``): boxes drawn, moved, resized,
re-classed with a digit and deleted with the mouse and keys, one drawn while
zoomed in; "nothing to mark", skip and undo; polygons closed three ways, a
vertex dragged. The stored answers are read from the database and must be
within a pixel or two of what was drawn, in the image's own pixels (the
image is shown about twice its size). Headless Chromium against a live
server, on SQLite and PostgreSQL. Screenshots: ``test-artifacts/boxes.png``,
``test-artifacts/polygons.png``."""

from __future__ import annotations

import pytest

from test_browser import Tab, browser, server, tabs  # noqa: F401 - fixtures
from test_browser import answers_of, open_label_page, wait_settled
from factories import in_id_order

pytestmark = pytest.mark.browser

CLASSES = ["car", "person", "bike"]
TOL = 1.5  # image pixels


def image_dataset(ws, tmp_path, n: int, size=(400, 300)):
    from PIL import Image, ImageDraw

    folder = tmp_path / "scenes"
    folder.mkdir()
    for i in range(n):
        im = Image.new("RGB", size, (225, 228, 232))
        d = ImageDraw.Draw(im)
        d.rectangle([60, 50, 160, 130], fill=(200, 40, 40))
        d.ellipse([200 + 20 * i, 100, 300, 200], fill=(40, 90, 200))
        im.save(folder / f"scene{i}.png")
    ds = ws.create_dataset("scenes")
    assert ws.import_file(ds["id"], folder)["added"] == n
    return ds


def shown(page, other_than: str | None = None) -> dict:
    """The item on screen once its image is in the shape editor."""
    page.wait_for_function(
        """(prev) => {
            const it = document.getElementById('item');
            const ed = document.querySelector('#item-editor .shape-editor');
            return !it.hidden && it.dataset.taskId && it.dataset.taskId !== prev && ed && ed.dataset.ready === '1';
        }""", arg=other_than)
    return page.evaluate("""() => ({task_id: document.getElementById('item').dataset.taskId,
        item_id: Number(document.getElementById('item').dataset.itemId)})""")


def at(page, x: float, y: float) -> tuple[float, float]:
    """The screen point of image pixel (x, y), whatever the zoom."""
    return tuple(page.evaluate("""([x, y]) => {
        const svg = document.querySelector('.shape-canvas');
        const p = svg.createSVGPoint(); p.x = x; p.y = y;
        const q = p.matrixTransform(svg.getScreenCTM());
        return [q.x, q.y];
    }""", [x, y]))


def drag(page, a, b) -> None:
    page.mouse.move(*at(page, *a))
    page.mouse.down()
    (x0, y0), (x1, y1) = at(page, *a), at(page, *b)
    for k in range(1, 6):
        page.mouse.move(x0 + (x1 - x0) * k / 5, y0 + (y1 - y0) * k / 5)
    page.mouse.up()


def click(page, x, y) -> None:
    page.mouse.click(*at(page, x, y))


def editor(page) -> dict:
    return page.evaluate("""() => { const d = document.querySelector('#item-editor .shape-editor').dataset;
        return {count: Number(d.count), selected: Number(d.selected), zoom: Number(d.zoom),
                cls: document.querySelector('.shape-class').dataset.class, drawing: d.drawing}; }""")


def status(page) -> str:
    return page.locator("#status").inner_text()


def close_to(got: list, want: list) -> bool:
    return len(got) == len(want) and all(abs(a - b) <= TOL for a, b in zip(got, want, strict=True))


def test_draw_move_resize_delete_boxes(ws, tabs, tmp_path):  # noqa: F811
    ds = image_dataset(ws, tmp_path, 3)
    p = ws.create_project("street", ds["id"], CLASSES, kind="boxes")
    in_id_order(ws, p["id"])
    tab, user = open_label_page(ws, tabs, p)
    page = tab.page
    first = shown(page)
    size = page.evaluate("""() => { const r = document.querySelector('.shape-canvas').getBoundingClientRect();
        return [r.width, r.height]; }""")
    assert size[0] > 600 and size[1] > 400  # drawn bigger than its 400×300 pixels

    drag(page, (50, 40), (150, 120))  # a car (class 1, the first)
    assert editor(page) == {"count": 1, "selected": 0, "zoom": 1, "cls": "car", "drawing": ""}
    page.keyboard.press("2")  # the selected box becomes a person, and so will the next one
    drag(page, (200, 100), (300, 200))
    assert editor(page)["cls"] == "person" and editor(page)["count"] == 2
    page.keyboard.press("1")  # ... which is a car
    drag(page, (100, 80), (110, 90))  # move the first box by (10, 10): it becomes selected, a person
    assert editor(page)["selected"] == 0 and editor(page)["cls"] == "person"
    page.keyboard.press("Tab")  # the second box: its corner handle resizes it
    assert editor(page)["selected"] == 1
    drag(page, (300, 200), (320, 230))
    drag(page, (10, 10), (40, 35))  # a third box (a car: the class follows the selection), then deleted
    assert editor(page)["count"] == 3
    page.keyboard.press("Delete")
    assert editor(page)["count"] == 2
    drag(page, (5, 250), (60, 290))  # and a fourth, clicked away, then selected again and deleted with the mouse
    page.keyboard.press("Escape")
    assert page.locator(".shape-delete").is_disabled()
    click(page, 30, 270)
    assert editor(page)["selected"] == 2
    page.locator(".shape-delete").click()
    assert editor(page)["count"] == 2
    page.keyboard.down("Shift")  # Shift+drag inside a box draws a new one instead of moving it
    drag(page, (80, 70), (120, 100))
    page.keyboard.up("Shift")
    assert editor(page)["count"] == 3 and editor(page)["selected"] == 2
    page.keyboard.press("Delete")
    page.keyboard.press("+")
    page.keyboard.press("+")
    assert editor(page)["zoom"] == pytest.approx(1.56, abs=0.01)
    drag(page, (180, 140), (220, 180))  # drawn zoomed in: still image pixels
    page.keyboard.press("3")
    page.keyboard.press("f")  # fit the whole image again
    assert editor(page)["zoom"] == 1
    tab.screenshot(ws, "boxes")
    page.keyboard.press("Enter")
    second = shown(page, first["task_id"])

    page.keyboard.press("Enter")  # nothing drawn: Enter is refused, "nothing to mark" is explicit
    assert "press n" in status(page)
    page.keyboard.press("n")
    third = shown(page, second["task_id"])
    page.keyboard.press("s")  # skip the third
    page.wait_for_selector("#done:not([hidden])")
    page.keyboard.press("z")  # undo "nothing to mark" on the second image: it comes back, redrawn
    again = shown(page, third["task_id"])
    assert again["item_id"] == second["item_id"]
    drag(page, (20, 20), (60, 70))
    page.get_by_role("button", name="Submit").click()
    page.wait_for_selector("#done:not([hidden])")
    wait_settled(page, 3)

    stored = {a["item_id"]: a["label"] for a in answers_of(ws, p["id"], user["id"])}
    assert set(stored) == {first["item_id"], second["item_id"]}  # the third was skipped
    boxes = sorted(stored[first["item_id"]], key=lambda b: b[0])
    assert [b[4] for b in boxes] == ["person", "bike", "car"], boxes
    assert close_to(boxes[0][:4], [60, 50, 160, 130]), boxes  # moved by (10, 10)
    assert close_to(boxes[1][:4], [180, 140, 220, 180]), boxes  # drawn at 1.56x zoom
    assert close_to(boxes[2][:4], [200, 100, 320, 230]), boxes  # resized by its corner
    (b,) = stored[second["item_id"]]
    assert close_to(b[:4], [20, 20, 60, 70]) and b[4] == "bike"
    tab.assert_clean()


def test_draw_and_edit_polygons(ws, tabs, tmp_path):  # noqa: F811
    ds = image_dataset(ws, tmp_path, 2)
    p = ws.create_project("outlines", ds["id"], CLASSES, kind="polygons")
    in_id_order(ws, p["id"])
    tab, user = open_label_page(ws, tabs, p)
    page = tab.page
    first = shown(page)

    for xy in ((60, 50), (160, 50), (160, 130), (60, 130)):
        click(page, *xy)
    assert editor(page)["drawing"] == "4"
    click(page, 61, 51)  # the first point closes it
    assert editor(page)["count"] == 1 and editor(page)["drawing"] == ""
    for xy in ((200, 100), (300, 100), (250, 190)):
        click(page, *xy)
    page.keyboard.press("Enter")  # closes the outline, does not submit
    assert editor(page)["count"] == 2 and editor(page)["selected"] == 1
    drag(page, (250, 190), (250, 220))  # drag a vertex of the selected triangle
    page.keyboard.press("2")
    for xy in ((20, 200), (80, 200)):
        click(page, *xy)
    page.mouse.dblclick(*at(page, 50, 260))  # a double click closes a third one...
    assert editor(page)["count"] == 3
    page.keyboard.press("Delete")  # ... deleted
    tab.screenshot(ws, "polygons")
    page.keyboard.press("Enter")
    shown(page, first["task_id"])
    page.keyboard.press("n")
    page.wait_for_selector("#done:not([hidden])")
    wait_settled(page, 2)

    stored = {a["item_id"]: a["label"] for a in answers_of(ws, p["id"], user["id"])}
    polys = sorted(stored.pop(first["item_id"]), key=lambda q: q["points"][0][0])
    assert list(stored.values()) == [[]]
    assert [q["label"] for q in polys] == ["car", "person"]
    assert len(polys[0]["points"]) == 4 and all(
        close_to(a, b) for a, b in zip(polys[0]["points"], [[60, 50], [160, 50], [160, 130], [60, 130]], strict=True))
    assert all(close_to(a, b) for a, b in zip(polys[1]["points"], [[200, 100], [300, 100], [250, 220]], strict=True))
    tab.assert_clean()


def test_wheel_zoom_and_space_drag_pan(ws, tabs, tmp_path):  # noqa: F811
    ds = image_dataset(ws, tmp_path, 1)
    p = ws.create_project("zoomed", ds["id"], CLASSES, kind="boxes")
    tab, user = open_label_page(ws, tabs, p)
    page = tab.page
    shown(page)
    x, y = at(page, 100, 75)
    page.mouse.move(x, y)
    page.mouse.wheel(0, -300)  # zoom in around the pointer: the pixel under it stays put
    page.wait_for_function("() => Number(document.querySelector('.shape-editor').dataset.zoom) > 1.3")
    zoom = editor(page)["zoom"]
    after = at(page, 100, 75)
    assert abs(after[0] - x) <= 1 and abs(after[1] - y) <= 1, (x, y, after)
    page.keyboard.down(" ")  # space+drag pans (and draws nothing)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 50, y - 30, steps=5)
    page.mouse.up()
    page.keyboard.up(" ")
    moved = at(page, 100, 75)
    assert abs(moved[0] - (x - 50)) <= 1 and abs(moved[1] - (y - 30)) <= 1, (x, y, moved)
    assert editor(page)["count"] == 0 and editor(page)["zoom"] == zoom
    drag(page, (150, 100), (200, 140))  # drawn zoomed and panned
    page.keyboard.press("f")
    assert editor(page)["zoom"] == 1
    page.keyboard.press("Enter")
    page.wait_for_selector("#done:not([hidden])")
    wait_settled(page, 1)
    page.keyboard.press("z")  # undo: the box comes back to be edited, then goes again as it was
    shown(page)
    assert editor(page)["count"] == 1
    page.keyboard.press("Enter")
    page.wait_for_selector("#done:not([hidden])")
    wait_settled(page, 2)
    ((b,),) = [a["label"] for a in answers_of(ws, p["id"], user["id"])]
    assert close_to(b[:4], [150, 100, 200, 140]) and b[4] == "car", b
    tab.assert_clean()
