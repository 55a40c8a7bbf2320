"""Login links and the pages' Content-Security-Policy in a real browser
(issue 11, items 10, 11 and 25's stale link): headless Chromium against a live
server, as in tests/test_browser.py.

* ``next=`` sends a user only to a path of this origin, whatever the encoding.
* A login link never silently replaces the session of another user: the page
  asks. A stale link says so instead of redirecting silently.
* Every page, /docs included, runs under the strict CSP with no violation,
  and nothing is fetched from another origin.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from test_browser import Tab, browser, server, tabs  # noqa: F401 - fixtures
from factories import project_with_annotators

pytestmark = pytest.mark.browser

# ?next= values (as sent in the query string) that must not leave the site.
OFFSITE_NEXT = [
    "/%5Cevil.example", "%5C%5Cevil.example", "/%5C%5Cevil.example", "//evil.example",
    "%2F%2Fevil.example", "/%2F%2Fevil.example", "/%2Fevil.example", "https://evil.example/",
    "https:evil.example", "javascript:alert(1)", "JaVaScRiPt%3Aalert(1)", "/%09/evil.example",
    "%09//evil.example", "/%0A/evil.example", "/%0D%0A/evil.example", "%20//evil.example",
    "/%00/evil.example", "data:text/html,hi", "/login?next=//evil.example", "evil.example",
    "%5C/evil.example",
]
# odd, but paths of this site: followed, and still on this site
ODD_LOCAL_NEXT = ["/.//evil.example", "/%E2%80%8B/evil.example", "/%252F%252Fevil.example", "/%255Cevil.example"]


class Watched(Tab):
    """A tab that records CSP violations and every request to another origin."""

    def __init__(self, browser, base: str) -> None:
        super().__init__(browser, base)
        self.csp: list[str] = []
        self.foreign: list[str] = []
        here = urlsplit(base).netloc
        self.page.on("console", lambda m: self.csp.append(m.text)
                     if "Content Security Policy" in m.text else None)
        self.page.on("request", lambda r: self.foreign.append(r.url)
                     if urlsplit(r.url).scheme in ("http", "https") and urlsplit(r.url).netloc != here else None)
        # never leave the machine, whatever a page asks for
        self.context.route(lambda url: urlsplit(url).netloc != here and url.startswith("http"),
                           lambda route: route.abort())

    def token(self) -> str | None:
        return self.page.evaluate("localStorage.getItem('assay_token')")


@pytest.fixture
def watched(browser, server):  # noqa: F811 - fixtures imported above
    opened: list[Watched] = []

    def make() -> Watched:
        t = Watched(browser, server.base)
        opened.append(t)
        return t

    yield make
    for t in opened:
        t.context.close()


@pytest.mark.slow  # 5.5 s an instance
def test_login_link_next_stays_on_this_site(ws, watched):
    _, tok = ws.add_user("alice", "annotator")
    tab = watched()
    page = tab.page
    for nxt in OFFSITE_NEXT:
        tab.goto(f"/login?next={nxt}#token={tok}")
        page.wait_for_url(lambda url: urlsplit(url).path != "/login", timeout=10_000)
        page.wait_for_load_state()
        assert page.url == tab.base + "/", f"next={nxt!r} led to {page.url}"
    for nxt in ODD_LOCAL_NEXT:
        tab.goto(f"/login?next={nxt}#token={tok}")
        page.wait_for_url(lambda url: urlsplit(url).path != "/login", timeout=10_000)
        assert urlsplit(page.url).netloc == urlsplit(tab.base).netloc, f"next={nxt!r} led to {page.url}"
    # a plain path of this site is followed, query and fragment included
    tab.goto(f"/login?next=%2Fadmin%3Fx%3D1#token={tok}")
    page.wait_for_url(tab.base + "/admin?x=1")
    assert tab.foreign == [], tab.foreign
    assert tab.js_errors == [] and tab.csp == []


def test_login_link_never_silently_replaces_another_session(ws, watched):
    alice, alice_tok = ws.add_user("alice", "annotator")
    bob, bob_tok = ws.add_user("bob", "annotator")
    tab = watched()
    page = tab.page
    tab.login_link(alice_tok)
    assert tab.token() == alice_tok
    # bob's link while alice is logged in: the page asks, and changes nothing yet
    tab.goto(f"/login#token={bob_tok}")
    page.wait_for_selector("#link-switch:not([hidden])")
    text = page.inner_text("#link-switch")
    assert "alice" in text and "bob" in text, text
    assert tab.token() == alice_tok
    assert "token=" not in page.url  # the token left the address bar at once
    page.click("#link-stay")
    page.wait_for_url(tab.base + "/")
    assert tab.token() == alice_tok
    # asked again, the user switches on purpose
    tab.goto(f"/login#token={bob_tok}")
    page.click("#link-continue")
    page.wait_for_url(tab.base + "/")
    assert tab.token() == bob_tok
    # the same user's link goes straight on
    tab.goto(f"/login#token={bob_tok}")
    page.wait_for_url(tab.base + "/")
    assert tab.token() == bob_tok
    assert tab.js_errors == [] and tab.csp == []


def test_stale_login_link_says_so(ws, watched):
    _, alice_tok = ws.add_user("alice", "annotator")
    tab = watched()
    page = tab.page
    # a fresh browser, a link that is no good
    tab.goto("/login#token=asy_not_a_real_token")
    page.wait_for_selector("#error:not([hidden])")
    assert "not valid" in tab.error_text(), tab.error_text()
    assert page.url == tab.base + "/login" and tab.token() is None
    assert page.is_visible("#login-form")
    # logged in as alice, a stale link leaves her session alone
    tab.login_link(alice_tok)
    tab.goto("/login#token=asy_revoked_or_mistyped")
    page.wait_for_selector("#error:not([hidden])")
    assert "not valid" in tab.error_text()
    assert tab.token() == alice_tok
    assert tab.js_errors == [] and tab.csp == []


def test_every_page_runs_under_the_strict_csp(ws, watched):
    p, _ = project_with_annotators(ws, 4, 0)
    _, admin_tok = ws.add_user("root", "admin")
    ann, ann_tok = ws.add_user("alice", "annotator")
    ws.add_member(p["id"], ann["id"])
    tab = watched()
    page = tab.page
    tab.goto("/login")
    page.wait_for_selector("#login-form")
    tab.login_link(ann_tok)
    page.wait_for_selector("a[href^='/label/']")
    tab.goto(f"/label/{p['id']}")
    page.wait_for_selector("#classes button.class-btn:not([disabled])")
    page.wait_for_function("() => !document.getElementById('item').hidden")
    tab.goto(f"/login#token={admin_tok}")
    page.click("#link-continue")
    page.wait_for_url(tab.base + "/")
    for path in ("/admin", f"/quality/{p['id']}", f"/search/{p['dataset_id']}"):
        tab.goto(path)
        page.wait_for_load_state("networkidle")
    tab.goto("/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "assay" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".swagger-ui .opblock")
    assert page.locator(".swagger-ui .opblock").count() > 20
    assert tab.csp == [], tab.csp
    assert tab.foreign == [], tab.foreign
    assert tab.js_errors == [], tab.js_errors
