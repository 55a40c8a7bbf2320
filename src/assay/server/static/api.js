/* assay shared browser helper: token storage, authenticated fetch, error display.
 * Exposes one global, `AssayAPI`. Every page script uses only this. */
(function () {
  "use strict";

  const TOKEN_KEY = "assay_token";

  /** Error thrown for any failed request; `message` is human readable. */
  class ApiError extends Error {
    constructor(status, code, message, details) {
      super(message);
      this.name = "ApiError";
      this.status = status; // 0 = network failure
      this.code = code;
      this.details = details || {};
    }
  }

  function getToken() {
    try { return localStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
  }
  function setToken(token) {
    try { localStorage.setItem(TOKEN_KEY, token); } catch (e) { /* private mode */ }
  }
  function clearToken() {
    try { localStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ }
  }

  function loginUrl() {
    const here = location.pathname + location.search;
    return here === "/" || here.startsWith("/login") ? "/login" : "/login?next=" + encodeURIComponent(here);
  }

  /** Why the login page opened (sessionStorage, read once by login.js). */
  const ENDED_KEY = "assay_session_ended";

  let redirecting = false;
  function toLogin(ended) {
    if (ended && getToken()) {
      try { sessionStorage.setItem(ENDED_KEY, "1"); } catch (e) { /* private mode */ }
    }
    clearToken();
    if (redirecting) return;
    redirecting = true;
    location.replace(loginUrl());
  }

  /** Short readable rendering of the `details` object of an API error. */
  function describeDetails(details) {
    if (!details || typeof details !== "object") return "";
    const list = Array.isArray(details) ? details : details.errors;
    if (Array.isArray(list)) {
      // pydantic-style: [{loc:[...], msg:"..."}]
      return list.slice(0, 3).map(function (e) {
        if (e && typeof e === "object") {
          const loc = Array.isArray(e.loc) ? e.loc.filter(function (p) { return p !== "body"; }).join(".") : "";
          return (loc ? loc + ": " : "") + (e.msg || e.message || JSON.stringify(e));
        }
        return String(e);
      }).join("; ");
    }
    const parts = [];
    Object.keys(details).slice(0, 4).forEach(function (k) {
      const v = details[k];
      parts.push(k + ": " + (typeof v === "object" ? JSON.stringify(v) : String(v)));
    });
    return parts.join(", ");
  }

  /** Build an ApiError from a non-OK response (error JSON or anything else). */
  async function errorFrom(res) {
    let body = null;
    try { body = await res.json(); } catch (e) { /* not JSON */ }
    const err = body && body.error;
    if (err && typeof err === "object") {
      let msg = err.message || err.code || "request failed";
      const extra = describeDetails(err.details);
      if (extra && msg.indexOf(extra) < 0) msg += " (" + extra + ")";
      return new ApiError(res.status, err.code || "error", msg, err.details);
    }
    if (body && typeof body.detail === "string") {
      return new ApiError(res.status, "error", body.detail, {});
    }
    return new ApiError(res.status, "http_" + res.status,
      "HTTP " + res.status + (res.statusText ? " " + res.statusText : ""), {});
  }

  /**
   * Authenticated fetch. Returns the Response when it is OK; throws ApiError
   * otherwise. On 401 it clears the token and goes to /login (unless
   * opts.noRedirect). opts: {body (JSON-encoded unless FormData), headers,
   * signal, noRedirect, keepalive (finish even if the page unloads)}.
   */
  async function raw(method, path, opts) {
    opts = opts || {};
    const headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
    const token = getToken();
    if (token) headers.Authorization = "Bearer " + token;
    let body = opts.body;
    if (body !== undefined && !(body instanceof FormData) && typeof body !== "string") {
      body = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
    let res;
    try {
      res = await fetch(path, {
        method: method, headers: headers, body: body, signal: opts.signal,
        keepalive: !!opts.keepalive, cache: "no-store",
      });
    } catch (e) {
      if (e && e.name === "AbortError") throw e;
      throw new ApiError(0, "network", "Network error: cannot reach the server", {});
    }
    if (res.status === 401 && !opts.noRedirect) {
      toLogin(true);
      throw new ApiError(401, "unauthorized", "Your session has expired. Please log in again.", {});
    }
    if (!res.ok) throw await errorFrom(res);
    return res;
  }

  /** JSON request; resolves to the parsed body (null for 204 / empty). */
  async function request(method, path, opts) {
    const res = await raw(method, path, opts);
    if (res.status === 204) return null;
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  }

  /** Fetch a binary resource (e.g. an image) with the auth header. */
  async function blob(path, opts) {
    const res = await raw("GET", path, Object.assign({ headers: { Accept: "*/*" } }, opts || {}));
    return res.blob();
  }

  /** Fetch with auth and save the response as a file. */
  async function download(path, fallbackName) {
    const res = await raw("GET", path, { headers: { Accept: "*/*" } });
    const data = await res.blob();
    let name = fallbackName;
    const cd = res.headers.get("Content-Disposition") || "";
    const m = /filename\*=UTF-8''([^;]+)/i.exec(cd) || /filename="?([^";]+)"?/i.exec(cd);
    if (m) { try { name = decodeURIComponent(m[1]); } catch (e) { name = m[1]; } }
    const url = URL.createObjectURL(data);
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  }

  function messageOf(err) {
    if (!err) return "Unknown error";
    if (typeof err === "string") return err;
    return err.message || String(err);
  }

  /** Show an error in the page's #error element (click or Escape dismisses). */
  function showError(err, prefix) {
    if (err && err.name === "AbortError") return;
    const box = document.getElementById("error");
    const text = (prefix ? prefix + ": " : "") + messageOf(err);
    if (!box) { console.error(text); return; }
    box.textContent = text;
    box.hidden = false;
  }

  function clearError() {
    const box = document.getElementById("error");
    if (box) { box.hidden = true; box.textContent = ""; }
  }

  /** Tiny DOM builder: el("a", {href: "/", class: "x"}, "text", child, ...). */
  function el(tag, attrs) {
    const node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        const v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "class") node.className = v;
        else if (k === "text") node.textContent = v;
        else if (k === "dataset") Object.assign(node.dataset, v);
        else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? "" : String(v));
      });
    }
    for (let i = 2; i < arguments.length; i++) {
      const c = arguments[i];
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }

  /** Log out: the server revokes this browser's token (POST /api/auth/logout),
   * then it is forgotten here and the login page opens. */
  async function logout() {
    const token = getToken();
    if (token) {
      try {
        await fetch("/api/auth/logout", {
          method: "POST", headers: { Authorization: "Bearer " + token }, keepalive: true, cache: "no-store",
        });
      } catch (e) { /* offline: the token is still forgotten here */ }
    }
    clearToken();
    location.replace("/login");
  }

  /** Pages that need a login call this first; it redirects when there is no token. */
  function requireToken() {
    if (getToken()) return true;
    toLogin();
    return false;
  }

  document.addEventListener("DOMContentLoaded", function () {
    const box = document.getElementById("error");
    if (box) {
      box.title = "Click to dismiss";
      box.addEventListener("click", clearError);
    }
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") clearError();
  });

  /** One GET per path for the page's scripts together: several sections of a page that need
   * the same read at load (the project, the caller) share one request; each gets its own copy.
   * A failed read is not kept (the next caller asks again). For reads at page load only. */
  const sharedReads = new Map();
  function shared(path) {
    let p = sharedReads.get(path);
    if (!p) {
      p = request("GET", path);
      sharedReads.set(path, p);
      p.catch(function () { sharedReads.delete(path); });
    }
    return p.then(function (v) { return structuredClone(v); });
  }

  /** The texts of many items in one request (GET /api/items?ids=…, at most 100): a function
   * item id -> text; an item without text, or one that could not be read, shows as its id. */
  async function itemTexts(ids) {
    const texts = {};
    if (ids.length) {
      try {
        const r = await request("GET", "/api/items?ids=" + ids.map(encodeURIComponent).join(","));
        r.items.forEach(function (item) { if (item.text) texts[item.id] = item.text; });
      } catch (e) { /* keep the ids */ }
    }
    return function (itemId) { return texts[itemId] || "item " + itemId; };
  }

  /** One button per class name for a review card ``li``: a click records a reviewer's final
   * label (POST {base}/items/{id}/review), then the card says so and ``onDecided(label)`` runs. */
  function decideButtons(base, li, itemId, classes, onDecided) {
    const box = el("div", { class: "review-actions", role: "group", "aria-label": "Decide item " + itemId });
    classes.forEach(function (c) {
      const btn = el("button", { type: "button", class: "btn btn-small", "data-decide": c, text: c });
      btn.addEventListener("click", async function () {
        box.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
        try {
          await request("POST", base + "/items/" + itemId + "/review", { body: { label: c } });
          li.replaceChildren(el("p", { class: "muted", text: "Item " + itemId + " decided: " + c }));
          li.classList.add("decided");
          if (onDecided) onDecided(c);
        } catch (err) {
          box.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
          showError(err, "Could not save the decision");
        }
      });
      box.append(btn);
    });
    return box;
  }

  window.AssayAPI = Object.freeze({
    TOKEN_KEY: TOKEN_KEY,
    ENDED_KEY: ENDED_KEY,
    ApiError: ApiError,
    getToken: getToken,
    setToken: setToken,
    clearToken: clearToken,
    logout: logout,
    requireToken: requireToken,
    raw: raw,
    request: request,
    get: function (path, opts) { return request("GET", path, opts); },
    shared: shared,
    post: function (path, body, opts) { return request("POST", path, Object.assign({ body: body === undefined ? {} : body }, opts || {})); },
    del: function (path, opts) { return request("DELETE", path, opts); },
    blob: blob,
    download: download,
    messageOf: messageOf,
    showError: showError,
    clearError: clearError,
    el: el,
    itemTexts: itemTexts,
    decideButtons: decideButtons,
  });
})();
