"""Small helpers shared by the ingest, hand-out, export and API tests.

Everything here talks to the real database through a real
:class:`assay.Workspace`; nothing is mocked.
"""

from __future__ import annotations

import csv
import gzip
import time
import io
import zipfile
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from sqlalchemy import func, select, text

from assay.store.schema import metadata


# ---------------------------------------------------------------- counting


def count(ws, table: str, where: str = "", **params) -> int:
    """Rows in ``table`` (optionally filtered by a SQL ``where``)."""
    t = metadata.tables[table]
    with ws.db.read() as conn:
        if where:
            return conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"), params).scalar_one()
        return conn.execute(select(func.count()).select_from(t)).scalar_one()


def snapshot(ws) -> dict[str, int]:
    """Row counts of every table: compare before/after to prove nothing changed."""
    return {name: count(ws, name) for name in metadata.tables}


def blob_files(ws) -> set[str]:
    """Every file in the blob store (relative paths), temporary ones included."""
    root = ws.blobs.root
    if not root.exists():
        return set()
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def task_rows(ws, project_id: int) -> list:
    with ws.db.read() as conn:
        return conn.execute(text(
            "SELECT id, item_id, needed, answer_count, open_slots FROM tasks "
            "WHERE project_id = :p ORDER BY id"), {"p": project_id}).all()


def task_for_item(ws, project_id: int, item_id: int) -> int:
    with ws.db.read() as conn:
        return conn.execute(text("SELECT id FROM tasks WHERE project_id = :p AND item_id = :i"),
                            {"p": project_id, "i": item_id}).scalar_one()


def answer_item(ws, project_id: int, item_id: int, user, label) -> dict:
    """Answer the task of a chosen item as ``user``: test set-up that takes a
    lease on that task (as tasks/next would, slot counter included), then
    answers through :meth:`Workspace.submit`, which takes answers on a lease only."""
    u = ws.get_user(user) if not isinstance(user, dict) else user
    task_id = task_for_item(ws, project_id, item_id)
    now = time.time()
    with ws.db.write() as conn:
        took = conn.execute(text("UPDATE tasks SET open_slots = open_slots - 1 WHERE id = :t AND open_slots > 0"
                                 " RETURNING id"), {"t": task_id}).first()
        if took is None:
            raise AssertionError(f"task {task_id} has no open slot to lease")
        conn.execute(text("INSERT INTO leases (task_id, annotator_id, project_id, expires_at, created_at)"
                          " VALUES (:t, :u, :p, :exp, :now)"),
                     {"t": task_id, "u": u["id"], "p": project_id, "exp": now + 600, "now": now})
    return ws.submit(task_id, u, label)


def in_id_order(ws, project_id: int) -> None:
    """Test set-up: hand the project's pool out in task id order (the hand-out
    shuffles it; a test that walks items in a known order asks for this)."""
    with ws.db.write() as conn:
        conn.execute(text("UPDATE tasks SET shuffle_key = 0 WHERE project_id = :p"), {"p": project_id})


def item_ids(ws, dataset_id: int) -> list[int]:
    with ws.db.read() as conn:
        return list(conn.execute(text("SELECT id FROM items WHERE dataset_id = :d ORDER BY id"),
                                 {"d": dataset_id}).scalars())


# ---------------------------------------------------------------- files


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def text_dataset(ws, name: str, texts: Sequence[str], *, meta: Sequence[dict] | None = None,
                 **prov) -> dict:
    """A dataset holding ``texts`` (imported as a DataFrame); returns the dataset."""
    import pandas as pd

    ds = ws.create_dataset(name)
    data = {"text": list(texts)}
    if meta:
        for key in meta[0]:
            data[key] = [m[key] for m in meta]
    ws.import_dataframe(ds["id"], pd.DataFrame(data), **prov)
    return ws.get_dataset(ds["id"])


def project_with_annotators(ws, n_items: int, n_annotators: int, *, overlap: int = 1,
                            classes=("pos", "neg"), kind: str = "single", name: str = "p",
                            **project_kw) -> tuple[dict, list[dict]]:
    """A project over ``n_items`` fresh texts and ``n_annotators`` member annotators."""
    ds = text_dataset(ws, f"{name}-data", [f"{name} item {i}" for i in range(n_items)])
    p = ws.create_project(name, ds["id"], list(classes), kind=kind, overlap=overlap, **project_kw)
    people = []
    for i in range(n_annotators):
        u, _ = ws.add_user(f"{name}-ann{i}", "annotator")
        ws.add_member(p["id"], u["id"])
        people.append(u)
    return p, people


def embedded_dataset(ws, n: int, *, seed: int = 0, space: str = "f", name: str = "d"):
    """``n`` text items whose 4-d vectors (stored in ``space``) separate two
    classes; returns ``(dataset, item_ids, y)`` with ``y`` the 0/1 classes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y = rng.integers(2, size=n)
    ds = text_dataset(ws, name, [f"t{i}" for i in range(n)])
    ids = item_ids(ws, ds["id"])
    X = (np.where(y[:, None] == 1, 1.0, -1.0) * 2 + rng.normal(0, 1, (n, 4))).astype(np.float32)
    ws.vectors.add(space, np.array(ids), X, {"model": space, "kind": "given"})
    return ds, ids, y


def liar_crowd(n_items=300, seed=0, flip_worker=True):
    """Two good workers on every item, a third who always gives the wrong
    binary label; items 0..49 answered only by the liar."""
    import numpy as np

    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n_items)
    items, workers, labels = [], [], []
    for i, t in enumerate(truth):
        if i >= 50:
            for w in (0, 1):
                items.append(i), workers.append(w), labels.append(t if rng.random() < 0.9 else 1 - t)
        items.append(i), workers.append(2), labels.append(1 - t if flip_worker else t)
    return np.array(items), np.array(workers), np.array(labels), truth


def idiosyncratic_crowd(seed: int = 0, *, n_items: int, n_workers: int, k: int, per_item: int):
    """Integer-coded answers ``(items, workers, labels, truth)``: workers with
    their own confusion matrices, accuracy ~ Beta(2, 2), 20 % spammers
    answering from a fixed distribution."""
    import numpy as np

    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    acc = rng.beta(2.0, 2.0, n_workers)
    conf = np.zeros((n_workers, k, k))
    for c in range(k):  # right with probability acc, else a worker-specific wrong label
        others = [x for x in range(k) if x != c]
        conf[:, c, c] = acc
        conf[:, c, others] = (1 - acc)[:, None] * rng.dirichlet(np.ones(k - 1), n_workers)
    spam = rng.random(n_workers) < 0.2
    conf[spam] = rng.dirichlet(np.ones(k), size=int(spam.sum()))[:, None, :]
    items = np.repeat(np.arange(n_items), per_item)
    workers = np.concatenate([rng.choice(n_workers, per_item, replace=False) for _ in range(n_items)])
    cdf = np.cumsum(conf[workers, truth[items]], axis=1)
    labels = np.minimum((rng.random(items.size)[:, None] > cdf).sum(axis=1), k - 1)
    return items, workers, labels, truth


# ---------------------------------------------------------------- images


@lru_cache(maxsize=1)
def _mnist_rows(path: str, n: int):
    rows = []
    with gzip.open(path, "rt") as fh:
        for line, _ in zip(fh, range(n)):
            values = [int(v) for v in line.split(",")]
            rows.append((values[:784], values[784]))
    return rows


def mnist_digits(shared_data: Path, n: int) -> list[tuple[object, int]]:
    """The first ``n`` real MNIST digits as ``(PIL image, label)``."""
    import numpy as np
    from PIL import Image

    rows = _mnist_rows(str(shared_data / "images" / "mnist_5k" / "mnist_5k.csv.gz"), max(n, 32))
    out = []
    for pixels, label in rows[:n]:
        arr = np.asarray(pixels, dtype=np.uint8).reshape(28, 28)
        out.append((Image.fromarray(arr, mode="L"), label))
    return out


def image_bytes(im, fmt: str) -> bytes:
    buf = io.BytesIO()
    (im.convert("RGB") if fmt == "JPEG" else im).save(buf, format=fmt)
    return buf.getvalue()


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def turn_probabilities(conf, weights, margin, m, c, j):
    """(P(c) P_c(turn), P(j) P_j(turn)): the chance that ``m`` more answers turn
    label ``c`` into ``j`` with truth c / with truth j, by enumerating every
    (annotator, label) sequence; the truth is c or j with the margin's odds.
    The brute-force reference for the settle tables."""
    import itertools

    import numpy as np

    w = np.asarray(weights, float) / np.sum(weights)
    p_c = 1 / (1 + np.exp(-margin))
    out = {}
    for truth, pt in ((c, p_c), (j, 1 - p_c)):
        total = 0.0
        for seq in itertools.product(range(len(w)), range(conf.shape[-1]), repeat=m):
            pr, s = 1.0, 0.0
            for a in range(m):
                u, lab = seq[2 * a], seq[2 * a + 1]
                pr *= w[u] * conf[u, truth, lab]
                s += np.log(conf[u, c, lab]) - np.log(conf[u, j, lab])
            if margin + s < 0:
                total += pt * pr
        out[truth] = total
    return out[c], out[j]


def predict(ws, project_id: int, preds: dict, version: int = 1) -> None:
    """Write ``predictions`` rows as the in-loop model does: item -> (label, confidence)."""
    from sqlalchemy import JSON, bindparam, text

    with ws.db.write() as conn:
        conn.execute(text(
            "INSERT INTO predictions (project_id, item_id, model_version, label, confidence, proba) "
            "VALUES (:p, :i, :v, :label, :c, :pr)").bindparams(
                bindparam("label", type_=JSON), bindparam("pr", type_=JSON)),
            [{"p": project_id, "i": i, "v": version, "label": lab, "c": c, "pr": [c, 1 - c]}
             for i, (lab, c) in preds.items()])


def run_cli(*args: str):
    """Run an ``assay`` command in-process (typer's CliRunner); the result."""
    from typer.testing import CliRunner

    from assay.cli import app

    return CliRunner().invoke(app, list(args))
