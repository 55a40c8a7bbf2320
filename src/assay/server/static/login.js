/* Login page: password form, and `#token=...` login links. */
(function () {
  "use strict";
  const api = window.AssayAPI;

  /** Where to go after login: a same-site path from ?next=, else "/". */
  function target() {
    const next = new URLSearchParams(location.search).get("next");
    return next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/login") ? next : "/";
  }

  // Login link: /login#token=XYZ -> store the token and go on at once.
  const hash = new URLSearchParams(location.hash.replace(/^#/, ""));
  const linkToken = hash.get("token");
  if (linkToken) {
    api.setToken(linkToken);
    location.replace(target()); // replace: keep the token out of history
    return;
  }

  document.addEventListener("DOMContentLoaded", function () {
    const form = document.getElementById("login-form");
    const button = document.getElementById("login-submit");
    const user = document.getElementById("username");
    const pass = document.getElementById("password");

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
