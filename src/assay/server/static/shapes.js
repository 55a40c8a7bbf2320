/* Boxes and polygons on images: the editors of the `boxes` and `polygons`
 * widgets (kinds.js), mounted by label.js on each item (see kinds.js for
 * the editor hook: mount / answer / pick / key / destroy).
 *
 * The image is drawn inside an SVG whose viewBox is in the image's natural
 * pixels, so every coordinate here — shapes and pointer positions alike — is
 * an image pixel whatever the display scale or zoom (pointer positions go
 * through the SVG's screen matrix). Zoom and pan move the viewBox.
 *
 * Boxes: drag on the image draws a box; click a box selects it, drag moves
 * it, its corner handles resize it; arrows nudge it (Shift: 10 px);
 * Shift+drag draws a new box even over another one. Polygons:
 * click to add points; clicking the first point, Enter or a double click
 * closes the outline; a selected polygon's vertices drag, its inside moves
 * it; Backspace while drawing takes the last point back. Both: a class's key
 * (1–9) sets the selected shape's class and the next shape's; Tab / Shift+Tab
 * cycles the selection; Delete (or Backspace) removes the selected shape;
 * Escape deselects or drops the outline being drawn; wheel or + / − zoom, f
 * fits, space+drag (or the middle button) pans; n or "Nothing to mark"
 * answers [] (only when nothing is drawn); Enter submits.
 */
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4",
    "#0f9fb8", "#f032e6", "#9a6324", "#469990", "#808000"];
  const HANDLE_PX = 10;   // handle size on screen
  const CLOSE_PX = 10;    // a click this close to the first point closes the outline
  const MIN_BOX_PX = 4;   // a drag shorter than this (screen px) is a click, not a box
  const MAX_ZOOM = 40;
  const lastClass = {};   // kind -> the class index last chosen (kept from item to item)

  function svgEl(tag, attrs) {
    const n = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { if (attrs[k] !== null) n.setAttribute(k, String(attrs[k])); });
    return n;
  }
  function round2(v) { return Math.round(v * 100) / 100; }
  function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }

  /** Shapes from a stored label (an answer being redone after an undo). */
  function fromLabel(polygons, label) {
    if (!Array.isArray(label)) return [];
    return label.map(function (s) {
      if (polygons && s && Array.isArray(s.points)) return { label: s.label, p: s.points.map(function (q) { return [q[0], q[1]]; }) };
      if (!polygons && Array.isArray(s) && s.length === 5) return { label: s[4], b: s.slice(0, 4) };
      return null;
    }).filter(Boolean);
  }

  function mount(kind, host, ctx) {
    const polygons = kind === "polygons";
    const names = ctx.classes.map(function (c) { return c.name; });
    const st = {
      shapes: fromLabel(polygons, Array.isArray(ctx.previous) ? ctx.previous : ctx.suggestion), sel: -1, // a redo, else the model's
      cls: Math.min(lastClass[kind] || 0, names.length - 1),
      W: 0, H: 0, view: null, drag: null, draft: null, hover: null, space: false, nothing: false, gone: false,
    };

    /* ---------- DOM ---------- */
    const root = document.createElement("div");
    root.className = "shape-editor";
    root.dataset.kind = kind;
    const bar = document.createElement("div");
    bar.className = "shape-bar";
    const clsInfo = document.createElement("span");
    clsInfo.className = "shape-class";
    const count = document.createElement("span");
    count.className = "shape-count muted small";
    const nothingBtn = document.createElement("button");
    nothingBtn.type = "button";
    nothingBtn.className = "btn btn-small shape-nothing";
    nothingBtn.append("Nothing to mark ", Object.assign(document.createElement("kbd"), { textContent: "n" }));
    const fitBtn = document.createElement("button");
    fitBtn.type = "button";
    fitBtn.className = "btn btn-small shape-fit";
    fitBtn.append("Fit ", Object.assign(document.createElement("kbd"), { textContent: "f" }));
    const delBtn = document.createElement("button");
    delBtn.type = "button";
    delBtn.className = "btn btn-small shape-delete";
    delBtn.append("Delete ", Object.assign(document.createElement("kbd"), { textContent: "Del" }));
    bar.append(clsInfo, count, delBtn, fitBtn, nothingBtn);
    if (!Array.isArray(ctx.previous) && Array.isArray(ctx.suggestion)) { // the model's shapes, marked as suggested
      root.dataset.suggested = "1";
      bar.append(Object.assign(document.createElement("span"), { className: "shape-suggested muted small",
        textContent: "Drawn by the model: adjust, then Enter" }));
    }
    const svg = svgEl("svg", { class: "shape-canvas", preserveAspectRatio: "xMidYMid meet", "aria-label": "Image to mark" });
    const image = svgEl("image", { x: 0, y: 0, preserveAspectRatio: "none" });
    const layer = svgEl("g", { class: "shape-layer" });
    svg.append(image, layer);
    root.append(bar, svg);
    host.append(root);
    [nothingBtn, fitBtn, delBtn].forEach(function (b) { b.addEventListener("mousedown", function (e) { e.preventDefault(); }); });
    nothingBtn.addEventListener("click", nothing);
    fitBtn.addEventListener("click", function () { fit(); draw(); });
    delBtn.addEventListener("click", remove);

    ctx.content.then(function (url) {
      if (st.gone) return;
      if (ctx.item.kind !== "image") { ctx.status("this item is not an image: shapes are drawn on images (s skips it)"); return; }
      const probe = new Image();
      probe.onload = function () {
        if (st.gone) return;
        st.W = probe.naturalWidth;
        st.H = probe.naturalHeight;
        image.setAttribute("href", url);
        image.setAttribute("width", st.W);
        image.setAttribute("height", st.H);
        if (Math.max(st.W, st.H) < 256) image.setAttribute("class", "is-small");
        root.dataset.width = st.W;
        root.dataset.height = st.H;
        fit();
        draw();
        root.dataset.ready = "1";
      };
      probe.onerror = function () { if (!st.gone) ctx.status("Could not show the image."); };
      probe.src = url;
    }, function (err) {
      if (!st.gone) ctx.status("Could not load the image: " + ((err && err.message) || err));
    });

    /* ---------- view: zoom and pan move the viewBox ---------- */
    function setView(v) {
      const minW = st.W / MAX_ZOOM;
      const w = clamp(v.w, minW, st.W);
      const h = w * st.H / st.W;
      st.view = { x: clamp(v.x, 0, st.W - w), y: clamp(v.y, 0, st.H - h), w: w, h: h };
      svg.setAttribute("viewBox", [st.view.x, st.view.y, st.view.w, st.view.h].join(" "));
      root.dataset.zoom = String(round2(st.W / w));
    }
    function fit() { if (st.W) setView({ x: 0, y: 0, w: st.W }); }
    function zoom(factor, cx, cy) {
      if (!st.view) return;
      const v = st.view;
      if (cx === undefined) { cx = v.x + v.w / 2; cy = v.y + v.h / 2; }
      const w = clamp(v.w / factor, st.W / MAX_ZOOM, st.W);
      const k = w / v.w;
      setView({ x: cx - (cx - v.x) * k, y: cy - (cy - v.y) * k, w: w });
      draw();
    }

    /** The image pixel under a pointer event. */
    function pt(e) {
      const m = svg.getScreenCTM();
      const p = svg.createSVGPoint();
      p.x = e.clientX;
      p.y = e.clientY;
      const q = p.matrixTransform(m.inverse());
      return [clamp(q.x, 0, st.W), clamp(q.y, 0, st.H)];
    }
    /** Image pixels per screen pixel. */
    function upp() { const m = svg.getScreenCTM(); return m && m.a ? 1 / m.a : 1; }

    /* ---------- drawing ---------- */
    function colorOf(label) { const i = names.indexOf(label); return COLORS[(i < 0 ? 0 : i) % COLORS.length]; }

    function outline(s, i) {
      const color = colorOf(s.label);
      const a = { class: "shape" + (i === st.sel ? " is-selected" : ""), stroke: color, fill: color,
        "data-index": i, "data-label": s.label, "vector-effect": "non-scaling-stroke" };
      let n;
      if (s.b) n = svgEl("rect", Object.assign(a, { x: s.b[0], y: s.b[1], width: s.b[2] - s.b[0], height: s.b[3] - s.b[1] }));
      else n = svgEl("polygon", Object.assign(a, { points: s.p.map(function (q) { return q.join(","); }).join(" ") }));
      const title = svgEl("title");
      title.textContent = s.label;
      n.append(title);
      return n;
    }

    function tag(s, u) {
      const x = s.b ? s.b[0] : Math.min.apply(null, s.p.map(function (q) { return q[0]; }));
      const y = s.b ? s.b[1] : Math.min.apply(null, s.p.map(function (q) { return q[1]; }));
      const t = svgEl("text", { x: x + 2 * u, y: Math.max(y - 3 * u, 11 * u), class: "shape-tag",
        fill: colorOf(s.label), "font-size": 12 * u });
      t.textContent = s.label;
      return t;
    }

    function handles(s, i, u) {
      const h = HANDLE_PX * u;
      if (s.b) {
        const b = s.b;
        return [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]].map(function (c, k) {
          return svgEl("rect", { class: "shape-handle", "data-index": i, "data-handle": k,
            x: c[0] - h / 2, y: c[1] - h / 2, width: h, height: h, "vector-effect": "non-scaling-stroke" });
        });
      }
      return s.p.map(function (q, k) {
        return svgEl("circle", { class: "shape-handle", "data-index": i, "data-vertex": k, cx: q[0], cy: q[1], r: h / 2,
          "vector-effect": "non-scaling-stroke" });
      });
    }

    function draw() {
      if (st.gone) return;
      const u = upp();
      layer.replaceChildren();
      st.shapes.forEach(function (s, i) { layer.append(outline(s, i), tag(s, u)); });
      if (st.sel >= 0 && st.shapes[st.sel]) handles(st.shapes[st.sel], st.sel, u).forEach(function (n) { layer.append(n); });
      const d = st.drag;
      if (d && d.mode === "draw" && d.cur) {
        const b = boxOf(d.start, d.cur);
        layer.append(svgEl("rect", { class: "shape-draft", x: b[0], y: b[1], width: b[2] - b[0], height: b[3] - b[1],
          stroke: colorOf(names[st.cls]), "vector-effect": "non-scaling-stroke" }));
      }
      if (st.draft) {
        const pts = st.draft.concat(st.hover ? [st.hover] : []);
        layer.append(svgEl("polyline", { class: "shape-draft", points: pts.map(function (q) { return q.join(","); }).join(" "),
          stroke: colorOf(names[st.cls]), "vector-effect": "non-scaling-stroke" }));
        st.draft.forEach(function (q, k) {
          layer.append(svgEl("circle", { class: k === 0 ? "shape-first" : "shape-point", cx: q[0], cy: q[1],
            r: (k === 0 ? CLOSE_PX : HANDLE_PX / 2) * u * 0.6, "vector-effect": "non-scaling-stroke" }));
        });
      }
      const name = names[st.cls];
      clsInfo.replaceChildren("Class: ", Object.assign(document.createElement("strong"), { textContent: name }));
      clsInfo.dataset.class = name;
      count.textContent = st.shapes.length + (polygons ? " polygon" : " box") + (st.shapes.length === 1 ? "" : (polygons ? "s" : "es"));
      delBtn.disabled = st.sel < 0;
      root.dataset.count = String(st.shapes.length);
      root.dataset.selected = String(st.sel);
      root.dataset.drawing = st.draft ? String(st.draft.length) : "";
    }

    function boxOf(a, b) { return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])]; }

    /* ---------- pointer ---------- */
    function down(e) {
      if (!st.W || st.gone) return;
      if (e.button === 1 || (e.button === 0 && st.space)) {
        e.preventDefault();
        st.drag = { mode: "pan", sx: e.clientX, sy: e.clientY, view: st.view, u: upp() };
        svg.setPointerCapture(e.pointerId);
        return;
      }
      if (e.button !== 0) return;
      e.preventDefault();
      st.nothing = false;
      // Shift: always a new shape, even over an existing one (a box inside a box)
      const t = e.shiftKey ? image : e.target;
      const i = t.dataset && t.dataset.index !== undefined ? Number(t.dataset.index) : -1;
      const p = pt(e);
      if (polygons && st.draft) addPoint(p);
      else if (t.dataset && t.dataset.handle !== undefined) {
        const b = st.shapes[i].b;
        const k = Number(t.dataset.handle);
        st.drag = { mode: "resize", i: i, fixed: [b[(k === 0 || k === 3) ? 2 : 0], b[(k === 0 || k === 1) ? 3 : 1]] };
      } else if (t.dataset && t.dataset.vertex !== undefined) {
        st.drag = { mode: "vertex", i: i, k: Number(t.dataset.vertex) };
      } else if (i >= 0) {
        select(i);
        const s = st.shapes[i];
        st.drag = { mode: "move", i: i, start: p, orig: s.b ? s.b.slice() : s.p.map(function (q) { return q.slice(); }) };
      } else if (polygons) {
        st.sel = -1;
        st.draft = [p];
      } else {
        st.sel = -1;
        st.drag = { mode: "draw", start: p, cur: null, sx: e.clientX, sy: e.clientY };
      }
      if (st.drag) svg.setPointerCapture(e.pointerId);
      draw();
    }

    function move(e) {
      const d = st.drag;
      if (!d) {
        if (st.draft) { st.hover = pt(e); draw(); }
        return;
      }
      if (d.mode === "pan") {
        setView({ x: d.view.x - (e.clientX - d.sx) * d.u, y: d.view.y - (e.clientY - d.sy) * d.u, w: d.view.w });
        draw();
        return;
      }
      const p = pt(e);
      if (d.mode === "draw") {
        if (Math.abs(e.clientX - d.sx) >= MIN_BOX_PX || Math.abs(e.clientY - d.sy) >= MIN_BOX_PX) d.cur = p;
      } else if (d.mode === "resize") {
        st.shapes[d.i].b = boxOf(d.fixed, p);
      } else if (d.mode === "vertex") {
        st.shapes[d.i].p[d.k] = p;
      } else if (d.mode === "move") {
        shift(st.shapes[d.i], d.orig, p[0] - d.start[0], p[1] - d.start[1]);
      }
      draw();
    }

    function up() {
      const d = st.drag;
      st.drag = null;
      if (!d) return;
      if (d.mode === "draw" && d.cur) {
        const b = boxOf(d.start, d.cur);
        if (b[2] - b[0] >= 0.01 && b[3] - b[1] >= 0.01) {
          st.shapes.push({ label: names[st.cls], b: b });
          st.sel = st.shapes.length - 1;
        }
      } else if ((d.mode === "resize" || d.mode === "vertex") && degenerate(st.shapes[d.i])) {
        st.shapes.splice(d.i, 1); // squashed flat: gone
        st.sel = -1;
      }
      draw();
    }

    function degenerate(s) {
      if (s.b) return s.b[2] - s.b[0] < 0.01 || s.b[3] - s.b[1] < 0.01;
      return area(s.p) < 0.01;
    }
    function area(p) {
      let a = 0;
      for (let k = 0; k < p.length; k++) { const q = p[(k + 1) % p.length]; a += p[k][0] * q[1] - q[0] * p[k][1]; }
      return Math.abs(a) / 2;
    }

    /** Move shape `s` (its original coordinates `orig`) by (dx, dy), kept inside the image. */
    function shift(s, orig, dx, dy) {
      const xs = s.b ? [orig[0], orig[2]] : orig.map(function (q) { return q[0]; });
      const ys = s.b ? [orig[1], orig[3]] : orig.map(function (q) { return q[1]; });
      dx = clamp(dx, -Math.min.apply(null, xs), st.W - Math.max.apply(null, xs));
      dy = clamp(dy, -Math.min.apply(null, ys), st.H - Math.max.apply(null, ys));
      if (s.b) s.b = [orig[0] + dx, orig[1] + dy, orig[2] + dx, orig[3] + dy];
      else s.p = orig.map(function (q) { return [q[0] + dx, q[1] + dy]; });
    }

    /* ---------- polygons ---------- */
    function screenDist(a, b) { return Math.hypot(a[0] - b[0], a[1] - b[1]) / upp(); }
    function addPoint(p) {
      const d = st.draft;
      if (d.length >= 3 && screenDist(p, d[0]) <= CLOSE_PX) { closeDraft(); return; }
      if (screenDist(p, d[d.length - 1]) < 3) return; // the second click of a double click
      d.push(p);
    }
    function closeDraft() {
      const d = st.draft;
      if (!d || d.length < 3 || area(d) < 0.01) {
        ctx.status("a polygon needs 3 points or more around an area (Escape drops it)");
        return false;
      }
      st.shapes.push({ label: names[st.cls], p: d });
      st.draft = st.hover = null;
      st.sel = st.shapes.length - 1;
      draw();
      return true;
    }

    /* ---------- selection, classes, keys ---------- */
    function select(i) {
      st.sel = i;
      const k = i >= 0 ? names.indexOf(st.shapes[i].label) : -1;
      if (k >= 0) st.cls = k; // the next shape takes the selected one's class
    }

    function remove() {
      if (st.sel < 0) return false;
      st.shapes.splice(st.sel, 1);
      st.sel = st.shapes.length ? Math.min(st.sel, st.shapes.length - 1) : -1;
      draw();
      return true;
    }

    function nudge(dx, dy) {
      const s = st.shapes[st.sel];
      if (!s) return false;
      shift(s, s.b ? s.b.slice() : s.p.map(function (q) { return q.slice(); }), dx, dy);
      draw();
      return true;
    }

    function nothing() {
      if (st.shapes.length || st.draft) {
        ctx.status("shapes are drawn: Delete removes them, or Enter submits them");
        return;
      }
      st.nothing = true;
      ctx.submit();
    }

    function onKey(e) {
      const k = e.key;
      if (k === " ") { st.space = true; svg.classList.add("is-panning"); return true; }
      if (k === "Escape") {
        st.draft = st.hover = null;
        st.sel = -1;
        draw();
        return true;
      }
      if (k === "Enter" && st.draft) { if (!e.repeat) closeDraft(); return true; }
      if (k === "Backspace" && st.draft) {
        st.draft.pop();
        if (!st.draft.length) st.draft = null;
        draw();
        return true;
      }
      if (k === "Delete" || k === "Backspace") return remove() || k === "Delete";
      if (k === "Tab") {
        if (st.shapes.length) {
          const n = st.shapes.length;
          select(st.sel < 0 ? (e.shiftKey ? n - 1 : 0) : (st.sel + (e.shiftKey ? n - 1 : 1)) % n);
          draw();
        }
        return true;
      }
      if (k === "n" || k === "N") { if (!e.repeat) nothing(); return true; }
      if (k === "+" || k === "=") { zoom(1.25); return true; }
      if (k === "-" || k === "_") { zoom(0.8); return true; }
      if (k === "f" || k === "F") { fit(); draw(); return true; }
      const step = e.shiftKey ? 10 : 1;
      const arrows = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      if (arrows[k] && st.sel >= 0) return nudge(arrows[k][0], arrows[k][1]);
      return false;
    }

    function keyUp(e) { if (e.key === " ") { st.space = false; svg.classList.remove("is-panning"); } }
    function wheel(e) {
      if (!st.W) return;
      e.preventDefault();
      const p = pt(e);
      zoom(Math.exp(-e.deltaY * 0.0015), p[0], p[1]);
    }

    svg.addEventListener("pointerdown", down);
    svg.addEventListener("pointermove", move);
    svg.addEventListener("pointerup", up);
    svg.addEventListener("pointercancel", up);
    svg.addEventListener("dblclick", function (e) { e.preventDefault(); if (st.draft) closeDraft(); });
    svg.addEventListener("wheel", wheel, { passive: false });
    svg.addEventListener("contextmenu", function (e) { e.preventDefault(); });
    document.addEventListener("keyup", keyUp);
    window.addEventListener("resize", draw);
    draw();

    return {
      answer: function () {
        if (st.draft) { ctx.status("finish the polygon first: Enter closes it, Escape drops it"); return null; }
        if (!st.shapes.length && !st.nothing) {
          ctx.status("nothing drawn: draw " + (polygons ? "polygons" : "boxes") + ", or press n if there is nothing to mark");
          return null;
        }
        return st.shapes.map(function (s) {
          if (s.b) return [round2(s.b[0]), round2(s.b[1]), round2(s.b[2]), round2(s.b[3]), s.label];
          return { label: s.label, points: s.p.map(function (q) { return [round2(q[0]), round2(q[1])]; }) };
        });
      },
      pick: function (i) {
        if (i < 0 || i >= names.length) return;
        st.cls = lastClass[kind] = i;
        if (st.sel >= 0) st.shapes[st.sel].label = names[i];
        draw();
      },
      key: onKey,
      destroy: function () {
        st.gone = true;
        document.removeEventListener("keyup", keyUp);
        window.removeEventListener("resize", draw);
      },
    };
  }

  window.AssayShapes = {
    mount: mount,
    keysHelp: {
      boxes: "Drag on the image draws a box (Shift+drag: even over another) · click selects, drag moves, corners resize · " +
        "the class's key sets its class " +
        "(and the next box's) · Tab next box · Delete removes · wheel or +/− zoom, f fits, space+drag pans · " +
        "n nothing to mark · Enter submit · s skip · z undo",
      polygons: "Click to add points; the first point, Enter or a double click closes · drag a vertex to edit · " +
        "the class's key sets its class · Tab next polygon · Delete removes (Backspace: last point) · wheel or +/− zoom, " +
        "f fits, space+drag pans · n nothing to mark · Enter submit · s skip · z undo",
    },
  };
})();
