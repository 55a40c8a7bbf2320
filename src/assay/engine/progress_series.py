"""A project's live progress over time: answers per hour, time per item and
agreement with the final label per time bucket, for the project and per
annotator, and the in-loop model's accuracy per version.

Everything is aggregated by the database: one ``GROUP BY`` (bucket,
annotator) over the answers of the window, read through the index
``ix_answers_project_created`` (project_id, created_at); what comes back is
at most buckets x annotators rows, whatever the number of answers. Buckets
are aligned to the epoch (``floor(created_at / seconds)``, UTC), so a closed
bucket's rows can be kept (:class:`SeriesCache`) and a poll reads only the
answers of the open bucket.

Agreement is the share of the bucket's answers on items with a stored final
label that equal it (:data:`assay.engine.resolver.STORED_LABEL`: gold or a
review, else the consensus row, else the auto-label; items whose label the
resolver would take by majority vote are not counted). Only kinds whose
label is one class (``aggregatable``) compare labels as equal values; other
kinds get no agreement here (the quality page scores them).
"""

from __future__ import annotations

import math
import threading
import time

from sqlalchemy import JSON, bindparam, text

from assay import kinds
from assay.engine import resolver as _resolver
from assay.errors import InvalidInput

#: bucket names and their length in seconds
BUCKETS = {"minute": 60, "hour": 3600, "day": 86400}
#: at most this many buckets in a window
MAX_BUCKETS = 200
#: a cached window is read whole again after this long (undo, reviews and
#: re-fits change closed buckets a little: they show within this time)
CACHE_SECONDS = 300.0


# created_at >= 0: truncation is the floor on SQLite; PostgreSQL's cast rounds
_K_SQLITE = "CAST(a.created_at / :b AS INTEGER)"
_K_PG = "CAST(floor(a.created_at / :b) AS BIGINT)"
_SELECT = ("SELECT {k} AS k, a.annotator_id AS u, count(*) AS n, "
           "COALESCE(SUM(a.lead_time), 0) AS lt_sum, count(a.lead_time) AS lt_n")
_AGREE = (f", SUM(CASE WHEN {_resolver.STORED_LABEL} IS NULL THEN 0 ELSE 1 END) AS judged, "
          f"SUM(CASE WHEN CAST(a.label AS TEXT) = CAST({_resolver.STORED_LABEL} AS TEXT) THEN 1 ELSE 0 END) AS agree "
          f"FROM answers a {_resolver.STORED_JOINS}")
_NO_AGREE = ", 0 AS judged, 0 AS agree FROM answers a "
_WHERE = "WHERE a.project_id = :p AND a.created_at >= :since GROUP BY {k}, a.annotator_id"
_SQLITE_SELECT = _SELECT.format(k=_K_SQLITE)
_PG_SELECT = _SELECT.format(k=_K_PG)
_SQLITE_WHERE = _WHERE.format(k=_K_SQLITE)
_PG_WHERE = _WHERE.format(k=_K_PG)
#: (dialect, with agreement) -> the (bucket, annotator) aggregate of a window's answers
_ROWS = {
    ("sqlite", True): text(_SQLITE_SELECT + _AGREE + _SQLITE_WHERE),
    ("sqlite", False): text(_SQLITE_SELECT + _NO_AGREE + _SQLITE_WHERE),
    ("postgresql", True): text(_PG_SELECT + _AGREE + _PG_WHERE),
    ("postgresql", False): text(_PG_SELECT + _NO_AGREE + _PG_WHERE),
}
_MODELS = text("SELECT version, trained_at, n_train, oof_accuracy, metrics FROM ml_models "
               "WHERE project_id = :p ORDER BY version DESC LIMIT :n").columns(metrics=JSON)
_USERS = text("SELECT id, username FROM users WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))


class SeriesCache:
    """Closed buckets' rows per (project, bucket length): (read whole at,
    the first open bucket then, {(k, user): row}, the first bucket read). One lock; tiny."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[int, int], tuple[float, int, dict]] = {}

    def get(self, key: tuple[int, int], now: float):
        with self._lock:
            hit = self._entries.get(key)
        if hit is None or now - hit[0] > CACHE_SECONDS:
            return None
        return hit

    def put(self, key: tuple[int, int], value: tuple[float, int, dict, int]) -> None:
        with self._lock:
            if len(self._entries) > 64:
                self._entries.clear()
            self._entries[key] = value


def _read(db, p: dict, since: float, seconds: int, with_agreement: bool) -> dict:
    with db.read() as conn:
        rows = conn.execute(_ROWS[db.dialect, with_agreement], {"p": p["id"], "since": since, "b": seconds}).all()
    return {(int(r.k), int(r.u)): (int(r.n), float(r.lt_sum or 0), int(r.lt_n), int(r.judged or 0),
                                   int(r.agree or 0)) for r in rows}


def _rows(db, p: dict, seconds: int, first: int, open_k: int, cache: SeriesCache | None,
          with_agreement: bool, now: float) -> dict:
    """{(bucket, annotator): (answers, lead time sum, lead times, judged, agree)}
    for buckets ``first`` .. ``open_k``: closed ones from the cache where it has them."""
    key = (p["id"], seconds)
    hit = cache.get(key, now) if cache is not None else None
    if hit is not None and (hit[1] <= first or hit[3] > first):
        hit = None  # the kept rows do not cover this window's closed buckets
    if hit is None:
        rows = _read(db, p, first * seconds, seconds, with_agreement)
        read_at = now
    else:
        read_at, cached_open, closed, _ = hit
        rows = {kk: v for kk, v in closed.items() if first <= kk[0] < cached_open}
        rows.update(_read(db, p, cached_open * seconds, seconds, with_agreement))
    if cache is not None and (hit is None or hit[1] != open_k):  # same open bucket: the kept rows stand
        kept_from = first if hit is None else hit[3]
        cache.put(key, (read_at, open_k, {kk: v for kk, v in rows.items() if kk[0] < open_k}, kept_from))
    return rows


def _point(start: float, length: float, n: int, lt_sum: float, lt_n: int, judged: int, agree: int) -> dict:
    return {"start": start, "answers": n, "per_hour": n * 3600.0 / length if length > 0 else None,
            "seconds_per_item": lt_sum / lt_n if lt_n else None,
            "judged": judged, "agreement": agree / judged if judged else None}


def series(db, p: dict, *, bucket: str = "hour", buckets: int = 48, now: float | None = None,
           cache: SeriesCache | None = None, series_of: str | int = "all") -> dict:
    """The project's progress over the last ``buckets`` buckets of ``bucket``
    (``minute``, ``hour`` or ``day``), the open one last: per bucket (answers,
    answers per hour — the open bucket's over the time it has run — mean
    seconds per item from the answers' lead time, agreement with the final
    label) for the project and each annotator who answered in the window, and
    the model's versions trained in the window (out-of-fold and validation
    accuracy).

    ``series_of`` picks whose per-bucket series the annotators' entries carry
    (every annotator keeps the window's totals): ``"all"``, ``"none"`` or one
    user id — the admin page asks for the annotator it shows (at 100
    annotators x 48 buckets the whole answer is ~580 KB, one series ~6 KB)."""
    if bucket not in BUCKETS:
        raise InvalidInput(f"unknown bucket {str(bucket)[:20]!r}: use one of {', '.join(BUCKETS)}")
    buckets = int(buckets)
    if not 1 <= buckets <= MAX_BUCKETS:
        raise InvalidInput(f"buckets must be between 1 and {MAX_BUCKETS}")
    wanted = _series_of(series_of)
    seconds = BUCKETS[bucket]
    now = time.time() if now is None else float(now)
    open_k = math.floor(now / seconds)
    first = open_k - buckets + 1
    with_agreement = kinds.of(p).aggregatable
    rows = _rows(db, p, seconds, first, open_k, cache, with_agreement, now)
    totals: dict[int, list] = {}
    per_user: dict[int, dict[int, tuple]] = {}
    for (k, u), v in rows.items():
        t = totals.setdefault(k, [0, 0.0, 0, 0, 0])
        for i in range(5):
            t[i] += v[i]
        per_user.setdefault(u, {})[k] = v

    spans = [(k, k * seconds, max(1.0, now - k * seconds) if k == open_k else float(seconds))
             for k in range(first, open_k + 1)]
    empty = (0, 0.0, 0, 0, 0)

    def points(by_k: dict) -> list[dict]:  # ~5,000 points at 100 annotators x 48 buckets: kept lean
        get = by_k.get
        return [_point(start, length, *get(k, empty)) for k, start, length in spans]

    annotators = []
    users = usernames(db, sorted(per_user))
    for u in sorted(per_user):
        tot = [sum(v[i] for v in per_user[u].values()) for i in range(5)]
        whole = _point(first * seconds, now - first * seconds, *tot)
        entry = {"user_id": u, "username": users.get(u), **whole}
        if wanted == "all" or wanted == u:
            entry["series"] = points(per_user[u])
        annotators.append(entry)
    window = [sum(t[i] for t in totals.values()) for i in range(5)]
    return {
        "project_id": p["id"], "bucket": bucket, "seconds": seconds, "since": first * seconds, "now": now,
        "agreement_measured": with_agreement,
        "window": _point(first * seconds, now - first * seconds, *window),
        "series": points(totals), "annotators": annotators,
        "model": _model(db, p["id"], first * seconds),
    }


def _series_of(value: str | int) -> str | int | None:
    """``series_of`` read: "all", None (no annotator's series) or one user id."""
    if isinstance(value, bool):
        raise InvalidInput("series_of is 'all', 'none' or a user id")
    if isinstance(value, int):
        return value
    text_ = str(value).strip().lower()
    if text_ in ("all", "none"):
        return "all" if text_ == "all" else None
    if text_.isdigit() and len(text_) <= 18:
        return int(text_)
    raise InvalidInput(f"series_of is 'all', 'none' or a user id, not {str(value)[:20]!r}")


def _model(db, project_id: int, since: float) -> list[dict]:
    """The model's versions trained since ``since`` (the latest 500), oldest first."""
    with db.read() as conn:
        rows = conn.execute(_MODELS, {"p": project_id, "n": 500}).all()
    out = []
    for r in reversed(rows):
        if r.trained_at < since:
            continue
        m = r.metrics if isinstance(r.metrics, dict) else {}
        out.append({"version": r.version, "trained_at": r.trained_at, "n_train": r.n_train,
                    "oof_accuracy": r.oof_accuracy, "validation_accuracy": m.get("validation_accuracy")})
    return out


def usernames(db, ids: list[int]) -> dict[int, str]:
    """{user id: username} for ``ids`` (at most the window's annotators)."""
    if not ids:
        return {}
    with db.read() as conn:
        return {int(r.id): r.username for r in conn.execute(_USERS, {"ids": [int(i) for i in ids]})}
