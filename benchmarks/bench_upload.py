"""Upload benchmark (issue 16): 100,000 CSV rows sent to a live server's
``POST /api/datasets/{id}/import`` (multipart, the route the data page's
upload uses), measuring the server process's peak RSS against the import
bar (≤ 500 MB, ``bench_import.py``), with a direct ``Workspace.import_file``
of the same file in the same run as the baseline.

The server is ``uvicorn`` over ``create_app`` in a child process; its RSS
when idle and its high-water mark (``VmHWM`` from /proc/PID/status, Linux)
after the upload are read from outside. The file is streamed from disk by
httpx; the server spools it to disk a MiB at a time, then imports it.

    python benchmarks/bench_upload.py [--rows 100000] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import bench_import  # noqa: E402

BAR_MB = 500.0

SERVER = """
import sys, uvicorn
from assay import Workspace
from assay.server import create_app
home, url, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
ws = Workspace(home, database_url=None if url == "-" else url)
uvicorn.run(create_app(ws, reclaim_interval=0), host="127.0.0.1", port=port, log_level="warning")
"""


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def upload(home: str, url: str, csv_path: Path) -> dict:
    import httpx

    from assay import Workspace

    ws = Workspace(home, database_url=None if url == "-" else url)
    _, token = ws.add_user("bench-admin", "admin")
    ds = ws.create_dataset("upload")
    ws.close()
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(C.ROOT / "src"), ASSAY_MAX_UPLOAD_MB="1000")
    proc = subprocess.Popen([sys.executable, "-c", SERVER, home, url, str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    h = {"Authorization": f"Bearer {token}"}
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/api/me", headers=h, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        idle_rss, idle_peak = _status_mb(proc.pid, "VmRSS"), _status_mb(proc.pid, "VmHWM")
        t0 = time.perf_counter()
        with open(csv_path, "rb") as fh:
            r = httpx.post(f"{base}/api/datasets/{ds['id']}/import", headers=h, timeout=600,
                           files={"file": ("texts.csv", fh, "text/csv")})
        wall = time.perf_counter() - t0
        r.raise_for_status()
        peak = _status_mb(proc.pid, "VmHWM")
        page_t = time.perf_counter()  # one items page with a filter, as the page asks for it
        p = httpx.get(f"{base}/api/datasets/{ds['id']}/items", params={"limit": 50, "q": "good"}, headers=h)
        page_ms = (time.perf_counter() - page_t) * 1000
        p.raise_for_status()
    finally:
        proc.terminate()
        proc.wait(30)
    return {"wall_s": round(wall, 2), "idle_rss_mb": round(idle_rss, 1), "idle_peak_mb": round(idle_peak, 1),
            "peak_rss_mb": round(peak, 1), "added": r.json()["added"],
            "filtered_page_ms": round(page_ms, 1), "filtered_page_items": len(p.json()["items"])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="assay-bench-upload-") as tmp:
        csv_path = Path(tmp) / "texts.csv"
        C.write_csv(csv_path, a.rows)
        csv_mb = round(csv_path.stat().st_size / (1 << 20), 1)
        urls, names = [], []
        for k in ("direct", "upload"):
            if a.backend == "postgresql":
                names.append(f"assay_bench_upload_{k}_{os.getpid()}")
                urls.append(C.pg_create(names[-1]))
            else:
                urls.append("-")
        try:
            homes = [Path(tmp) / "direct", Path(tmp) / "upload"]
            direct = C.run_child([bench_import.__file__, "--child", str(homes[0]), str(csv_path), urls[0]])
            up = upload(str(homes[1]), urls[1], csv_path)
        finally:
            for n in names:
                C.pg_drop(n)
    out = {"bench": "upload", "backend": a.backend, "rows": a.rows,
           "csv_mb": csv_mb,
           "direct": direct, "upload": up,
           "peak_ratio_upload_vs_direct": round(up["peak_rss_mb"] / direct["peak_rss_mb"], 2),
           "pass": up["peak_rss_mb"] <= BAR_MB and up["added"] == a.rows,
           "load": os.getloadavg()[0]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
