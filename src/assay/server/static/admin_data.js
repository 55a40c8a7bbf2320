/* Data admin (issue 16 part 2): the datasets with their provenance, a new
 * dataset, uploads (drag and drop or a file picker, with a progress bar; the
 * import is all or nothing and its error is shown as the server words it)
 * and a dataset's items in keyset pages with a text and metadata filter.
 * /admin/data?dataset=ID opens that dataset's items. */
(function () {
  "use strict";
  const api = window.AssayAPI;
  const el = api.el;
  if (!api.requireToken()) return;

  const $ = function (id) { return document.getElementById(id); };
  let datasets = [];
  let current = null;            // the dataset being browsed
  let cursors = [];              // the `after` of each page shown so far (keyset paging)
  let nextAfter = null;
  let blobUrls = [];
  let uploading = false;
  let pageSeq = 0;               // only the latest page request is shown

  function when(ts) { return ts ? new Date(ts * 1000).toLocaleString() : "—"; }
  function uniq(list) { return Array.from(new Set(list.filter(function (v) { return v; }))); }

  // ---------------------------------------------------------- datasets

  function provenanceLines(imports) {
    const seen = new Set();
    const lines = [];
    imports.forEach(function (i) {
      const line = [i.source || "—", i.license || "no license given", i.consent || "no consent given"].join(" · ");
      if (!seen.has(line)) { seen.add(line); lines.push(line); }
    });
    return lines;
  }

  function datasetRow(ds, imports) {
    const kinds = uniq(imports.map(function (i) { return i.kind; }));
    const prov = el("ul", { class: "small provenance" });
    provenanceLines(imports).slice(0, 5).forEach(function (l) { prov.append(el("li", { text: l })); });
    if (!imports.length) prov.append(el("li", { class: "muted", text: "nothing imported yet" }));
    const browse = el("button", { class: "btn btn-small", type: "button", "data-browse": ds.id }, "Browse");
    browse.addEventListener("click", function () { openDataset(ds.id, true); });
    const upload = el("button", { class: "btn btn-small", type: "button" }, "Upload here");
    upload.addEventListener("click", function () {
      $("upload-dataset").value = String(ds.id);
      $("upload-file").focus();
    });
    return el("tr", { class: "dataset-row" + (current && current.id === ds.id ? " is-current" : ""),
      "data-dataset-id": ds.id },
      el("th", { scope: "row", text: ds.name }),
      el("td", { class: "num", "data-field": "items", text: Number(ds.item_count || 0).toLocaleString() }),
      el("td", { "data-field": "kind", text: kinds.length ? kinds.join(", ") : "—" }),
      el("td", { text: when(ds.created_at) }),
      el("td", null, prov),
      el("td", null, el("div", { class: "card-actions" }, browse, upload)));
  }

  async function loadDatasets() {
    const body = await api.get("/api/datasets");
    datasets = body.datasets || [];
    const imports = await Promise.all(datasets.map(function (ds) {
      return api.get("/api/datasets/" + ds.id + "/imports").then(function (r) { return r.imports || []; });
    }));
    const tbody = $("datasets").querySelector("tbody");
    tbody.replaceChildren.apply(tbody, datasets.map(function (ds, i) { return datasetRow(ds, imports[i]); }));
    $("loading").hidden = true;
    $("empty").hidden = datasets.length > 0;
    $("datasets").hidden = datasets.length === 0;
    const select = $("upload-dataset");
    const keep = select.value;
    select.replaceChildren.apply(select, datasets.map(function (ds) {
      return el("option", { value: ds.id, text: ds.name });
    }));
    if (keep && datasets.some(function (d) { return String(d.id) === keep; })) select.value = keep;
    else if (current) select.value = String(current.id);
    if (current) {
      const idx = datasets.findIndex(function (d) { return d.id === current.id; });
      if (idx >= 0) showImports(imports[idx]);
    }
  }

  async function createDataset(e) {
    e.preventDefault();
    const name = $("create-name").value.trim();
    if (!name) return;
    const btn = $("create-submit");
    btn.disabled = true;
    try {
      const ds = await api.post("/api/datasets", { name: name });
      $("create-name").value = "";
      await loadDatasets();
      $("upload-dataset").value = String(ds.id);
      $("upload-status").textContent = "Dataset \u201c" + ds.name + "\u201d created: upload a file into it.";
    } catch (err) {
      api.showError(err, "Could not create the dataset");
    } finally {
      btn.disabled = false;
    }
  }

  // ---------------------------------------------------------- upload

  function setProgress(fraction, text) {
    $("upload-progress").value = Math.round(fraction * 100);
    $("upload-percent").textContent = text;
  }

  function errorMessage(xhr) {
    try {
      const body = JSON.parse(xhr.responseText);
      if (body && body.error && body.error.message) return body.error.message;
      if (body && typeof body.detail === "string") return body.detail;
    } catch (e) { /* not JSON */ }
    return "HTTP " + xhr.status + (xhr.statusText ? " " + xhr.statusText : "");
  }

  /** POST the file as multipart with XMLHttpRequest (fetch reports no upload progress). */
  function send(datasetId, form) {
    return new Promise(function (resolve, reject) {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/datasets/" + encodeURIComponent(datasetId) + "/import");
      xhr.setRequestHeader("Authorization", "Bearer " + api.getToken());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (ev) {
        if (ev.lengthComputable) {
          setProgress(ev.loaded / ev.total, Math.round(100 * ev.loaded / ev.total) + "% sent");
        }
      });
      xhr.upload.addEventListener("load", function () { setProgress(1, "sent; importing…"); });
      xhr.addEventListener("load", function () {
        if (xhr.status === 401) { api.clearToken(); location.replace("/login?next=/admin/data"); return; }
        if (xhr.status >= 200 && xhr.status < 300) resolve(JSON.parse(xhr.responseText));
        else reject(new Error(errorMessage(xhr)));
      });
      xhr.addEventListener("error", function () { reject(new Error("Network error: cannot reach the server")); });
      xhr.send(form);
    });
  }

  async function upload(file) {
    if (!file || uploading) return;
    const datasetId = $("upload-dataset").value;
    const status = $("upload-status");
    status.className = "";
    if (!datasetId) {
      status.className = "error-text";
      status.textContent = "Create a dataset first, then upload into it.";
      return;
    }
    const form = new FormData();
    form.append("file", file, file.name);
    ["source", "license", "consent"].forEach(function (k) {
      const v = $("upload-" + k).value.trim();
      if (v) form.append(k, v);
    });
    form.append("text_column", $("upload-text-column").value.trim() || "text");
    uploading = true;
    $("upload-file").disabled = true;
    setProgress(0, "0% sent");
    status.textContent = "Uploading " + file.name + "…";
    try {
      const r = await send(datasetId, form);
      status.className = "ok-text";
      status.setAttribute("data-result", "ok");
      status.textContent = file.name + ": imported " + r.added.toLocaleString() + " new items (" +
        r.skipped.toLocaleString() + " already there)." + (r.label_files ? " " + r.label_files.toLocaleString() +
        " label files (YOLO, VOC or COCO) were set aside: upload the same file as gold on a project's page." : "");
      await loadDatasets();
      if (current && String(current.id) === String(datasetId)) await showPage(cursors[cursors.length - 1]);
    } catch (err) {
      setProgress(0, "");
      status.className = "error-text";
      status.setAttribute("data-result", "error");
      status.textContent = file.name + " was not imported (nothing changed): " + api.messageOf(err);
    } finally {
      uploading = false;
      $("upload-file").disabled = false;
      $("upload-file").value = "";
    }
  }

  function wireDropzone() {
    const zone = $("dropzone");
    ["dragenter", "dragover"].forEach(function (t) {
      zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.add("is-over"); });
    });
    ["dragleave", "drop"].forEach(function (t) {
      zone.addEventListener(t, function () { zone.classList.remove("is-over"); });
    });
    zone.addEventListener("drop", function (e) {
      e.preventDefault();
      const files = e.dataTransfer && e.dataTransfer.files;
      if (files && files.length) upload(files[0]);
    });
    $("upload-file").addEventListener("change", function () {
      const f = $("upload-file").files[0];
      if (f) upload(f);
    });
  }

  // ---------------------------------------------------------- browse

  function showImports(imports) {
    const box = $("imports");
    if (!imports.length) { box.replaceChildren(el("p", { class: "muted small", text: "No imports yet." })); return; }
    const rows = imports.slice(0, 20).map(function (i) {
      return el("tr", { "data-import-id": i.id },
        el("td", { text: when(i.created_at) }), el("td", { text: i.kind || "—" }),
        el("td", { class: "num", text: Number(i.added).toLocaleString() }),
        el("td", { class: "num", text: Number(i.skipped).toLocaleString() }),
        el("td", { text: i.source || "—" }), el("td", { text: i.license || "—" }),
        el("td", { text: i.consent || "—" }));
    });
    const head = ["imported", "content", "added", "skipped", "source", "license", "consent"];
    box.replaceChildren(el("details", null, el("summary", { text: "Imports and provenance (" + imports.length + ")" }),
      el("div", { class: "table-scroll" }, el("table", { class: "annotators" },
        el("thead", null, el("tr", null, ...head.map(function (h) { return el("th", { scope: "col", text: h }); }))),
        el("tbody", null, ...rows)))));
  }

  function filterParams() {
    const params = new URLSearchParams();
    const q = $("filter-q").value.trim();
    if (q) params.set("q", q);
    $("filter-meta").value.split(";").forEach(function (pair) {
      const at = pair.indexOf("=");
      if (at > 0) params.set("meta." + pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    });
    params.set("limit", $("filter-limit").value);
    return params;
  }

  async function thumbnail(img, id) {
    try {
      const u = URL.createObjectURL(await api.blob("/api/items/" + encodeURIComponent(id) + "/content"));
      blobUrls.push(u);
      img.src = u;
    } catch (err) {
      img.alt = "image " + id + " could not be loaded";
    }
  }

  function itemRow(it) {
    let content;
    if (it.kind === "image") {
      content = el("img", { class: "item-thumb", alt: "image " + ((it.meta && it.meta.file) || it.id) });
      thumbnail(content, it.id);
    } else {
      const t = it.text || "";
      content = el("div", { class: "item-snippet", text: t.length > 300 ? t.slice(0, 300) + "…" : t });
    }
    const meta = it.meta ? JSON.stringify(it.meta) : "";
    return el("tr", { "data-item-id": it.id },
      el("td", { class: "num", text: it.id }), el("td", null, content),
      el("td", { class: "item-meta", text: meta.length > 200 ? meta.slice(0, 200) + "…" : meta }));
  }

  async function showPage(after) {
    if (!current) return;
    const params = filterParams();
    if (after) params.set("after", after);
    const seq = ++pageSeq;
    const body = await api.get("/api/datasets/" + current.id + "/items?" + params.toString());
    if (seq !== pageSeq) return; // a newer page or filter was asked for meanwhile
    blobUrls.forEach(function (u) { URL.revokeObjectURL(u); });
    blobUrls = [];
    const tbody = $("items").querySelector("tbody");
    tbody.replaceChildren.apply(tbody, body.items.map(itemRow));
    nextAfter = body.next_after;
    $("items-empty").hidden = body.items.length > 0 || !!body.scanned_to;
    $("page-prev").disabled = cursors.length <= 1;
    $("page-next").disabled = nextAfter === null || nextAfter === undefined;
    $("page-info").textContent = (body.items.length
      ? "Page " + cursors.length + ": items " + body.items[0].id + "–" + body.items[body.items.length - 1].id
      : "Page " + cursors.length) + (body.scanned_to
      ? " · no more matches up to item " + body.scanned_to + " (" + body.scan_rows.toLocaleString() +
        " items looked at); Next keeps looking"
      : "");
  }

  async function openDataset(id, scroll) {
    current = datasets.find(function (d) { return d.id === id; }) || null;
    if (!current) return;
    history.replaceState(null, "", "/admin/data?dataset=" + encodeURIComponent(id));
    document.querySelectorAll(".dataset-row").forEach(function (r) {
      r.classList.toggle("is-current", r.getAttribute("data-dataset-id") === String(id));
    });
    $("browse").hidden = false;
    $("browse-title").textContent = "Items of \u201c" + current.name + "\u201d";
    cursors = [null];
    try {
      const [imports] = await Promise.all([
        api.get("/api/datasets/" + id + "/imports").then(function (r) { return r.imports || []; }),
        showPage(null)]);
      showImports(imports);
      if (scroll) $("browse").scrollIntoView();
    } catch (err) {
      api.showError(err, "Could not load the items");
    }
  }

  function wireBrowse() {
    $("filter-form").addEventListener("submit", function (e) {
      e.preventDefault();
      cursors = [null];
      showPage(null).catch(function (err) { api.showError(err, "Could not filter the items"); });
    });
    $("page-next").addEventListener("click", function () {
      if (nextAfter === null || nextAfter === undefined) return;
      cursors.push(nextAfter);
      showPage(nextAfter).catch(function (err) { cursors.pop(); api.showError(err, "Could not load the page"); });
    });
    $("page-prev").addEventListener("click", function () {
      if (cursors.length <= 1) return;
      cursors.pop();
      showPage(cursors[cursors.length - 1]).catch(function (err) { api.showError(err, "Could not load the page"); });
    });
  }

  document.addEventListener("DOMContentLoaded", async function () {
    $("logout").addEventListener("click", function (e) { e.preventDefault(); api.logout(); });
    $("create-form").addEventListener("submit", createDataset);
    $("upload-form").addEventListener("submit", function (e) { e.preventDefault(); });
    wireDropzone();
    wireBrowse();
    api.get("/api/me").then(function (me) { $("me").textContent = me.username + " (" + me.role + ")"; })
      .catch(function () { /* shown by the calls below */ });
    try {
      await loadDatasets();
      const want = Number(new URLSearchParams(location.search).get("dataset"));
      if (want) await openDataset(want, false);
    } catch (err) {
      $("loading").hidden = true;
      api.showError(err, "Could not load the datasets");
    }
  });
})();
