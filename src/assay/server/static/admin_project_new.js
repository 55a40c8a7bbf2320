/* The new-project wizard (issue 16 part 3): name, dataset, label kind (every
 * registered kind, GET /api/kinds, with its own options), classes with
 * descriptions and keys, Markdown instructions with a live preview rendered
 * by the server (POST /api/instructions/preview), and every setting creation
 * takes (GET /api/settings/schema, rows with at_create, built by
 * settings_form.js). Submit: POST /api/projects; a refusal shows the server's
 * message and creates nothing; then the optional model URL
 * (PUT /api/projects/{id}/ml-backend) and on to /admin/projects/{id}. */
(function () {
  "use strict";
  const A = window.AssayAPI;
  const F = window.AssaySettingsForm;
  const el = A.el;
  const $ = function (id) { return document.getElementById(id); };
  let kinds = [];
  let datasets = [];
  let previewTimer = null;
  let previewSeq = 0;

  /* ---------- classes ---------- */

  function classRow(c) {
    const li = el("li", { class: "class-row" });
    const name = el("input", { type: "text", class: "class-name", maxlength: "200", autocomplete: "off", value: c.name || "" });
    const desc = el("input", { type: "text", class: "class-desc", maxlength: "2000", autocomplete: "off",
      value: c.description || "" });
    const key = el("input", { type: "text", class: "class-key", maxlength: "1", autocomplete: "off", value: c.key || "" });
    const labels = [el("label", { class: "visually-hidden" }), el("label", { class: "visually-hidden" }),
      el("label", { class: "visually-hidden" })];
    const up = el("button", { type: "button", class: "btn btn-small", "data-move": "-1" }, "↑");
    const down = el("button", { type: "button", class: "btn btn-small", "data-move": "1" }, "↓");
    const remove = el("button", { type: "button", class: "btn btn-small", "data-remove": "" }, "Remove");
    name.placeholder = "name";
    desc.placeholder = "description (optional)";
    key.placeholder = "key";
    li.append(labels[0], name, labels[1], desc, labels[2], key, up, down, remove);
    up.addEventListener("click", function () { move(li, -1, up); });
    down.addEventListener("click", function () { move(li, 1, down); });
    remove.addEventListener("click", function () {
      const next = li.nextElementSibling || li.previousElementSibling;
      li.remove();
      relabel();
      (next ? next.querySelector(".class-name") : $("class-add")).focus();
    });
    return li;
  }

  /** Ids, labels and button names follow each row's position. */
  function relabel() {
    const rows = Array.from($("class-rows").children);
    rows.forEach(function (li, i) {
      const n = i + 1;
      const inputs = li.querySelectorAll("input");
      const labels = li.querySelectorAll("label");
      ["name", "description", "key"].forEach(function (what, j) {
        inputs[j].id = "class-" + n + "-" + what;
        labels[j].htmlFor = inputs[j].id;
        labels[j].textContent = "Class " + n + " " + what;
      });
      const buttons = li.querySelectorAll("button");
      buttons[0].setAttribute("aria-label", "Move class " + n + " up");
      buttons[0].disabled = i === 0;
      buttons[1].setAttribute("aria-label", "Move class " + n + " down");
      buttons[1].disabled = i === rows.length - 1;
      buttons[2].setAttribute("aria-label", "Remove class " + n);
      buttons[2].disabled = rows.length === 1;
    });
  }

  function move(li, by, button) {
    const list = $("class-rows");
    if (by < 0 && li.previousElementSibling) list.insertBefore(li, li.previousElementSibling);
    else if (by > 0 && li.nextElementSibling) list.insertBefore(li.nextElementSibling, li);
    relabel();
    (button.disabled ? li.querySelector(".class-name") : button).focus();
  }

  function addClass(c) {
    const li = classRow(c || {});
    $("class-rows").append(li);
    relabel();
    return li;
  }

  function readClasses() {
    return Array.from($("class-rows").children).map(function (li) {
      const c = { name: li.querySelector(".class-name").value.trim(),
        description: li.querySelector(".class-desc").value.trim() };
      const key = li.querySelector(".class-key").value;
      if (key) c.key = key;
      return c;
    }).filter(function (c) { return c.name || c.description || c.key; });
  }

  /* ---------- kinds ---------- */

  function renderKinds() {
    const box = $("kinds");
    kinds.forEach(function (k, i) {
      const id = "kind-" + k.name;
      const radio = el("input", { type: "radio", name: "kind", id: id, value: k.name,
        "aria-describedby": id + "-help" });
      radio.checked = i === 0;
      radio.addEventListener("change", renderKindOptions);
      const needs = k.item_kinds ? " Needs " + k.item_kinds.join(" or ") + " items." : "";
      box.append(el("div", { class: "kind-choice", "data-kind": k.name }, radio,
        el("label", { for: id }, el("strong", { text: k.title }), " (" + k.name + ")"),
        el("small", { class: "muted", id: id + "-help", text: k.description + needs }),
        el("small", { class: "kind-unfit", id: id + "-unfit", hidden: "" })));
    });
    fitKinds();
  }

  /** Kinds that cannot label the chosen dataset's items (a box kind on a text
   * dataset) are disabled with the reason; the server refuses them the same
   * way (create_project checks the kind's item_kinds). */
  function fitKinds() {
    const ds = datasets.find(function (d) { return String(d.id) === $("p-dataset").value; });
    const has = (ds && ds.item_kinds) || [];
    let firstFit = null;
    kinds.forEach(function (k) {
      const radio = $("kind-" + k.name);
      const other = k.item_kinds ? has.filter(function (t) { return k.item_kinds.indexOf(t) < 0; }) : [];
      const note = $("kind-" + k.name + "-unfit");
      radio.disabled = other.length > 0;
      note.hidden = !radio.disabled;
      note.textContent = radio.disabled ? " Not for this dataset: it holds " + other.join(" and ") + " items." : "";
      radio.setAttribute("aria-describedby", "kind-" + k.name + "-help" + (radio.disabled ? " kind-" + k.name + "-unfit" : ""));
      if (!radio.disabled && firstFit === null) firstFit = radio;
    });
    const picked = document.querySelector("input[name=kind]:checked");
    if ((!picked || picked.disabled) && firstFit) firstFit.checked = true;
    renderKindOptions();
  }

  function currentKind() {
    const picked = document.querySelector("input[name=kind]:checked");
    return kinds.find(function (k) { return picked && k.name === picked.value; }) || kinds[0];
  }

  function renderKindOptions() {
    const host = $("kind-options");
    host.replaceChildren();
    const k = currentKind();
    const opts = (k && k.options) || {};
    Object.keys(opts).forEach(function (name) {
      const o = opts[name];
      const id = "kopt-" + name;
      const input = o.type === "boolean"
        ? el("input", { type: "checkbox", id: id, "data-option": name, "data-type": "boolean" })
        : el("input", { type: "text", id: id, "data-option": name, "data-type": o.type || "string",
          value: o.default === null || o.default === undefined ? "" : String(o.default) });
      if (o.type === "boolean") input.checked = !!o.default;
      host.append(el("p", { class: "kind-option" }, input, " ",
        el("label", { for: id }, k.title + ": " + name), " ",
        el("small", { class: "muted", text: o.description || "" })));
    });
  }

  function readKindOptions() {
    const out = {};
    $("kind-options").querySelectorAll("[data-option]").forEach(function (input) {
      const t = input.dataset.type;
      if (t === "boolean") out[input.dataset.option] = input.checked;
      else if (input.value.trim() !== "") {
        out[input.dataset.option] = t === "number" || t === "integer" ? Number(input.value) : input.value.trim();
      }
    });
    return out;
  }

  /* ---------- instructions preview ---------- */

  function schedulePreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(preview, 250);
  }

  async function preview() {
    const seq = ++previewSeq;
    const text = $("p-instructions").value;
    try {
      const r = await A.post("/api/instructions/preview", { text: text });
      // The server's renderer (assay.engine.instructions) makes safe HTML: raw HTML
      // is text there and script links are not links.
      if (seq === previewSeq) $("instructions-preview").innerHTML = r.html;
    } catch (err) {
      if (seq === previewSeq) $("instructions-preview").textContent = "No preview: " + A.messageOf(err);
    }
  }

  /* ---------- submit ---------- */

  function body() {
    const settings = F.read($("create-settings"));
    Object.keys(settings).forEach(function (k) { if (settings[k] === null) delete settings[k]; }); // default
    const ds = $("p-dataset").value;
    return Object.assign({
      name: $("p-name").value.trim(),
      dataset_id: ds === "" ? null : Number(ds),
      schema: Object.assign({ kind: currentKind().name, classes: readClasses(),
        instructions: $("p-instructions").value }, readKindOptions()),
    }, settings);
  }

  async function submit(ev) {
    ev.preventDefault();
    const button = $("create");
    if (button.disabled) return;
    A.clearError();
    button.disabled = true;
    $("create-status").textContent = "Creating…";
    let project = null;
    try {
      project = await A.post("/api/projects", body());
    } catch (err) {
      $("create-status").textContent = "";
      A.showError(err, "The project was not created");
      button.disabled = false;
      return;
    }
    const url = $("p-backend").value.trim();
    if (url) {
      $("create-status").textContent = "Connecting the model…";
      try {
        await A.request("PUT", "/api/projects/" + project.id + "/ml-backend", { body: { url: url } });
      } catch (err) {
        $("create-status").replaceChildren("Project \u201c" + project.name + "\u201d was created. ",
          el("a", { href: "/admin/projects/" + project.id }, "Open it"), " to set its model again.");
        A.showError(err, "The model URL was not accepted");
        return;
      }
    }
    location.assign("/admin/projects/" + project.id);
  }

  /* ---------- set-up ---------- */

  async function main() {
    if (!A.requireToken()) return;
    $("logout").addEventListener("click", function (e) { e.preventDefault(); A.logout(); });
    const me = await A.get("/api/me");
    $("me").textContent = me.username + " (" + me.role + ")";
    const [data, kindList, schema] = await Promise.all([A.get("/api/datasets"), A.get("/api/kinds"),
      A.get("/api/settings/schema")]);
    const select = $("p-dataset");
    datasets = data.datasets || [];
    if (!datasets.length) select.append(el("option", { value: "", text: "No datasets yet: add data first" }));
    datasets.forEach(function (d) {
      select.append(el("option", { value: d.id,
        text: d.name + " (" + Number(d.item_count || 0).toLocaleString() + " items)" }));
    });
    const wanted = new URLSearchParams(location.search).get("dataset");
    if (wanted && datasets.some(function (d) { return String(d.id) === wanted; })) select.value = wanted;
    kinds = kindList;
    renderKinds();
    select.addEventListener("change", fitKinds);
    F.build($("create-settings"), schema.filter(function (row) { return row.at_create; }), {}, { prefix: "new-" });
    addClass();
    addClass();
    $("class-add").addEventListener("click", function () { addClass().querySelector(".class-name").focus(); });
    $("p-instructions").addEventListener("input", schedulePreview);
    $("wizard").addEventListener("submit", submit);
    preview();
    document.body.dataset.ready = "1";
  }

  document.addEventListener("DOMContentLoaded", function () {
    main().catch(function (err) { if (err.status !== 401) A.showError(err); });
  });
})();
