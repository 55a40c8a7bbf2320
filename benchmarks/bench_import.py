"""Import benchmark: 100,000 text rows from a CSV via ``Workspace.import_file``.

Bars: wall time <= 20 s, peak RSS <= 500 MB. Also times a re-import of the
same file (every row skipped as a duplicate).

The CSV (short review-like texts + 2 metadata columns, fixed seed) is written
to a temp folder by this process; each import runs in a fresh child process
so that its RSS high-water mark is the import's own (the baseline RSS, after
imports and opening the workspace, is reported next to it).

    python benchmarks/bench_import.py [--rows 100000] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

BAR_S, BAR_MB = 20.0, 500.0


def child(home: str, csv_path: str, db_url: str | None) -> None:
    import json

    from assay import Workspace

    ws = Workspace(home, database_url=db_url)
    try:
        ds = ws.get_dataset("bench")
    except Exception:  # noqa: BLE001
        ds = ws.create_dataset("bench")
    base_rss, base_peak = C.rss_mb(), C.peak_rss_mb()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    res = ws.import_file(ds["id"], csv_path, text_column="text")
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    ws.close()
    print(json.dumps({"wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                      "baseline_rss_mb": round(base_rss, 1), "baseline_peak_mb": round(base_peak, 1),
                      "peak_rss_mb": round(C.peak_rss_mb(), 1), "added": res["added"],
                      "skipped": res["skipped"]}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--child", nargs=3, metavar=("HOME", "CSV", "URL"))
    a = ap.parse_args()
    if a.child:
        home, csv_path, url = a.child
        return child(home, csv_path, None if url == "-" else url)

    with tempfile.TemporaryDirectory(prefix="assay-bench-import-") as tmp:
        csv_path = Path(tmp) / "texts.csv"
        t0 = time.perf_counter()
        C.write_csv(csv_path, a.rows)
        gen_s = time.perf_counter() - t0
        csv_mb = round(csv_path.stat().st_size / (1 << 20), 1)
        url, dbname = "-", None
        if a.backend == "postgresql":
            dbname = f"assay_bench_import_{os.getpid()}"
            url = C.pg_create(dbname)
        try:
            me = str(Path(__file__).resolve())
            first = C.run_child([me, "--child", tmp, str(csv_path), url])
            again = C.run_child([me, "--child", tmp, str(csv_path), url])
        finally:
            if dbname:
                C.pg_drop(dbname)
    result = {
        "bench": "import", "backend": a.backend, "rows": a.rows,
        "csv_mb": csv_mb, "generate_csv_s": round(gen_s, 2),
        "import": first, "reimport": again,
        "bars": {"wall_s": BAR_S, "peak_rss_mb": BAR_MB},
        "pass": first["wall_s"] <= BAR_S and first["peak_rss_mb"] <= BAR_MB
        and first["added"] == a.rows and again["skipped"] == a.rows,
        "label_studio_s": C.LABEL_STUDIO["import_100k_s"],
        "speedup_vs_label_studio": round(C.LABEL_STUDIO["import_100k_s"] / first["wall_s"], 1),
        "machine": C.machine(),
    }
    if a.backend == "postgresql":
        result["machine"]["postgresql"] = C.pg_version()
    C.emit(result,
           ["bench", "backend", "rows", "wall s", "baseline RSS MB", "peak RSS MB", "re-import s",
            "re-import peak MB", "LS 1.23.2 s", "ratio", "pass"],
           ["import", a.backend, a.rows, first["wall_s"], first["baseline_rss_mb"], first["peak_rss_mb"],
            again["wall_s"], again["peak_rss_mb"], C.LABEL_STUDIO["import_100k_s"],
            f'{result["speedup_vs_label_studio"]}x faster', "yes" if result["pass"] else "NO"])


if __name__ == "__main__":
    main()
