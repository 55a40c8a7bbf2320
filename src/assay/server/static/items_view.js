/* Shared rendering of items in result grids (search, curate): an item's
 * body — an image thumbnail fetched with the token, or its text snippet —
 * a meta line and its tags, built with AssayAPI.el (text only, never HTML).
 * Exposes one global, `AssayItems`. */
(function () {
  "use strict";
  const api = window.AssayAPI;
  const el = api.el;

  /** Load an image item's content into `img` (with the token); the blob URL goes into `urls`. */
  async function thumbnail(img, url, urls) {
    try {
      const u = URL.createObjectURL(await api.blob(url));
      urls.push(u);
      img.src = u;
    } catch (err) {
      img.alt = "image could not be loaded";
    }
  }

  /** Forget the blob URLs of the last rendering. */
  function revoke(urls) {
    urls.forEach(function (u) { URL.revokeObjectURL(u); });
    urls.length = 0;
  }

  /** The nodes showing item `r` ({item_id, kind, snippet, content_url, tags}):
   * thumbnail or snippet, `meta` as a small line, then its tags. */
  function body(r, meta, urls) {
    const out = [];
    if (r.kind === "image") {
      const img = el("img", { class: "result-thumb", alt: "item " + r.item_id });
      thumbnail(img, r.content_url, urls);
      out.push(img);
    } else {
      out.push(el("span", { class: "result-snippet", text: r.snippet || "(" + (r.kind || "item") + ")" }));
    }
    out.push(el("span", { class: "result-meta muted small", text: meta }));
    const tags = r.tags || [];
    if (tags.length) {
      out.push(el("span", { class: "result-tags" }, el("span", { class: "visually-hidden", text: "tags:" }),
        ...tags.map(function (t) { return el("span", { class: "result-tag", text: t }); })));
    }
    return out;
  }

  /** Add `tag` to the tags of the items of `list` whose id is in `ids` (after tagging them). */
  function addTag(list, ids, tag) {
    list.forEach(function (x) {
      if (ids.has(x.item_id) && !(x.tags || []).includes(tag)) x.tags = (x.tags || []).concat([tag]).sort();
    });
  }

  /** Show `text` in the status line `id` (as an error when `bad`). */
  function setState(id, text, bad) {
    const node = document.getElementById(id);
    node.textContent = text;
    node.classList.toggle("error-text", !!bad);
  }

  /** The ids of `list` that are in `selected`, in the list's order; none: `empty` in #action-state. */
  function picked(list, selected, empty) {
    const ids = list.map(function (r) { return r.item_id; }).filter(function (i) { return selected.has(i); });
    if (!ids.length) setState("action-state", empty, true);
    return ids;
  }

  /** Run an action of `button` (disabled while it runs); a failure is shown and clears #action-state. */
  async function act(button, run) {
    button.disabled = true;
    try { await run(); } catch (err) {
      setState("action-state", "");
      if (err.status !== 401) api.showError(err);
    } finally { button.disabled = false; }
  }

  window.AssayItems = Object.freeze({ thumbnail: thumbnail, revoke: revoke, body: body, addTag: addTag,
    setState: setState, picked: picked, act: act });
})();
