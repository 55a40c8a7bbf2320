"""Embedding map (issue 15 part 6): projection time and memory for
clustered vectors, and the /map page at 100k points in headless Chromium
(time to first draw, frame time while zooming).

    .venv/bin/python benchmarks/bench_map.py [--n 100000] [--umap-n 100000] [--dim 384]

The browser part serves the page from a live server over a tiny workspace
and answers the map's API calls with ``n`` synthetic points (page.route):
it measures drawing, not the server. Timings on a shared machine are
noisy; PCA runs in the same process as the baseline.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run"]


def clustered(n: int, d: int, k: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)).astype(np.float32)
    return centres[rng.integers(k, size=n)] + 0.5 * rng.normal(size=(n, d)).astype(np.float32)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def projection(n: int, umap_n: int, d: int) -> dict:
    from assay.learn.projection import project

    out = {}
    for method, size in (("pca", n), ("umap", umap_n)):
        if size <= 0:
            continue
        x = clustered(size, d)
        before = rss_mb()
        t0 = time.perf_counter()
        project(x, method, n_jobs=1 if method == "pca" else 2)
        out[method] = {"n": size, "seconds": round(time.perf_counter() - t0, 2),
                       "peak_rss_growth_mb": round(rss_mb() - before, 1), "input_mb": round(x.nbytes / 2**20, 1)}
        print(method, out[method], flush=True)
    return out


def browser(n: int) -> dict:
    from playwright.sync_api import sync_playwright

    from _server import LiveServer
    from assay import Workspace

    rng = np.random.default_rng(1)
    xy = np.clip(clustered(n, 2, k=30) / 4, -1, 1)
    body = json.dumps({"ids": list(range(1, n + 1)), "x": xy[:, 0].round(5).tolist(), "y": xy[:, 1].round(5).tolist(),
                       "slices": {}, "classes": ["a", "b", "c"], "label": rng.integers(-1, 3, n).tolist(),
                       "confidence": [None] * n})
    status = json.dumps({"state": "done", "count": n, "message": ""})
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ds = ws.create_dataset("d")
        _, token = ws.add_user("boss", "admin")
        with LiveServer(ws) as srv, sync_playwright() as pw:
            b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
            page = b.new_page(viewport={"width": 1200, "height": 900})
            page.route("**/map/points*", lambda r: r.fulfill(status=200, body=body, content_type="application/json"))
            page.route("**/map?*", lambda r: r.fulfill(status=200, body=status, content_type="application/json"))
            page.goto(f"{srv.base}/login#token={token}")
            page.wait_for_url(srv.base + "/")
            t0 = time.perf_counter()
            page.goto(f"{srv.base}/map/{ds['id']}?method=pca")
            page.wait_for_function("() => window.assayMap && window.assayMap.ready", timeout=120_000)
            load = time.perf_counter() - t0
            first = page.evaluate("() => window.assayMap.firstDrawMs")
            page.evaluate("() => { window.assayMap.frames = []; }")
            box = page.locator("#map-canvas").bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            for _ in range(30):
                page.mouse.wheel(0, -100)
                page.wait_for_timeout(30)
            page.wait_for_timeout(300)
            frames = page.evaluate("() => window.assayMap.frames")
            # the whole map in view: every point drawn each frame (panning with the keyboard)
            page.click("#m-reset")
            page.focus("#map-canvas")
            page.evaluate("() => { window.assayMap.frames = []; }")
            for i in range(30):  # back and forth: the map stays in view
                page.keyboard.press("ArrowLeft" if i % 2 else "ArrowRight")
                page.wait_for_timeout(30)
            page.wait_for_timeout(300)
            full = sorted(page.evaluate("() => window.assayMap.frames"))
            b.close()
        ws.close()
    f = sorted(frames)
    return {"n": n, "page_ready_s": round(load, 2), "fetch_parse_first_draw_ms": round(first, 1),
            "zoom_frames": len(f), "frame_ms_median": round(f[len(f) // 2], 1), "frame_ms_max": round(f[-1], 1),
            "full_view_frames": len(full), "full_view_frame_ms_median": round(full[len(full) // 2], 1),
            "full_view_frame_ms_max": round(full[-1], 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--umap-n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--skip-browser", action="store_true")
    a = ap.parse_args()
    res = {"projection": projection(a.n, a.umap_n, a.dim)}
    if not a.skip_browser:
        res["browser"] = browser(a.n)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
