/* Login page: password form, and `#token=...` login links. */
(function () {
  "use strict";
  const api = window.AssayAPI;

  /** Where to go after login: ?next= as an absolute URL of this origin, else "/".
   * Only a plain path counts: no scheme, no "//host", no backslash (browsers
   * read "/\evil" as "//evil"), no control or white-space characters. */
  function target() {
    const next = new URLSearchParams(location.search).get("next");
    if (!next || next.charAt(0) !== "/" || next.charAt(1) === "/" || /[\\\s\u0000-\u001f\u007f]/.test(next)) {
      return "/";
    }
    let url;
    try { url = new URL(next, location.origin); } catch (e) { return "/"; }
    if (url.origin !== location.origin || url.pathname === "/login") return "/";
    return url.href;
  }

  /** The user a token belongs to; null when the server refuses the token. */
  async function whoIs(token) {
    const res = await fetch("/api/me", {
      headers: { Accept: "application/json", Authorization: "Bearer " + token }, cache: "no-store",
    });
    if (res.status === 401) return null;
    if (!res.ok) throw new Error("the server answered HTTP " + res.status);
    return res.json();
  }

  function $(id) { return document.getElementById(id); }

  function showForm() {
    $("link-status").hidden = true;
    $("link-switch").hidden = true;
    $("login-form").hidden = false;
    $("username").focus();
  }

  /** A login link never silently replaces another user's session: ask. */
  function askToSwitch(current, linked, token) {
    $("link-status").hidden = true;
    $("link-switch-text").textContent = "You are logged in as " + current.username +
      ". This login link is for " + linked.username + ".";
    const go = $("link-continue");
    const stay = $("link-stay");
    go.textContent = "Continue as " + linked.username;
    stay.textContent = "Stay logged in as " + current.username;
    go.onclick = function () { api.setToken(token); location.replace(target()); };
    stay.onclick = function () { location.replace(target()); };
    $("link-switch").hidden = false;
    go.focus();
  }

  async function followLink(token) {
    let linked;
    try {
      linked = await whoIs(token);
    } catch (e) {
      api.showError("Cannot check the login link: " + api.messageOf(e) + ". Reload the page to try again.");
      showForm();
      return;
    }
    if (!linked) {
      api.showError("This login link is not valid any more: it was revoked, has expired or is incomplete. " +
        "Log in with your password, or ask an admin for a new link.");
      showForm();
      return;
    }
    const current = api.getToken();
    if (current && current !== token) {
      let who = null;
      try { who = await whoIs(current); } catch (e) { who = null; }
      if (who && who.id !== linked.id) {
        askToSwitch(who, linked, token);
        return;
      }
    }
    api.setToken(token);
    location.replace(target()); // replace: keep the login page out of history
  }

  /** The token of a login link (/login#token=XYZ), taken out of the address
   * bar and history at once; null when the address holds none. */
  function takeLinkToken() {
    const token = new URLSearchParams(location.hash.replace(/^#/, "")).get("token");
    if (token) history.replaceState(null, "", location.pathname + location.search);
    return token;
  }

  function startLink(token) {
    api.clearError();
    $("login-form").hidden = true;
    $("link-switch").hidden = true;
    $("link-status").hidden = false;
    followLink(token);
  }

  /** The server refused this browser's token (revoked or expired): say so once. */
  function sessionEnded() {
    let ended = null;
    try { ended = sessionStorage.getItem(api.ENDED_KEY); sessionStorage.removeItem(api.ENDED_KEY); } catch (e) { /* ignore */ }
    if (ended) {
      api.showError("Your session has ended: your login was revoked or has expired. " +
        "Log in again, or ask an admin for a new login link.");
    }
  }

  const linkToken = takeLinkToken();
  // A link opened while this page is already open changes only the fragment.
  window.addEventListener("hashchange", function () {
    const token = takeLinkToken();
    if (token) startLink(token);
  });

  document.addEventListener("DOMContentLoaded", function () {
    const form = $("login-form");
    const button = $("login-submit");
    const user = $("username");
    const pass = $("password");

    if (linkToken) startLink(linkToken);
    else sessionEnded();

    form.addEventListener("submit", async function (e) {
      e.preventDefault();
      api.clearError();
      if (!user.value.trim() || !pass.value) {
        api.showError("Enter your username and password.");
        (user.value.trim() ? pass : user).focus();
        return;
      }
      button.disabled = true;
      button.textContent = "Logging in…";
      try {
        const res = await api.post("/api/auth/login",
          { username: user.value.trim(), password: pass.value }, { noRedirect: true });
        api.setToken(res.token);
        location.replace(target());
      } catch (err) {
        api.showError(err);
        pass.select();
        button.disabled = false;
        button.textContent = "Log in";
      }
    });
  });
})();
