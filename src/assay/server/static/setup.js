/* First-run page: the first admin, claimed with the one-time code that
 * `assay serve` printed (POST /api/setup); then the admin page opens. */
(function () {
  "use strict";
  const api = window.AssayAPI;

  function $(id) { return document.getElementById(id); }

  async function state() {
    const res = await fetch("/api/setup", { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!res.ok) throw new Error("the server answered HTTP " + res.status);
    return res.json();
  }

  async function submit(ev) {
    ev.preventDefault();
    api.clearError();
    const body = { code: $("code").value.trim(), username: $("username").value.trim(), password: $("password").value };
    if (!body.code || !body.username || !body.password) {
      api.showError("Fill in the code, a username and a password.");
      return;
    }
    if (body.password !== $("password2").value) {
      api.showError("The two passwords differ.");
      $("password2").focus();
      return;
    }
    const button = $("setup-submit");
    button.disabled = true;
    try {
      const res = await fetch("/api/setup", {
        method: "POST", cache: "no-store",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
      });
      const data = await res.json().catch(function () { return {}; });
      if (!res.ok) {
        const msg = data && data.error ? data.error.message : "the server answered HTTP " + res.status;
        if (res.status === 409) { location.replace("/login"); return; }
        api.showError(msg);
        (res.status === 403 ? $("code") : $("password")).focus();
        return;
      }
      api.setToken(data.token);
      location.replace("/admin");
    } catch (e) {
      api.showError("Cannot reach the server: " + api.messageOf(e));
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", async function () {
    $("setup-form").addEventListener("submit", submit);
    try {
      const s = await state();
      if (!s.needed) { location.replace("/login"); return; }
      $("password-rule").textContent = "At least " + s.min_password_length + " characters.";
    } catch (e) {
      api.showError("Cannot reach the server: " + api.messageOf(e));
    }
  });
})();
