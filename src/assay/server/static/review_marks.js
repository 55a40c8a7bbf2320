/* The review queue of spans, boxes and polygons projects (the quality page).
 *
 * GET /api/projects/{id}/review/marks lists unsure items (low agreement
 * between the answers, assay.engine.region_review) with every answer and the
 * kind's majority (the consensus). Each item shows every annotator's marks
 * overlaid, one colour per annotator, with the consensus in black (dashed);
 * the reviewer accepts the consensus as it is, or edits it (or redraws it)
 * in the same editor annotators use (kinds.js widget.mount), then saves. The
 * decision goes to POST .../items/{id}/review: final, it counts like gold.
 */
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const HUES = [210, 20, 140, 280, 50, 330, 180, 100];
  let active = null; // {editor, li}: the one editor open on the page

  function colour(i) { return "hsl(" + HUES[i % HUES.length] + ", 80%, 45%)"; }

  function el(tag, attrs, ...kids) {
    const n = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") n.textContent = attrs[k]; else n.setAttribute(k, attrs[k]);
    });
    kids.forEach(function (k) { if (k) n.append(k); });
    return n;
  }

  function svgEl(tag, attrs) {
    const n = document.createElementNS(NS, tag);
    Object.keys(attrs).forEach(function (k) { n.setAttribute(k, String(attrs[k])); });
    return n;
  }

  /** Every answer's shapes over the image, one colour per annotator; the consensus dashed. */
  function shapesOverlay(kind, url, layers) {
    const svg = svgEl("svg", { class: "review-overlay", width: 480 });
    const probe = new Image();
    probe.onload = function () {
      const W = probe.naturalWidth, H = probe.naturalHeight;
      svg.setAttribute("viewBox", "0 0 " + W + " " + H);
      svg.setAttribute("height", Math.round(480 * H / W));
      svg.append(svgEl("image", { href: url, x: 0, y: 0, width: W, height: H }));
      const stroke = Math.max(1, W / 240);
      layers.forEach(function (layer) {
        (layer.label || []).forEach(function (s) {
          const attrs = { fill: "none", stroke: layer.colour, "stroke-width": stroke, "data-who": layer.who };
          if (layer.dashed) attrs["stroke-dasharray"] = 4 * stroke + " " + 2 * stroke;
          const shape = kind === "boxes"
            ? svgEl("rect", Object.assign(attrs, { x: s[0], y: s[1], width: s[2] - s[0], height: s[3] - s[1] }))
            : svgEl("polygon", Object.assign(attrs, { points: s.points.map(function (q) { return q.join(","); }).join(" ") }));
          shape.append(svgEl("title", {}));
          shape.lastChild.textContent = layer.who + ": " + (kind === "boxes" ? s[4] : s.label);
          svg.append(shape);
        });
      });
    };
    probe.src = url;
    return svg;
  }

  /** Every answer's spans under the text, one line per annotator; the consensus first. */
  function spansOverlay(text, layers) {
    const box = el("div", { class: "review-overlay review-spans" });
    layers.forEach(function (layer) {
      const line = el("p", { class: "small", "data-who": layer.who });
      line.append(el("strong", { text: layer.who + ": ", style: "color:" + layer.colour }));
      let at = 0;
      (layer.label || []).forEach(function (s) {
        if (s[0] < at) return; // overlapping spans: the first one shows
        line.append(text.slice(at, s[0]));
        line.append(el("mark", { style: "outline: 2px solid " + layer.colour, title: s[2], text: text.slice(s[0], s[1]) }),
          el("sub", { text: s[2] }));
        at = s[1];
      });
      line.append(text.slice(at));
      box.append(line);
    });
    return box;
  }

  function closeEditor() {
    if (!active) return;
    if (active.editor.destroy) active.editor.destroy();
    active.host.replaceChildren();
    active = null;
  }

  function onKey(e) {
    if (!active || e.target.closest("input, textarea, select")) return;
    if (active.editor.key && active.editor.key(e)) { e.preventDefault(); return; }
    const i = active.keys.indexOf(e.key);
    if (i >= 0) { active.editor.pick(i); e.preventDefault(); }
  }

  async function decide(base, li, itemId, label, what) {
    li.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    try {
      await window.AssayAPI.post(base + "/items/" + itemId + "/review", { label: label });
      if (active && active.li === li) closeEditor();
      li.replaceChildren(el("p", { class: "muted", text: "Decided (" + what + "): " + JSON.stringify(label) }));
      li.classList.add("decided");
      li.dataset.decided = what;
    } catch (err) {
      li.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      window.AssayAPI.showError(err, "Could not save the decision");
    }
  }

  async function entry(base, p, it, widget) {
    const item = await window.AssayAPI.get("/api/items/" + it.item_id);
    const content = item.kind === "image"
      ? window.AssayAPI.blob("/api/items/" + it.item_id + "/content").then(function (b) { return URL.createObjectURL(b); })
      : Promise.resolve(typeof item.text === "string" ? item.text : "");
    const layers = [{ who: "consensus", label: it.consensus, colour: "#111", dashed: true }].concat(
      it.answers.map(function (a, k) { return { who: a.username, label: a.label, colour: colour(k) }; }));
    const li = el("li", { class: "review-item", "data-item-id": it.item_id },
      el("p", { class: "muted small", text: it.answers.length + " answers · agreement " +
        Math.round(100 * it.agreement) + "% · consensus dashed" }));
    const c = await content;
    li.append(widget.name === "spans" ? spansOverlay(c, layers) : shapesOverlay(widget.name, c, layers));
    const host = el("div", { class: "review-editor" });
    const accept = el("button", { type: "button", class: "btn btn-small", "data-accept": "", text: "Accept the consensus" });
    const edit = el("button", { type: "button", class: "btn btn-small", "data-edit": "", text: "Edit the consensus" });
    const save = el("button", { type: "button", class: "btn btn-small btn-primary", "data-save": "", text: "Save my decision", hidden: "" });
    accept.addEventListener("click", function () { decide(base, li, it.item_id, it.consensus || [], "consensus"); });
    function saveEdit() {
      const label = active && active.li === li ? active.editor.answer() : null;
      if (label !== null && label !== undefined) decide(base, li, it.item_id, label, "edited");
    }
    save.addEventListener("click", saveEdit);
    edit.addEventListener("click", function () {
      closeEditor();
      const keys = p.schema.classes.map(function (_, i) { return i < 9 ? String(i + 1) : i === 9 ? "0" : null; });
      const editor = widget.mount(host, {
        item: item, project: p, classes: p.schema.classes, keys: keys, content: Promise.resolve(c),
        previous: it.consensus || [], suggestion: null,
        status: function (text) { li.dataset.status = text; },
        submit: saveEdit,
      });
      active = { editor: editor, li: li, host: host, keys: keys };
      save.hidden = false;
    });
    li.append(el("div", { class: "review-actions" }, accept, edit, save), host);
    return li;
  }

  async function show(base, p) {
    const widget = window.AssayKinds.forProject(p);
    const card = document.getElementById("marks-review-card");
    if (!widget || !widget.mount || !card) return;
    card.hidden = false;
    const q = await window.AssayAPI.get(base + "/review/marks?limit=20");
    const entries = await Promise.all((q.items || []).map(function (it) { return entry(base, p, it, widget); }));
    if (!entries.length) entries.push(el("li", { class: "muted", text: "The review queue is empty." }));
    document.getElementById("marks-review").replaceChildren(...entries);
    document.addEventListener("keydown", onKey);
  }

  window.AssayReviewMarks = { show: show };
})();
