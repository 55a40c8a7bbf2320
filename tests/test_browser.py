"""Real-browser tests of the UI: headless Chromium (playwright) against a real
uvicorn server over ``create_app(ws)``, on SQLite and on PostgreSQL.

Only the keyboard is used to label, as an annotator would. Every check of
what was stored reads the database through the same workspace the server
uses. Screenshots go to ``test-artifacts/`` at the repository root.

Chromium: Debian's ``/usr/bin/chromium`` (never a downloaded one). Where it or
playwright is missing the tests skip locally and fail in CI
(``REQUIRE_BROWSER``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import JSON, text

from _server import LiveServer
from conftest import REQUIRE_BROWSER
from assay.errors import Unauthorized
from factories import count, mnist_digits, text_dataset

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("ASSAY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
TIMEOUT_MS = 10_000
PASSWORD = "correct horse"


def _no_browser(reason: str):
    if REQUIRE_BROWSER:
        pytest.fail(f"a browser is required here (CI / ASSAY_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the whole module (each test gets a fresh context)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _no_browser(f"playwright is not installed ({exc})")
    if not Path(CHROMIUM).exists():
        _no_browser(f"no Chromium at {CHROMIUM} (set ASSAY_CHROMIUM)")
    pw = sync_playwright().start()
    try:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        except Exception as exc:  # noqa: BLE001 - any launch failure
            _no_browser(f"Chromium at {CHROMIUM} does not start: {exc}")
        yield b
        b.close()
    finally:
        pw.stop()


@pytest.fixture
def server(ws):
    with LiveServer(ws) as srv:
        yield srv


class Tab:
    """A page in its own browser context, recording uncaught JS errors."""

    def __init__(self, browser, base: str) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": 1280, "height": 800},
                                           accept_downloads=True)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.js_errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.js_errors.append(str(exc)))
        self.refused_next: list[str] = []  # tasks/next answered 409 ("you hold too many")
        self.page.on("response", self._on_response)

    def _on_response(self, r) -> None:
        if r.status == 409 and r.url.endswith("/tasks/next"):
            self.refused_next.append(r.url)

    def goto(self, path: str) -> None:
        self.page.goto(self.base + path)

    def login_link(self, token: str) -> None:
        """Follow a ``/login#token=…`` link; it lands on ``/``."""
        self.goto(f"/login#token={token}")
        self.page.wait_for_url(self.base + "/")

    def error_text(self) -> str:
        box = self.page.locator("#error")
        return box.inner_text() if box.is_visible() else ""

    def assert_clean(self) -> None:
        assert self.js_errors == [], f"uncaught JS errors: {self.js_errors}"
        # The page must not ask for more tasks than the server lets one user hold.
        assert self.refused_next == [], f"tasks/next refused (409) {len(self.refused_next)} times"
        assert self.error_text() == "", f"#error shows: {self.error_text()!r}"

    def screenshot(self, ws, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        suffix = "" if ws.db.dialect == "sqlite" else f"-{ws.db.dialect}"
        self.page.screenshot(path=str(ARTIFACTS / f"{name}{suffix}.png"))


@pytest.fixture
def tabs(browser, server):
    """``tabs()`` opens a fresh tab on the live server; all are closed at the end."""
    opened: list[Tab] = []

    def make() -> Tab:
        t = Tab(browser, server.base)
        opened.append(t)
        return t

    yield make
    for t in opened:
        t.context.close()


# ---------------------------------------------------------------- helpers


def item_texts(ws, dataset_id: int) -> dict[int, str]:
    with ws.db.read() as conn:
        return dict(conn.execute(text("SELECT id, text FROM items WHERE dataset_id = :d"),
                                 {"d": dataset_id}).all())


def task_of_item(ws, project_id: int) -> dict[int, int]:
    with ws.db.read() as conn:
        return {i: t for t, i in conn.execute(
            text("SELECT id, item_id FROM tasks WHERE project_id = :p"), {"p": project_id}).all()}


def live_leases(ws, user_id: int) -> set[int]:
    with ws.db.read() as conn:
        return set(conn.execute(text(
            "SELECT task_id FROM leases WHERE annotator_id = :u AND expires_at > :now"),
            {"u": user_id, "now": time.time()}).scalars())


def answers_of(ws, project_id: int, user_id: int) -> list[dict]:
    rows, _ = ws.list_answers(project_id, annotator_id=user_id, limit=1000)
    return rows


def open_label_page(ws, tabs, p, name="alice"):  # noqa: F811 - tabs is the fixture's value
    """A new annotator ``name``, member of ``p``, logged in on the labeling
    page of ``p`` in a new tab, once its classes are shown. Returns ``(tab, user)``."""
    user, token = ws.add_user(name)
    ws.add_member(p["id"], user["id"])
    tab = tabs()
    tab.login_link(token)
    tab.goto(f"/label/{p['id']}")
    wait_ready(tab.page)
    return tab, user


def wait_ready(page) -> None:
    """The project is loaded: class buttons exist and are enabled."""
    page.wait_for_selector("#classes button.class-btn:not([disabled])")


def wait_item(page, *, other_than: str | None = None) -> dict:
    """Wait until an item is on screen (a different task than ``other_than``)."""
    page.wait_for_function(
        """(prev) => {
            const it = document.getElementById('item');
            return !it.hidden && it.dataset.taskId && it.dataset.taskId !== prev;
        }""", arg=other_than)
    info = page.evaluate("""() => {
        const it = document.getElementById('item');
        return {task_id: it.dataset.taskId, item_id: it.dataset.itemId, kind: it.dataset.kind,
                text: document.getElementById('item-text').textContent};
    }""")
    info["item_id"] = int(info["item_id"])
    return info


def wait_settled(page, submitted: int) -> None:
    """Wait until ``submitted`` answers are acknowledged and nothing is in flight."""
    page.wait_for_function(
        """(n) => Number(document.body.dataset.submitted) >= n
                  && document.body.dataset.pending === '0'""", arg=submitted)
    assert int(page.get_attribute("body", "data-submitted")) == submitted


def press(page, key: str, shown: dict) -> dict | None:
    """Press ``key`` on the item ``shown``; returns the next item once it is on screen."""
    page.keyboard.press(key)
    return wait_item(page, other_than=shown["task_id"])


# ---------------------------------------------------------------- 1. text, keyboard only


def test_label_text_with_keyboard_skip_and_undo(ws, tabs):
    texts = [f"Review {i}: the {w} was {a}." for i, (w, a) in enumerate(
        [("soup", "great"), ("film", "dull"), ("hotel", "fine"), ("bike", "broken"),
         ("phone", "superb"), ("train", "late"), ("cafe", "cosy"), ("book", "long")])]
    ds = text_dataset(ws, "reviews", texts)
    p = ws.create_project("sentiment", ds["id"], ["positive", "negative"],
                          instructions="Is the review positive or negative?")
    alice, _ = ws.add_user("alice", "annotator", PASSWORD)
    ws.add_member(p["id"], alice["id"])
    by_id = item_texts(ws, ds["id"])
    tasks = task_of_item(ws, p["id"])

    tab = tabs()
    page = tab.page
    # Log in through the form (a wrong password first: the error shows, nothing breaks).
    tab.goto("/login")
    page.fill("#username", "alice")
    page.fill("#password", "wrong password")
    page.click("#login-submit")
    page.wait_for_selector("#error:not([hidden])")
    assert "wrong username or password" in tab.error_text()
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(tab.base + "/")
    page.wait_for_selector(f"#projects li[data-project-id='{p['id']}']")
    page.click(f"#projects li[data-project-id='{p['id']}'] a.label-link")
    page.wait_for_url(tab.base + f"/label/{p['id']}")
    wait_ready(page)
    assert page.get_attribute("body", "data-kind") == "single"
    assert page.locator("#instructions").inner_text() == "Is the review positive or negative?"
    assert page.locator("#submit").is_hidden()  # single-label: keys submit at once
    buttons = page.locator("#classes button.class-btn")
    assert [buttons.nth(i).get_attribute("data-class") for i in range(2)] == ["positive", "negative"]
    assert [buttons.nth(i).get_attribute("data-key") for i in range(2)] == ["1", "2"]
    # an annotator sees their own count only (project totals would tell gold apart)
    page.wait_for_function("() => document.getElementById('progress').dataset.done === '0'")
    assert page.locator("#progress").inner_text() == "done 0"

    expected: dict[int, str] = {}  # item id -> label
    seen: list[int] = []

    def shown_ok(info: dict) -> dict:
        # The text on screen is the text of the item the page says it shows.
        assert info["kind"] == "text"
        assert info["text"] == by_id[info["item_id"]], info
        assert int(info["task_id"]) == tasks[info["item_id"]]
        assert info["item_id"] not in seen, f"item {info['item_id']} shown twice"
        seen.append(info["item_id"])
        return info

    cur = shown_ok(wait_item(page))
    a = cur["item_id"]
    cur = press(page, "1", cur)               # a: positive
    expected[a] = "positive"
    page.wait_for_function("() => document.getElementById('progress').dataset.done === '1'")
    assert page.locator("#progress").inner_text() == "done 1"

    cur = shown_ok(cur)
    b = cur["item_id"]
    cur = press(page, "2", cur)               # b: negative
    expected[b] = "negative"

    cur = shown_ok(cur)
    c = cur["item_id"]
    cur = press(page, "s", cur)               # c: skipped
    page.wait_for_function("() => document.getElementById('status').textContent === 'skipped'")

    cur = shown_ok(cur)
    d = cur["item_id"]
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/answers")) as first:
        cur = press(page, "1", cur)           # d: positive … then undone
    first_answer = first.value.json()["answer"]
    assert first_answer["item_id"] == d and first_answer["label"] == "positive"
    e_shown = shown_ok(cur)

    page.keyboard.press("z")                  # undo: d comes back at once
    back = wait_item(page, other_than=e_shown["task_id"])
    assert back["item_id"] == d and back["text"] == by_id[d]
    page.wait_for_function("() => document.getElementById('status').textContent === 'undone'")
    # The earlier choice is marked, so the annotator sees what they are changing.
    assert "was-selected" in (page.get_attribute("button.class-btn[data-class='positive']", "class") or "")
    with ws.db.read() as conn:
        gone = conn.execute(text("SELECT count(*) FROM answers WHERE id = :a"),
                            {"a": first_answer["id"]}).scalar_one()
    assert gone == 0, "undo did not delete the first answer"
    assert tasks[d] in live_leases(ws, alice["id"]), "the undone task is not leased back"

    cur = press(page, "2", back)              # d relabelled: negative
    expected[d] = "negative"
    assert cur["task_id"] == e_shown["task_id"], "after relabelling, the item shown before undo comes next"
    e = cur["item_id"]
    cur = press(page, "2", cur)               # e: negative
    expected[e] = "negative"
    cur = shown_ok(cur)
    f = cur["item_id"]
    nxt = press(page, "1", cur)               # f: positive
    expected[f] = "positive"
    shown_ok(nxt)

    # 6 answers acknowledged (a, b, d, d again, e, f); nothing in flight.
    wait_settled(page, 6)
    page.wait_for_function("() => document.getElementById('progress').dataset.done === '5'")
    assert page.locator("#progress").inner_text() == "done 5"
    tab.screenshot(ws, "label-text")

    stored = answers_of(ws, p["id"], alice["id"])
    assert {r["item_id"]: r["label"] for r in stored} == expected
    assert len(stored) == 5 and len({r["item_id"] for r in stored}) == 5
    for r in stored:
        assert r["task_id"] == tasks[r["item_id"]] and r["project_id"] == p["id"]
    d_rows = [r for r in stored if r["item_id"] == d]
    assert len(d_rows) == 1 and d_rows[0]["id"] != first_answer["id"] and d_rows[0]["label"] == "negative"
    # The skipped item: one skip row, no answer from alice.
    assert c not in {r["item_id"] for r in stored}
    assert count(ws, "skips", "task_id = :t AND annotator_id = :u", t=tasks[c], u=alice["id"]) == 1
    assert count(ws, "skips", "annotator_id = :u", u=alice["id"]) == 1
    prog = ws.progress(p["id"])
    assert (prog["tasks"], prog["done"], prog["remaining"], prog["answers"]) == (8, 5, 3, 5)
    mine = next(a for a in prog["annotators"] if a["user_id"] == alice["id"])
    assert (mine["answers"], mine["skips"]) == (5, 1)
    tab.assert_clean()


# ---------------------------------------------------------------- 2. images


def test_label_images(ws, tabs, shared_data, tmp_path):
    folder = tmp_path / "digits"
    folder.mkdir()
    truth: dict[str, int] = {}
    for i, (im, digit) in enumerate(mnist_digits(shared_data, 5)):
        im.save(folder / f"digit{i}.png")
        truth[f"digit{i}.png"] = digit
    ds = ws.create_dataset("digits")
    assert ws.import_file(ds["id"], folder)["added"] == 5
    classes = ["low (0-4)", "high (5-9)"]
    p = ws.create_project("mnist", ds["id"], classes, instructions="Is the digit below 5?")
    ann, token = ws.add_user("ann", "annotator")
    ws.add_member(p["id"], ann["id"])
    with ws.db.read() as conn:
        digit_of = {r.id: truth[r.meta["file"]] for r in conn.execute(
            text("SELECT id, meta FROM items WHERE dataset_id = :d").columns(meta=JSON),
            {"d": ds["id"]})}

    tab = tabs()
    page = tab.page
    tab.login_link(token)
    tab.goto(f"/label/{p['id']}")
    wait_ready(page)
    expected: dict[int, str] = {}
    cur = wait_item(page)
    for n in range(5):
        assert cur["kind"] == "image" and cur["text"] == ""
        page.wait_for_function("""() => {
            const img = document.getElementById('item-image');
            return !img.hidden && img.src.startsWith('blob:') && img.complete && img.naturalWidth > 0;
        }""")
        size = page.evaluate("""() => { const img = document.getElementById('item-image');
            const r = img.getBoundingClientRect();
            return {nw: img.naturalWidth, nh: img.naturalHeight, w: r.width, h: r.height}; }""")
        assert (size["nw"], size["nh"]) == (28, 28)
        # A 28×28 digit is blown up to a readable size, keeping its aspect ratio.
        assert size["h"] >= 300 and size["w"] >= 300, size
        assert page.locator("#item-text").is_hidden()
        if n == 2:
            tab.screenshot(ws, "label-image")
        label = classes[0] if digit_of[cur["item_id"]] < 5 else classes[1]
        expected[cur["item_id"]] = label
        page.keyboard.press("1" if label == classes[0] else "2")
        if n < 4:
            cur = wait_item(page, other_than=cur["task_id"])
    page.wait_for_selector("#done:not([hidden])")  # all 5 labelled: the done state shows
    assert page.locator("#item").is_hidden()
    wait_settled(page, 5)
    stored = answers_of(ws, p["id"], ann["id"])
    assert {r["item_id"]: r["label"] for r in stored} == expected
    assert ws.progress(p["id"])["remaining"] == 0
    tab.assert_clean()


# ---------------------------------------------------------------- 3. multi-label


def test_multi_label_keys_and_enter(ws, tabs):
    ds = text_dataset(ws, "scenes", ["a cat chasing a bird", "a fish tank", "an empty room"])
    classes = ["cat", "dog", "bird", "fish"]
    p = ws.create_project("animals", ds["id"], classes, kind="multi")
    ann, token = ws.add_user("ann", "annotator")
    ws.add_member(p["id"], ann["id"])

    tab = tabs()
    page = tab.page
    tab.login_link(token)
    tab.goto(f"/label/{p['id']}")
    wait_ready(page)
    assert page.get_attribute("body", "data-kind") == "multi"
    assert page.locator("#submit").is_visible()

    def pressed() -> dict[str, str]:
        return {c: page.get_attribute(f"button.class-btn[data-class='{c}']", "aria-pressed")
                for c in classes}

    first = wait_item(page)
    assert pressed() == dict.fromkeys(classes, "false")
    page.keyboard.press("3")  # bird
    page.keyboard.press("1")  # cat
    page.keyboard.press("2")  # dog on …
    page.keyboard.press("2")  # … and off again
    assert pressed() == {"cat": "true", "dog": "false", "bird": "true", "fish": "false"}
    assert page.locator("button.class-btn.is-selected").count() == 2
    assert wait_item(page)["task_id"] == first["task_id"]  # toggling does not submit
    page.keyboard.press("Enter")
    second = wait_item(page, other_than=first["task_id"])
    assert pressed() == dict.fromkeys(classes, "false")  # a fresh item starts empty

    page.keyboard.press("Enter")  # nothing chosen: not submitted
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('pick at least one')")
    assert page.get_attribute("#item", "data-task-id") == second["task_id"]
    page.keyboard.press("4")  # fish
    page.keyboard.press("Enter")
    wait_item(page, other_than=second["task_id"])
    wait_settled(page, 2)

    stored = {r["item_id"]: r["label"] for r in answers_of(ws, p["id"], ann["id"])}
    assert stored == {first["item_id"]: ["cat", "bird"], second["item_id"]: ["fish"]}
    tab.assert_clean()


# ---------------------------------------------------------------- 4. login link, project list


def test_login_link_lists_only_member_projects(ws, tabs):
    ds = text_dataset(ws, "d", ["one", "two"])
    mine = ws.create_project("mine", ds["id"], ["a", "b"])
    other = ws.create_project("not mine", ds["id"], ["a", "b"])
    bob, token = ws.add_user("bob", "annotator")
    ws.add_member(mine["id"], bob["id"])

    tab = tabs()
    page = tab.page
    tab.login_link(token)
    assert page.url == tab.base + "/"  # the token is not left in the address
    assert page.evaluate("localStorage.getItem('assay_token')") == token
    page.wait_for_function("() => document.getElementById('me').textContent.length > 0")
    assert page.locator("#me").inner_text() == "bob (annotator)"
    assert page.locator("#admin-link").is_hidden()
    row = page.locator(f"#projects li[data-project-id='{mine['id']}']")
    assert row.locator(".project-name").inner_text() == "mine"
    assert row.locator("a.label-link").get_attribute("href") == f"/label/{mine['id']}"
    assert page.locator("#projects li[data-project-id]").count() == 1
    assert page.locator(f"#projects li[data-project-id='{other['id']}']").count() == 0
    # Opening the other project directly shows an error instead of tasks.
    tab.goto(f"/label/{other['id']}")
    page.wait_for_selector("#error:not([hidden])")
    assert "does not exist" in tab.error_text()
    assert page.locator("#item").is_hidden()
    assert ws.progress(other["id"])["in_progress"] == 0
    # Log out: the token is gone and pages send you to /login.
    tab.goto("/")
    page.click("#logout")
    page.wait_for_url(tab.base + "/login")
    assert page.evaluate("localStorage.getItem('assay_token')") is None
    with pytest.raises(Unauthorized):  # the server revoked it (and forgot its cached check) at once
        ws.authenticate(token)
    tab.goto("/")
    page.wait_for_url(tab.base + "/login")
    assert tab.js_errors == []


# ---------------------------------------------------------------- 5. admin dashboard


def test_admin_page_shows_stats_and_annotators(ws, tabs, tmp_path):
    ds = text_dataset(ws, "d", [f"text {i}" for i in range(6)])
    p = ws.create_project("dash", ds["id"], ["yes", "no"])
    _, admin_token = ws.add_user("root", "admin")
    ann0, _ = ws.add_user("ann0", "annotator")
    ann1, _ = ws.add_user("ann1", "annotator")
    for u in (ann0, ann1):
        ws.add_member(p["id"], u["id"])
    for label in ("yes", "no", "yes"):
        ws.submit(ws.next_task(p["id"], ann0)["id"], ann0, label)
    ws.skip(ws.next_task(p["id"], ann0)["id"], ann0)
    ws.submit(ws.next_task(p["id"], ann1)["id"], ann1, "no")
    ws.next_task(p["id"], ann1)  # held: one task in progress

    tab = tabs()
    page = tab.page
    tab.login_link(admin_token)
    page.wait_for_selector("#admin-link:not([hidden])")
    page.click("#admin-link")
    page.wait_for_url(tab.base + "/admin")
    card = page.locator(f"section[data-project-id='{p['id']}']")
    card.locator("dd[data-stat='tasks']").filter(has_text="6").wait_for()
    stats = {k: card.locator(f"dd[data-stat='{k}']").inner_text()
             for k in ("tasks", "done", "remaining", "answers", "in_progress")}
    assert stats == {"tasks": "6", "done": "4", "remaining": "2", "answers": "4", "in_progress": "1"}
    rows = {}
    for u in (ann0, ann1):
        cells = card.locator(f"tr[data-user-id='{u['id']}'] td")
        rows[u["username"]] = [cells.nth(i).inner_text() for i in range(cells.count())]
    assert rows == {"ann0": ["ann0", "3", "1"], "ann1": ["ann1", "1", "0"]}
    assert card.locator("tr[data-user-id]").count() == 2
    formats = card.locator("a.export-link")
    assert [formats.nth(i).get_attribute("data-format") for i in range(formats.count())] == \
        ["jsonl", "csv", "parquet"]
    tab.screenshot(ws, "admin")

    # The export link downloads the labels with the admin's token.
    with page.expect_download() as dl:
        card.locator("a.export-link[data-format='jsonl']").click()
    path = tmp_path / "export.jsonl"
    dl.value.save_as(path)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 6
    assert sorted(r["label"] for r in records if r["label"] is not None) == ["no", "no", "yes", "yes"]
    tab.assert_clean()


# ---------------------------------------------------------------- 6. prefetch


def test_next_item_is_leased_ahead(ws, tabs):
    ds = text_dataset(ws, "d", [f"sentence {i}" for i in range(6)])
    p = ws.create_project("fast", ds["id"], ["a", "b"])
    ann, token = ws.add_user("ann", "annotator")
    ws.add_member(p["id"], ann["id"])

    tab = tabs()
    page = tab.page
    tab.login_link(token)
    tab.goto(f"/label/{p['id']}")
    wait_ready(page)
    first = wait_item(page)
    # label.js leases QUEUE_TARGET = 2 tasks ahead of the one on screen.
    deadline = time.monotonic() + 5
    while len(live_leases(ws, ann["id"])) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    held = live_leases(ws, ann["id"])
    assert int(first["task_id"]) in held
    assert len(held) == 3, f"expected the item on screen + 2 leased ahead, got leases {held}"
    time.sleep(0.3)
    assert live_leases(ws, ann["id"]) == held, "the page keeps leasing more tasks"

    # Answering shows the next item in the same tick: it was already leased, no request waited on.
    next_id = page.evaluate("""() => {
        document.dispatchEvent(new KeyboardEvent('keydown', {key: '1', code: 'Digit1', bubbles: true}));
        return document.getElementById('item').dataset.taskId;
    }""")
    assert next_id != first["task_id"] and int(next_id) in held
    wait_settled(page, 1)
    deadline = time.monotonic() + 5
    while len(live_leases(ws, ann["id"])) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    now_held = live_leases(ws, ann["id"])
    assert len(now_held) == 3 and int(first["task_id"]) not in now_held and int(next_id) in now_held
    stored = answers_of(ws, p["id"], ann["id"])
    assert [(r["item_id"], r["label"]) for r in stored] == [(first["item_id"], "a")]
    tab.assert_clean()


# ---------------------------------------------------------------- keys for any class names


def test_digit_classes_get_their_own_keys(ws, tabs):
    """Classes 0…9 (digits): key N records class "N"; a mix of digit and word
    classes never shares a key; every button shows its key."""
    ds = text_dataset(ws, "digits", [f"digit image {i}" for i in range(12)])
    p = ws.create_project("mnist", ds["id"], [str(d) for d in range(10)])
    q = ws.create_project("mixed", ds["id"], ["cat", "2", "dog", "1"])
    alice, token = ws.add_user("alice", "annotator", PASSWORD)
    ws.add_member(p["id"], alice["id"])
    ws.add_member(q["id"], alice["id"])
    tab = tabs()
    page = tab.page
    tab.login_link(token)
    tab.goto(f"/label/{p['id']}")
    wait_ready(page)
    buttons = page.locator("#classes button.class-btn")
    shown = [(buttons.nth(i).get_attribute("data-class"), buttons.nth(i).get_attribute("data-key"),
              buttons.nth(i).locator("kbd").inner_text()) for i in range(10)]
    assert shown == [(str(d), str(d), str(d)) for d in range(10)]
    cur = wait_item(page)
    pressed = {}
    for key in ("1", "9", "0", "5"):
        pressed[cur["item_id"]] = key
        cur = press(page, key, cur)
    wait_settled(page, 4)
    stored = {a["item_id"]: a["label"] for a in answers_of(ws, p["id"], alice["id"])}
    assert stored == pressed  # the key pressed is the class recorded

    tab.goto(f"/label/{q['id']}")
    wait_ready(page)
    keys = {buttons.nth(i).get_attribute("data-class"): buttons.nth(i).get_attribute("data-key") for i in range(4)}
    assert keys == {"cat": "3", "2": "2", "dog": "4", "1": "1"}
    cur = wait_item(page)
    first = cur["item_id"]
    cur = press(page, "3", cur)
    second = cur["item_id"]
    press(page, "2", cur)
    wait_settled(page, 2)
    assert {a["item_id"]: a["label"] for a in answers_of(ws, q["id"], alice["id"])} == {first: "cat", second: "2"}
    tab.assert_clean()
