"""Real-browser first run (issue 16 part 1): an empty workspace opens on
/setup; a wrong code is refused on the page; the printed code creates the
first admin, who lands on /admin logged in. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from test_browser import Tab, browser, server, tabs  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


def _fill(tab: Tab, code: str, password: str = "correct horse", again: str | None = None) -> None:
    tab.page.fill("#code", code)
    tab.page.fill("#username", "root")
    tab.page.fill("#password", password)
    tab.page.fill("#password2", password if again is None else again)
    tab.page.click("#setup-submit")


def test_first_admin_from_the_setup_page(ws, server, tabs):  # noqa: F811
    code = ws.setup_code()
    tab = tabs()
    tab.goto("/")
    tab.page.wait_for_url(tab.base + "/setup")
    tab.page.wait_for_selector("#password-rule:has-text('8 characters')")

    _fill(tab, code, again="something else")
    assert "differ" in tab.error_text()
    _fill(tab, "ZZZZ-ZZZZ-ZZZZ-ZZZZ")
    tab.page.wait_for_selector("#error:not([hidden])")
    tab.page.wait_for_function("() => document.querySelector('#error').textContent.includes('setup code')")
    assert ws.list_users() == []

    _fill(tab, code)
    tab.page.wait_for_url(tab.base + "/admin")
    users = ws.list_users()
    assert [(u["username"], u["role"]) for u in users] == [("root", "admin")]
    token = tab.page.evaluate("() => window.AssayAPI.getToken()")
    assert ws.authenticate(token)["username"] == "root"

    tab.goto("/setup")  # closed now
    tab.page.wait_for_url(tab.base + "/login")
