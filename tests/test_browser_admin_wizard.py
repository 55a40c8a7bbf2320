"""Real-browser test of the new-project wizard (/admin/projects/new, issue 16
part 3), on SQLite and PostgreSQL: an admin creates a multi-label project with
classes that have descriptions and their own keys (one moved up, one added and
removed), Markdown instructions and several non-default settings, all in the
browser; the project stored has exactly them. The form has a control for every
setting creation takes and the project page one for every setting (both read
from the settings schema); a bad submission shows the server's message and
creates nothing; the instructions that reach annotators are rendered Markdown
with their script, image handler and javascript: link inert."""

from __future__ import annotations

import re

import pytest

from assay.engine import settings as project_settings
from factories import count, text_dataset
from test_browser import Tab, browser, server, tabs, wait_ready  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

INSTRUCTIONS = ("# Read me\n\nLabel the **tone** of each review.\n\n"
                "<script>window.__xss = 1</script>\n\n<img src=x onerror=\"window.__xss = 2\">\n\n"
                "[click me](javascript:window.__xss=3) and [the guide](https://example.org/guide)")


def _class_row(page, n: int, name: str, desc: str = "", key: str = "") -> None:
    page.fill(f"#class-{n}-name", name)
    page.fill(f"#class-{n}-description", desc)
    page.fill(f"#class-{n}-key", key)


def _assert_inert(page, root: str) -> None:
    """Markdown rendered under ``root``; its raw HTML is text and its script link no link."""
    page.locator(f"{root} h1").filter(has_text="Read me").wait_for()
    assert page.locator(f"{root} strong").inner_text() == "tone"
    assert page.locator(f"{root} script, {root} img").count() == 0
    assert page.locator(f"{root} a").count() == 1  # only the https link
    assert page.locator(f"{root} a").get_attribute("href") == "https://example.org/guide"
    text = page.locator(root).inner_text()
    assert "<script>window.__xss = 1</script>" in text and "<img src=x onerror=" in text
    assert "[click me](javascript:window.__xss=3)" in text
    assert page.evaluate("() => window.__xss") is None


def test_wizard_creates_exactly_the_project_asked_for(ws, tabs):  # noqa: F811
    ds = text_dataset(ws, "reviews", ["great soup", "dull film", "fine hotel"])
    _, admin = ws.add_user("boss", "admin")
    tab = tabs()
    page = tab.page
    tab.login_link(admin)
    tab.goto("/admin")
    page.click("#new-project")
    page.wait_for_url(f"{tab.base}/admin/projects/new")
    page.wait_for_selector("body[data-ready='1']")

    # every setting creation takes has its control and label, and no other setting does
    rows = project_settings.schema()
    create = [r["name"] for r in rows if r["at_create"]]
    assert create, "the schema lists create-time settings"
    for name in create:
        assert page.locator(f"#create-settings input#new-{name}").count() == 1, name
        assert page.locator(f"#create-settings label[for='new-{name}']").count() == 1, name
    assert page.locator("#create-settings [data-setting]").count() == len(create)
    # every registered kind is offered, with its description
    from assay import kinds
    for k in kinds.describe():
        assert page.locator(f"#kind-{k['name']}").count() == 1
        assert k["description"] in page.locator(f"#kind-{k['name']}-help").inner_text()

    page.fill("#p-name", "Tone")
    page.select_option("#p-dataset", str(ds["id"]))
    page.check("#kind-multi")
    _class_row(page, 1, "positive", "Praise, even mild", "p")
    _class_row(page, 2, "negative", "Complaints", "P")  # the same key as positive: refused below
    page.click("#class-add")
    _class_row(page, 3, "mixed", "Both at once")
    page.click("#class-add")
    _class_row(page, 4, "junk")
    page.click("button[aria-label='Remove class 4']")
    page.click("button[aria-label='Move class 3 up']")  # order: positive, mixed, negative
    page.fill("#p-instructions", INSTRUCTIONS)
    _assert_inert(page, "#instructions-preview")
    page.fill("#new-overlap", "2")
    page.fill("#new-lease_seconds", "120")
    page.fill("#new-show_fields", "source, lang")
    page.fill("#new-gold_rate", "0.1")
    page.fill("#new-gold_min_answers", "7")

    # a bad submission (two classes share a key): the server's message, nothing created
    before = count(ws, "projects")
    page.locator("#p-name").press("Enter")
    page.locator("#error").filter(has_text="'negative': key 'P' is already the key of class 'positive'").wait_for()
    assert count(ws, "projects") == before
    assert page.url == f"{tab.base}/admin/projects/new"
    page.set_viewport_size({"width": 1280, "height": 2600})
    tab.screenshot(ws, "admin-project-new")
    page.set_viewport_size({"width": 1280, "height": 800})

    page.fill("#class-3-key", "x")
    page.locator("#p-name").press("Enter")
    page.wait_for_url(re.compile(r"/admin/projects/\d+$"))
    pid = int(page.url.rsplit("/", 1)[1])
    p = ws.get_project(pid)
    assert p["name"] == "Tone" and p["dataset_id"] == ds["id"]
    assert p["schema"]["kind"] == "multi"
    assert p["schema"]["classes"] == [
        {"name": "positive", "description": "Praise, even mild", "key": "p"},
        {"name": "mixed", "description": "Both at once"},
        {"name": "negative", "description": "Complaints", "key": "x"}]
    assert p["schema"]["instructions"] == INSTRUCTIONS
    assert (p["overlap"], p["lease_seconds"], p["show_fields"]) == (2, 120, ["source", "lang"])
    assert (p["gold_rate"], p["gold_min_answers"]) == (0.1, 7)
    assert p["target_confidence"] is None and p["exam_size"] is None  # left empty: defaults
    assert count(ws, "projects") == before + 1

    # the project page's Settings section: a control for every setting, changeable ones enabled
    page.locator("#project-name").filter(has_text="Tone").wait_for()
    page.locator("#settings-form input#set-lease_seconds").wait_for()
    for r in rows:
        box = page.locator(f"#settings-form input#set-{r['name']}")
        assert box.count() == 1, r["name"]
        assert box.is_enabled() == r["changeable"], r["name"]
    assert page.locator("#set-lease_seconds").input_value() == "120"
    tab.assert_clean()

    # the annotator's screen: rendered instructions, inert; the classes' own keys
    ann, token = ws.add_user("ann")
    ws.add_member(pid, ann["id"])
    atab = tabs()
    atab.login_link(token)
    atab.goto(f"/label/{pid}")
    wait_ready(atab.page)
    _assert_inert(atab.page, "#instructions")
    keys = atab.page.eval_on_selector_all("#classes .class-btn", "bs => bs.map(b => [b.dataset.class, b.dataset.key])")
    assert keys == [["positive", "p"], ["mixed", "1"], ["negative", "x"]]
    assert "Class keys: p positive, 1 mixed, x negative." in atab.page.locator("#keys-help").inner_text()
    atab.page.wait_for_selector("#item:not([hidden])")
    atab.page.keyboard.press("x")
    atab.page.wait_for_selector(".class-btn[data-class='negative'][aria-pressed='true']")
    atab.page.keyboard.press("P")  # its own key in either case
    atab.page.wait_for_selector(".class-btn[data-class='positive'][aria-pressed='true']")
    atab.screenshot(ws, "label-class-keys-instructions")
    atab.assert_clean()


def test_wizard_kind_option_and_refused_model_url(ws, tabs):  # noqa: F811
    ds = text_dataset(ws, "d", ["a", "b"])
    _, admin = ws.add_user("boss", "admin")
    tab = tabs()
    page = tab.page
    tab.login_link(admin)
    tab.goto(f"/admin/projects/new?dataset={ds['id']}")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#p-dataset").input_value() == str(ds["id"])
    page.fill("#p-name", "With model")
    assert page.locator("#kopt-overlap").count() == 0  # single labels have no options of their own
    page.check("#kind-spans")
    page.check("#kopt-overlap")  # the spans kind's own option (GET /api/kinds)
    _class_row(page, 1, "yes")
    _class_row(page, 2, "no")
    page.fill("#p-backend", "python:no-such-backend")
    page.click("#create")
    page.locator("#error").filter(has_text="The model URL was not accepted").wait_for()
    page.locator("#create-status a").filter(has_text="Open it").wait_for()
    p = ws.get_project("With model")
    assert p["ml_backend_url"] is None and [c["name"] for c in p["schema"]["classes"]] == ["yes", "no"]
    assert p["schema"]["kind"] == "spans" and p["schema"]["overlap"] is True
    assert page.url.endswith("/admin/projects/new?dataset=" + str(ds["id"]))


def test_wizard_offers_only_kinds_that_fit_the_dataset(ws, tabs, tmp_path):  # noqa: F811
    from PIL import Image

    from assay import kinds
    from factories import image_bytes, make_zip

    texts = text_dataset(ws, "texts", ["a", "b"])
    pics = [Image.new("RGB", (8, 8), (40 * i, 0, 0)) for i in range(2)]
    ws.create_dataset("pics")
    ws.import_zip("pics", make_zip(tmp_path / "pics.zip", {f"p{i}.png": image_bytes(im, "PNG") for i, im in enumerate(pics)}))
    pics_id = ws.get_dataset("pics")["id"]
    assert ws.get_dataset("texts")["item_kinds"] == ["text"] and ws.get_dataset("pics")["item_kinds"] == ["image"]
    image_only = [k["name"] for k in kinds.describe() if k["item_kinds"] == ["image"]]
    assert image_only  # boxes and polygons: the registry has kinds this check is about
    _, admin = ws.add_user("boss", "admin")
    tab = tabs()
    page = tab.page
    tab.login_link(admin)
    tab.goto(f"/admin/projects/new?dataset={texts['id']}")
    page.wait_for_selector("body[data-ready='1']")
    for name in image_only:  # a text dataset: image kinds are off, with the reason
        assert page.locator(f"#kind-{name}").is_disabled()
        assert "holds text items" in page.locator(f"#kind-{name}-unfit").inner_text()
    assert page.locator("#kind-single").is_enabled()
    page.select_option("#p-dataset", str(pics_id))  # an image dataset: they are offered
    page.locator(f"#kind-{image_only[0]}:enabled").wait_for()
    assert all(page.locator(f"#kind-{name}").is_enabled() for name in image_only)
    assert page.locator(f"#kind-{image_only[0]}-unfit").is_hidden()
    page.check(f"#kind-{image_only[0]}")
    page.select_option("#p-dataset", str(texts["id"]))  # back: the chosen image kind gives way
    page.locator(f"#kind-{image_only[0]}:disabled").wait_for()
    picked = page.eval_on_selector("input[name=kind]:checked", "r => r.value")
    assert picked not in image_only
    tab.assert_clean()
