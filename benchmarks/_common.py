"""Shared helpers for the benchmark scripts: seeded test data, memory and CPU
probes, machine facts, and the JSON + markdown output every script prints."""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import platform
import random
import resource
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("ASSAY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

# Label Studio 1.23.2 reference numbers (measured on a 2-core machine like ours;
# from the issue).
LABEL_STUDIO = {
    "import_100k_s": 22.6,
    "answers_per_s": (4, 6),  # total, with 1 or 8 annotators
    "next_p95_s": 3.6,  # 8 annotators, 100k tasks
    "double_assigned_fraction": 0.10,  # overlap 1
    "export_100k_s": 117.0,
    "export_100k_peak_mb": 704.0,
}

_WORDS = (
    "the a this that my our your great good bad terrible awesome okay fine poor excellent "
    "product service delivery quality price support app update screen battery camera sound "
    "shipping package box order refund return item size color fit fabric taste smell room "
    "staff hotel food meal coffee pizza burger salad waiter table view bed bathroom wifi "
    "was is were arrived broke works worked stopped loved hated liked expected received "
    "fast slow late early cheap expensive friendly rude helpful clean dirty noisy quiet "
    "really very quite too not never always again still just so much more less and but "
    "because when after before with without for from to in on at of it they we i you "
    "would will could should recommend buy order stay visit return use try keep send "
    "day week month year time minutes hours customer team manager driver seller "
    "perfect broken missing wrong right nice lovely horrible amazing disappointing "
    "instructions setup install login account password email phone call chat answer"
).split()
_SITES = ["web", "ios", "android", "email", "store", "partner"]


def crowd_sets(data: Path, known: list[str]) -> list[str]:
    """The crowd sets under ``data`` (folders with answers.csv and truth.csv):
    those in ``known`` first, in its order, then the others by name."""
    here = sorted(p.name for p in Path(data).iterdir()
                  if (p / "answers.csv").is_file() and (p / "truth.csv").is_file())
    return [s for s in known if s in here] + [s for s in here if s not in known]


def gen_rows(n: int, seed: int = 42):
    """``n`` rows of (text, site, rating): short review-like texts, 6–40 words."""
    rnd = random.Random(seed)
    words, sites = _WORDS, _SITES
    for i in range(n):
        k = rnd.randint(6, 40)
        t = " ".join(rnd.choices(words, k=k)).capitalize() + rnd.choice(".!?")
        yield t, rnd.choice(sites), str(rnd.randint(1, 5))


def write_csv(path: Path, n: int, seed: int = 42) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "site", "rating"])
        w.writerows(gen_rows(n, seed))
    return path


def peak_rss_mb() -> float:
    """High-water RSS of this process so far, in MiB.

    Linux: ``VmHWM`` from /proc/self/status, the peak of this process's own
    address space. (``getrusage().ru_maxrss`` is not used there: across
    fork + exec it keeps the *parent's* high-water mark, so a child started
    by a big parent would report the parent's peak.)
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / (1 << 20)


def pg_version() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=3) as c:
            return c.execute("SHOW server_version").fetchone()[0]
    except Exception:  # noqa: BLE001
        return None


def machine() -> dict:
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    return {
        "cpu": model, "cores": os.cpu_count(), "ram_mb": mem,
        "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def run_child(args: list[str], env: dict | None = None) -> dict:
    """Run ``python <args>`` and parse the last stdout line as JSON."""
    e = dict(os.environ)
    e.setdefault("PYTHONPATH", str(ROOT / "src"))
    if env:
        e.update(env)
    p = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=e)
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        raise SystemExit(f"child {args} failed with {p.returncode}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def emit(result: dict, header: list[str], row: list) -> None:
    """Print the JSON result and a markdown table row."""
    print(json.dumps(result, indent=2))
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    print("| " + " | ".join(str(x) for x in row) + " |")


def pg_create(name: str) -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + "/" + name


def pg_drop(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        return c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def pg_url(name: str) -> str:
    return PG_ADMIN.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + "/" + name


def score_export(path, truth_csv) -> dict:
    """Score an exported project (JSONL, as ``assay export`` / ``simulate
    --export`` write it) against a truth file (``item,label``): the accuracy
    of the labels a user gets. Items are matched by the record's
    ``meta.item``; an item without a final label counts as unlabeled, not
    wrong."""
    from collections import Counter

    with open(truth_csv, newline="", encoding="utf-8") as fh:
        truth = {r["item"]: r["label"] for r in csv.DictReader(fh)}
    items = labeled = scored = right = 0
    sources: Counter = Counter()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = json.loads(line)
            items += 1
            sources[rec.get("label_source") or "none"] += 1
            if rec["label"] is None:
                continue
            labeled += 1
            item = str((rec.get("meta") or {}).get("item"))
            if item in truth:
                scored += 1
                right += str(rec["label"]) == truth[item]
    return {"export_items": items, "export_labeled": labeled, "export_scored": scored,
            "export_accuracy": round(right / scored, 6) if scored else None,
            "export_sources": dict(sorted(sources.items()))}
