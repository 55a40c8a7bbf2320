/* Quality page, spans / boxes / polygons projects: each annotator's skills on
 * gold and reviewed items (GET /api/projects/{id}/skills/known): precision,
 * recall, F1 and localisation (mean IoU of matched shapes) for shapes;
 * precision / recall / F1 overall and per entity type for spans. */
(function () {
  "use strict";
  const api = window.AssayAPI;
  const el = api.el;
  const KINDS = ["spans", "boxes", "polygons"];

  function pct(v) { return typeof v === "number" ? (100 * v).toFixed(1) + "%" : "—"; }
  function num(v) { return typeof v === "number" ? v.toLocaleString() : "—"; }
  function cell(text, title) { return el("td", { class: "num", text: text, title: title || null }); }

  function shapeRows(k) {
    const head = ["annotator", "items", "drawn", "known", "precision", "recall", "F1", "mean IoU", "localisation error"];
    const rows = k.annotators.map(function (a) {
      return el("tr", { "data-user-id": a.user_id },
        el("td", { text: a.username || ("#" + a.user_id) }), cell(num(a.items)), cell(num(a.predicted)),
        cell(num(a.true)), cell(pct(a.precision), num(a.matched) + " of " + num(a.predicted) + " drawn shapes match a known one"),
        cell(pct(a.recall), num(a.matched) + " of " + num(a.true) + " known shapes found"), cell(pct(a.f1)),
        cell(typeof a.mean_iou === "number" ? a.mean_iou.toFixed(2) : "—"),
        cell(typeof a.localisation_error === "number" ? a.localisation_error.toFixed(2) : "—", "1 - mean IoU of matched shapes"));
    });
    return [head, rows];
  }

  function spanRows(k) {
    const types = [];
    k.annotators.forEach(function (a) {
      Object.keys(a.types || {}).forEach(function (t) { if (types.indexOf(t) < 0) types.push(t); });
    });
    types.sort();
    const head = ["annotator", "items", "precision", "recall", "F1"].concat(types.map(function (t) { return t + " (P / R / F1)"; }));
    const rows = k.annotators.map(function (a) {
      const tr = el("tr", { "data-user-id": a.user_id },
        el("td", { text: a.username || ("#" + a.user_id) }), cell(num(a.items)), cell(pct(a.precision)),
        cell(pct(a.recall)), cell(pct(a.f1)));
      types.forEach(function (t) {
        const s = (a.types || {})[t];
        tr.append(el("td", { class: "num", "data-type": t,
          text: s ? pct(s.precision) + " / " + pct(s.recall) + " / " + pct(s.f1) : "—" }));
      });
      return tr;
    });
    return [head, rows];
  }

  /** Fill #known-card for a project of a kind with skills here; false for other kinds. */
  async function show(base, project) {
    if (KINDS.indexOf(project.schema.kind) < 0) return false;
    const k = await api.get(base + "/skills/known");
    const b = k.basis || {};
    document.getElementById("known-basis").textContent = "Scored on " + num(b.gold) + " gold items and " + num(b.review) +
      " reviewed items, each annotator's first answer. " + (k.kind === "spans"
        ? "A span matches when its start, end and type are the known span's."
        : "A shape matches a known one of the same class with IoU at least 0.5, one to one.") +
      " A gold answer counts right when its F1 reaches " + pct(k.min_score) + ".";
    const [head, rows] = k.kind === "spans" ? spanRows(k) : shapeRows(k);
    const table = document.getElementById("known-skills");
    table.querySelector("thead").replaceChildren(el("tr", null, ...head.map(function (h, i) {
      return el("th", { class: i ? "num" : null, text: h });
    })));
    if (!rows.length) rows.push(el("tr", null, el("td", { colspan: String(head.length), class: "muted", text: "No answers to gold or reviewed items yet" })));
    table.querySelector("tbody").replaceChildren(...rows);
    document.getElementById("known-card").hidden = false;
    return true;
  }

  window.AssayKnownSkills = { kinds: KINDS, show: show };
})();
