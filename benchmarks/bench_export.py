"""Export benchmark: a project of 100,000 answered items exported to JSONL,
CSV and Parquet with ``Workspace.export``.

Bars: each format <= 15 s and peak RSS <= 300 MB. Each format runs in a fresh
child process so that the RSS high-water marks do not mix; the baseline RSS
(after imports and opening the workspace) is reported too.

The answers are filled in with direct SQL (one answer per task, 3 annotators
round-robin, overlap 1) -- the point is the export. The workspace is built
once and cached under ``--cache`` (default /tmp/assay-bench-export).

    python benchmarks/bench_export.py [--rows 100000] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

BAR_S, BAR_MB = 15.0, 300.0
FORMATS = ("jsonl", "csv", "parquet")


def build(cache: Path, backend: str, rows: int) -> tuple[Path, str | None, int]:
    folder = cache / f"{backend}-{rows}"
    meta_path = folder / "meta.json"
    dbname = f"assay_bench_export_{rows}"
    if meta_path.exists() and (backend == "sqlite" or C.pg_exists(dbname)):
        m = json.loads(meta_path.read_text())
        return folder / "home", m["url"], m["project_id"]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    url = C.pg_create(dbname) if backend == "postgresql" else None
    from sqlalchemy import text

    from assay import Workspace

    ws = Workspace(folder / "home", database_url=url)
    ds = ws.create_dataset("bench")
    ws.import_file(ds["id"], C.write_csv(folder / "texts.csv", rows, seed=11))
    (folder / "texts.csv").unlink()
    p = ws.create_project("bench", ds["id"], ["positive", "negative", "neutral"], overlap=1)
    uids = [ws.add_user(f"annotator{i}", "annotator")[0]["id"] for i in range(3)]
    for u in uids:
        ws.add_member(p["id"], u)
    with ws.db.write() as conn:
        conn.execute(text(
            "INSERT INTO answers (task_id, project_id, item_id, annotator_id, label, created_at, lead_time) "
            "SELECT t.id, t.project_id, t.item_id, "
            "CASE t.id % 3 WHEN 0 THEN :u0 WHEN 1 THEN :u1 ELSE :u2 END, "
            "CAST(CASE t.id % 3 WHEN 0 THEN '\"positive\"' WHEN 1 THEN '\"negative\"' "
            "ELSE '\"neutral\"' END AS " + ("TEXT" if backend == "sqlite" else "JSON") + "), "
            ":now + t.id, 3.0 FROM tasks t WHERE t.project_id = :p"
        ), {"u0": uids[0], "u1": uids[1], "u2": uids[2], "now": time.time(), "p": p["id"]})
        conn.execute(text("UPDATE tasks SET answer_count = 1, open_slots = 0 WHERE project_id = :p"),
                     {"p": p["id"]})
    ws.close()
    meta_path.write_text(json.dumps({"url": url, "project_id": p["id"]}))
    return folder / "home", url, p["id"]


def child(home: str, url: str | None, project_id: int, fmt: str, out: str) -> None:
    from assay import Workspace

    ws = Workspace(home, database_url=url)
    ws.get_project(project_id)
    base_rss, base_peak = C.rss_mb(), C.peak_rss_mb()
    t0 = time.perf_counter()
    c0 = time.process_time()
    res = ws.export(project_id, out, fmt)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    ws.close()
    print(json.dumps({"format": fmt, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                      "baseline_rss_mb": round(base_rss, 1), "baseline_peak_mb": round(base_peak, 1),
                      "peak_rss_mb": round(C.peak_rss_mb(), 1), "items": res["items"],
                      "file_mb": round(Path(out).stat().st_size / (1 << 20), 1)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--cache", default="/tmp/assay-bench-export")
    ap.add_argument("--child", nargs=5, metavar=("HOME", "URL", "PROJECT", "FORMAT", "OUT"))
    a = ap.parse_args()
    if a.child:
        home, url, pid, fmt, out = a.child
        return child(home, None if url == "-" else url, int(pid), fmt, out)
    cache = Path(a.cache)
    t0 = time.perf_counter()
    home, url, pid = build(cache, a.backend, a.rows)
    build_s = time.perf_counter() - t0
    outdir = cache / "out"
    outdir.mkdir(parents=True, exist_ok=True)
    me = str(Path(__file__).resolve())
    runs = []
    for fmt in a.formats.split(","):
        out = outdir / f"export.{fmt}"
        r = C.run_child([me, "--child", str(home), url or "-", str(pid), fmt, str(out)])
        out.unlink(missing_ok=True)
        r["pass"] = r["wall_s"] <= BAR_S and r["peak_rss_mb"] <= BAR_MB and r["items"] == a.rows
        runs.append(r)
    ls = C.LABEL_STUDIO
    result = {
        "bench": "export", "backend": a.backend, "rows": a.rows, "build_or_cache_s": round(build_s, 1),
        "runs": runs, "bars": {"wall_s": BAR_S, "peak_rss_mb": BAR_MB},
        "label_studio": {"wall_s": ls["export_100k_s"], "peak_rss_mb": ls["export_100k_peak_mb"]},
        "pass": all(r["pass"] for r in runs), "machine": C.machine(),
    }
    if a.backend == "postgresql":
        result["machine"]["postgresql"] = C.pg_version()
    print(json.dumps(result, indent=2))
    print()
    header = ["bench", "backend", "format", "rows", "wall s", "baseline RSS MB", "peak RSS MB", "file MB",
              "LS 1.23.2 s / MB", "ratio (time, memory)", "pass"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in runs:
        print("| " + " | ".join(str(x) for x in [
            "export", a.backend, r["format"], r["items"], r["wall_s"], r["baseline_rss_mb"], r["peak_rss_mb"],
            r["file_mb"], f'{ls["export_100k_s"]:g} / {ls["export_100k_peak_mb"]:g}',
            f'{ls["export_100k_s"] / r["wall_s"]:.1f}x faster, {ls["export_100k_peak_mb"] / r["peak_rss_mb"]:.1f}x less',
            "yes" if r["pass"] else "NO"]) + " |")


if __name__ == "__main__":
    main()
