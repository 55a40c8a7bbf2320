"""The person view of /admin/people (issue 16 part 4) on bench_admin.py's
workspace (1M tasks, 100 annotators, 100k answers, SQLite): the time of each
API call the view makes for one annotator, over loopback against a real
server (one worker, background jobs off): the first call after the server
starts, then p50/p95 over LOADS rounds.

    python benchmarks/bench_admin_people.py [CACHE] [LOADS]   # default /tmp/assay-bench-admin 20
"""
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx  # noqa: E402

import bench_admin as B  # noqa: E402
from bench_handout import free_port, start_server  # noqa: E402

cache = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/assay-bench-admin")
loads = int(sys.argv[2]) if len(sys.argv) > 2 else 20
t0 = time.perf_counter()
meta = B.build(cache, 1_000_000, 100, 100_000, "sqlite")
print("built in", round(time.perf_counter() - t0), "s", flush=True)
run = cache / "run-people"
shutil.rmtree(run, ignore_errors=True)
shutil.copytree(cache / "sqlite-1000000-100-100000" / "home", run / "home")
os.environ["ASSAY_REFIT_INTERVAL"] = "0"
port = free_port()
proc = start_server(run / "home", None, port, 1, run / "server.log")
try:
    base = f"http://127.0.0.1:{port}"
    h = {"Authorization": "Bearer " + meta["admin_token"]}
    with httpx.Client(base_url=base, headers=h, timeout=600) as c:
        users = c.get("/api/users").json()["users"]
        uid = [u for u in users if u["username"] == "annotator050"][0]["id"]
        projects = [p["id"] for p in c.get("/api/projects").json()["projects"]]
        calls = ["/api/me", "/api/users", f"/api/tokens?user_id={uid}", "/api/projects"]
        for pid in projects:
            calls += [f"/api/projects/{pid}/members", f"/api/projects/{pid}/annotators/gold",
                      f"/api/projects/{pid}/skills?limit=1&after={uid - 1}",
                      f"/api/projects/{pid}/answers?order=desc&limit=5&user_id={uid}",
                      f"/api/projects/{pid}/progress"]
        times = {u: [] for u in calls}
        first = {}
        for i in range(loads + 1):
            for u in calls:
                t = time.perf_counter(); r = c.get(u); dt = 1000 * (time.perf_counter() - t)
                assert r.status_code == 200, (u, r.status_code, r.text[:200])
                if i == 0: first[u] = round(dt, 1)
                else: times[u].append(dt)
    out = {}
    for u, ts in times.items():
        ts.sort(); out[u] = {"p50_ms": round(ts[len(ts)//2], 1), "p95_ms": round(ts[int(0.95*(len(ts)-1))], 1), "first_ms": first[u]}
        print(f"{u:60s} p50 {out[u]['p50_ms']:8.1f}  p95 {out[u]['p95_ms']:8.1f}  first {first[u]:8.1f}", flush=True)
    print(json.dumps({"sum_p95_person_view_ms": round(sum(out[u]["p95_ms"] for u in calls if "progress" not in u), 1),
                      "load_avg": os.getloadavg()}))
finally:
    os.killpg(proc.pid, signal.SIGTERM); proc.wait(30)
