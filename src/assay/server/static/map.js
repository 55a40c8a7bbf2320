/* Embedding map page (/map/{dataset_id}): the dataset's items in 2-D
 * (POST /api/datasets/{id}/map starts the projection, GET …/map polls it,
 * GET …/map/points fetches parallel arrays), drawn into one ImageData per
 * frame so 100k points stay smooth; wheel zooms, drag pans, colour by a
 * project's final label (?project=ID), its confidence or a slice; with
 * "Lasso" on a drag draws a freehand polygon, every point inside it is
 * selected (point-in-polygon in data space) and can be saved as a slice
 * (POST …/slices); a click opens the item in the search page. Staff only. */
(function () {
  "use strict";
  const api = window.AssayAPI;
  if (!api.requireToken()) return;

  const datasetId = Number(location.pathname.split("/").filter(Boolean)[1]);
  const base = "/api/datasets/" + encodeURIComponent(datasetId);
  const params = new URLSearchParams(location.search);
  const project = params.get("project");
  const PALETTE = [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
    [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]];
  let pts = null;            // {ids, x: Float32Array, y: Float32Array, label, confidence, slices}
  let view = { cx: 0, cy: 0, scale: 1 };   // data (cx, cy) at the centre; pixels per data unit = scale * half
  let selected = new Uint8Array(0);
  let lasso = null;          // [[x, y] data coords] while drawing
  let drag = null;
  const canvas = document.getElementById("map-canvas");
  const ctx = canvas.getContext("2d");
  window.assayMap = { frames: [], ready: false };

  function $(id) { return document.getElementById(id); }
  function half() { return Math.min(canvas.width, canvas.height) / 2 * 0.95; }
  function toScreen(x, y) {
    const s = view.scale * half();
    return [canvas.width / 2 + (x - view.cx) * s, canvas.height / 2 - (y - view.cy) * s];
  }
  function toData(px, py) {
    const s = view.scale * half();
    return [view.cx + (px - canvas.width / 2) / s, view.cy - (py - canvas.height / 2) / s];
  }

  function colourOf(i, mode, sliceSet) {
    if (selected[i]) return [0, 0, 0];
    if (mode === "label" && pts.label) return pts.label[i] < 0 ? [200, 200, 200] : PALETTE[pts.label[i] % PALETTE.length];
    if (mode === "confidence" && pts.confidence) {
      const c = pts.confidence[i];
      return c === null ? [200, 200, 200] : [Math.round(255 * (1 - c)), Math.round(160 * c), 60];
    }
    if (mode === "slice" && sliceSet) return sliceSet.has(i) ? [214, 39, 40] : [200, 200, 200];
    if (mode === "error" && pts.errors) return pts.errors.has(i) ? [214, 39, 40] : [200, 200, 200];
    return [31, 119, 180];
  }

  function draw() {
    const t0 = performance.now();
    const w = canvas.width, h = canvas.height;
    const img = ctx.createImageData(w, h);
    const d = img.data;
    d.fill(255);
    if (pts) {
      const mode = $("m-colour").value;
      const sl = $("m-slice").value;
      const sliceSet = sl && pts.slices[sl] ? new Set(pts.slices[sl]) : null;
      const s = view.scale * half(), ox = w / 2 - view.cx * s, oy = h / 2 + view.cy * s;
      for (let i = 0; i < pts.x.length; i++) {
        const px = (ox + pts.x[i] * s) | 0, py = (oy - pts.y[i] * s) | 0;
        if (px < 1 || py < 1 || px >= w - 1 || py >= h - 1) continue;
        const c = colourOf(i, mode, sliceSet);
        for (let dy = -1; dy <= 1; dy++) {
          let o = ((py + dy) * w + px - 1) * 4;
          for (let dx = -1; dx <= 1; dx++, o += 4) { d[o] = c[0]; d[o + 1] = c[1]; d[o + 2] = c[2]; }
        }
      }
    }
    ctx.putImageData(img, 0, 0);
    if (lasso && lasso.length > 1) {
      ctx.beginPath();
      lasso.forEach(function (p, k) { const q = toScreen(p[0], p[1]); if (k) ctx.lineTo(q[0], q[1]); else ctx.moveTo(q[0], q[1]); });
      ctx.strokeStyle = "#000";
      ctx.stroke();
    }
    window.assayMap.frames.push(performance.now() - t0);
  }

  let pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; draw(); });
  }

  function inPolygon(poly) {
    const n = pts.x.length, out = new Uint8Array(n);
    let minx = Infinity, maxx = -Infinity, miny = Infinity, maxy = -Infinity;
    poly.forEach(function (p) { minx = Math.min(minx, p[0]); maxx = Math.max(maxx, p[0]); miny = Math.min(miny, p[1]); maxy = Math.max(maxy, p[1]); });
    for (let i = 0; i < n; i++) {
      const x = pts.x[i], y = pts.y[i];
      if (x < minx || x > maxx || y < miny || y > maxy) continue;
      let inside = false;
      for (let a = 0, b = poly.length - 1; a < poly.length; b = a++) {
        const ya = poly[a][1], yb = poly[b][1];
        if ((ya > y) !== (yb > y) && x < (poly[b][0] - poly[a][0]) * (y - ya) / (yb - ya) + poly[a][0]) inside = !inside;
      }
      out[i] = inside ? 1 : 0;
    }
    return out;
  }

  function selectedIds() {
    const ids = [];
    for (let i = 0; i < selected.length; i++) if (selected[i]) ids.push(pts.ids[i]);
    return ids;
  }

  function nearest(px, py) {
    let best = -1, bd = 36;  // within 6 pixels
    for (let i = 0; i < pts.x.length; i++) {
      const q = toScreen(pts.x[i], pts.y[i]);
      const dd = (q[0] - px) * (q[0] - px) + (q[1] - py) * (q[1] - py);
      if (dd < bd) { bd = dd; best = i; }
    }
    return best;
  }

  function pos(e) {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  }

  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    const p = pos(e), before = toData(p[0], p[1]);
    view.scale *= Math.exp(-e.deltaY * 0.002);
    const after = toData(p[0], p[1]);
    view.cx += before[0] - after[0];
    view.cy += before[1] - after[1];
    redraw();
  }, { passive: false });
  canvas.addEventListener("mousedown", function (e) {
    if (!pts) return;
    const p = pos(e);
    drag = { start: p, last: p, moved: false };
    if ($("m-lasso").checked) lasso = [toData(p[0], p[1])];
  });
  window.addEventListener("mousemove", function (e) {
    if (!drag) return;
    const p = pos(e);
    if (Math.abs(p[0] - drag.start[0]) + Math.abs(p[1] - drag.start[1]) > 3) drag.moved = true;
    if (lasso) lasso.push(toData(p[0], p[1]));
    else {
      const s = view.scale * half();
      view.cx -= (p[0] - drag.last[0]) / s;
      view.cy += (p[1] - drag.last[1]) / s;
    }
    drag.last = p;
    redraw();
  });
  window.addEventListener("mouseup", function (e) {
    if (!drag) return;
    const moved = drag.moved;
    drag = null;
    if (lasso && moved && lasso.length > 2) {
      selected = inPolygon(lasso);
      window.assayMap.lasso = lasso.slice();
      $("lasso-count").textContent = selectedIds().length + " selected";
    } else if (!moved) {
      const p = pos(e), i = nearest(p[0], p[1]);
      if (i >= 0) location.href = "/search/" + encodeURIComponent(datasetId) + "?item=" + encodeURIComponent(pts.ids[i]);
    }
    lasso = null;
    redraw();
  });
  canvas.addEventListener("keydown", function (e) {
    const step = 0.1 / view.scale, keys = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
    if (keys[e.key]) { view.cx += keys[e.key][0]; view.cy += keys[e.key][1]; }
    else if (e.key === "+" || e.key === "=") view.scale *= 1.25;
    else if (e.key === "-") view.scale /= 1.25;
    else return;
    e.preventDefault();
    redraw();
  });
  ["m-colour", "m-slice"].forEach(function (id) { $(id).addEventListener("change", redraw); });
  $("m-method").addEventListener("change", load);
  $("m-reset").addEventListener("click", function () { view = { cx: 0, cy: 0, scale: 1 }; redraw(); });
  $("logout").addEventListener("click", function (e) { e.preventDefault(); api.logout(); });

  $("save-form").addEventListener("submit", async function (e) {
    e.preventDefault();
    const name = $("slice-name").value.trim(), ids = pts ? selectedIds() : [];
    if (!name || !ids.length) { $("save-state").textContent = "Lasso some points and name the slice first."; return; }
    try {
      await api.post(base + "/slices", { name: name, items: ids });
      $("save-state").textContent = "Saved slice " + name + " (" + ids.length + " items).";
      const opt = document.createElement("option");
      opt.value = opt.textContent = name;
      $("m-slice").appendChild(opt);
      pts.slices[name] = Array.from(selected.keys()).filter(function (i) { return selected[i]; });
    } catch (err) { api.showError(err); }
  });

  async function load() {
    const method = $("m-method").value, q = "?method=" + encodeURIComponent(method);
    try {
      let st = await api.post(base + "/map" + q);
      while (st.state === "queued" || st.state === "running") {
        $("map-status").textContent = "Computing the map (" + st.state + ", " + st.count + " items)…";
        await new Promise(function (r) { setTimeout(r, 500); });
        st = await api.get(base + "/map" + q);
      }
      if (st.state !== "done") throw new Error("map " + st.state + ": " + st.message);
      const t0 = performance.now();
      const d = await api.get(base + "/map/points" + q + (project ? "&project=" + encodeURIComponent(project) : ""));
      pts = { ids: d.ids, x: Float32Array.from(d.x), y: Float32Array.from(d.y), label: d.label || null,
        confidence: d.confidence || null, slices: d.slices || {},
        errors: d.errors ? new Set(d.errors) : null };
      selected = new Uint8Array(d.ids.length);
      const sel = $("m-slice");
      while (sel.options.length > 1) sel.remove(1);
      Object.keys(pts.slices).forEach(function (n) { const o = document.createElement("option"); o.value = o.textContent = n; sel.appendChild(o); });
      draw();
      window.assayMap.firstDrawMs = performance.now() - t0;
      window.assayMap.ready = true;
      window.assayMap.points = function () { return { ids: pts.ids, x: Array.from(pts.x), y: Array.from(pts.y) }; };
      window.assayMap.clientOf = function (x, y) {
        const q = toScreen(x, y), r = canvas.getBoundingClientRect();
        return [r.left + q[0] * r.width / canvas.width, r.top + q[1] * r.height / canvas.height];
      };
      $("map-status").textContent = d.ids.length + " items (" + method + ").";
    } catch (err) {
      $("map-status").textContent = "";
      api.showError(err);
    }
  }

  if (params.get("method")) $("m-method").value = params.get("method");
  $("search-link").href = "/search/" + encodeURIComponent(datasetId) + (project ? "?project=" + encodeURIComponent(project) : "");
  $("curate-link").href = "/curate/" + encodeURIComponent(datasetId);
  load();
})();
