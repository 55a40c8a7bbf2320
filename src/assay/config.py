"""One configuration object, read from the environment; the schedule of
background work, defined once.

Every ``ASSAY_*`` variable the package reads is a field of :class:`Config`
(:data:`VARIABLES` lists them with their meaning and default). Nothing else
in ``assay`` reads ``os.environ``: code asks :func:`config`, which reads the
environment once and again only when an ``ASSAY_*`` variable changed since
(a test's ``monkeypatch.setenv``, ``assay serve`` handing ``ASSAY_HOME`` to
its workers), so a setting changed at run time is seen at the next call, as
before. :func:`reload` forgets the cached object. A bad value is an
:class:`~assay.errors.InvalidInput` naming the variable, raised by the first
:func:`config` after it was set.

Where a value is read: ``Workspace()`` (home, database, pool size, account
rules), ``create_app`` (body limits, re-fit interval), each file import
(image and zip limits), each call to an ML backend (allow/deny lists, public
URL).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from assay.errors import InvalidInput


@dataclass(frozen=True)
class Schedule:
    """When background work runs: the one home of these numbers (the
    server's jobs, :meth:`Workspace.refits_due`, :func:`assay.learn.step.ml_due`)."""

    #: seconds between sweeps that return expired leases to the pool
    reclaim_interval: float = 5.0
    #: seconds between rounds of re-fits and model steps (``ASSAY_REFIT_INTERVAL``; 0 = off)
    refit_interval: float = 30.0
    #: a project's annotator skills are re-fitted once its answers grew by this share ...
    refit_growth: float = 0.25
    #: ... and by at least this many answers since the last re-fit
    refit_min_new: int = 200
    #: a fixed-overlap project's share instead: its skills shape only its final
    #: labels (answers after a fit are scored with the stored skills), not its
    #: hand-out, so it is re-fitted when its answers doubled
    refit_growth_fixed: float = 1.0
    #: a project's model trains again once its answers grew by this share ...
    ml_growth: float = 0.1
    #: ... and by at least this many answers since its last version
    ml_min_new: int = 50


#: the schedule's defaults (``config().schedule`` has the environment's interval)
SCHEDULE = Schedule()


# ---------------------------------------------------------------- parsing


def _text(name: str, raw: str) -> str | None:
    return raw.strip() or None


def _path(name: str, raw: str) -> Path | None:
    return Path(raw.strip()) if raw.strip() else None


def _positive(cast: Callable[[str], Any]) -> Callable[[str, str], Any]:
    def parse(name: str, raw: str) -> Any:
        try:
            v = cast(raw.strip())
        except ValueError:
            v = -1
        if not v > 0 or math.isinf(v):
            raise InvalidInput(f"{name} must be a positive number, got {raw!r}")
        return v
    return parse


def _non_negative(cast: Callable[[str], Any]) -> Callable[[str, str], Any]:
    def parse(name: str, raw: str) -> Any:
        try:
            v = cast(raw.strip())
        except ValueError:
            raise InvalidInput(f"{name} must be a number, got {raw!r}") from None
        if v < 0 or math.isnan(v) or math.isinf(v):
            raise InvalidInput(f"{name} must not be negative, got {raw!r}")
        return v
    return parse


@dataclass(frozen=True)
class Variable:
    """One environment variable: where it goes, how it is read, what it means."""

    env: str
    field: str
    parse: Callable[[str, str], Any]
    default: Any
    doc: str


VARIABLES: tuple[Variable, ...] = (
    Variable("ASSAY_HOME", "home", _path, None, "workspace folder (default ./assay-data)"),
    Variable("ASSAY_DATABASE_URL", "database_url", _text, None,
             "SQLAlchemy URL of the database (default: SQLite in the workspace folder)"),
    Variable("ASSAY_DB_POOL_SIZE", "db_pool_size", _positive(int), 10, "PostgreSQL connections per process"),
    Variable("ASSAY_PUBLIC_URL", "public_url", _text, None,
             "this server's address as ML backends reach it (for item content)"),
    Variable("ASSAY_BACKEND_ALLOW", "backend_allow", _text, None,
             "ML backend hosts allowed: CIDRs, addresses, host names, loopback, private, all"),
    Variable("ASSAY_BACKEND_DENY", "backend_deny", _text, None, "ML backend hosts denied (wins over allow)"),
    Variable("ASSAY_MAX_BODY_KB", "max_body_kb", _positive(float), 1024.0, "largest request body but uploads, KiB"),
    Variable("ASSAY_MAX_UPLOAD_MB", "max_upload_mb", _positive(float), 200.0, "largest upload, MiB"),
    Variable("ASSAY_REFIT_INTERVAL", "refit_interval", _non_negative(float), SCHEDULE.refit_interval,
             "seconds between background re-fits and model steps (0 = off)"),
    Variable("ASSAY_MAX_IMAGE_PIXELS", "max_image_pixels", _positive(lambda s: int(float(s))), 89_478_485,
             "most pixels of one image (all frames)"),
    Variable("ASSAY_MAX_IMAGE_MB", "max_image_mb", _positive(float), 64.0, "largest image file, MiB"),
    Variable("ASSAY_MAX_ZIP_MB", "max_zip_mb", _positive(float), 2048.0, "a zip's members unpacked together, MiB"),
    Variable("ASSAY_MAX_ZIP_RATIO", "max_zip_ratio", _positive(float), 100.0,
             "largest unpacked / packed size of one zip member"),
    Variable("ASSAY_MAX_ZIP_MEMBERS", "max_zip_members", _positive(lambda s: int(float(s))), 200_000,
             "most entries in one zip"),
    Variable("ASSAY_MIN_PASSWORD_LENGTH", "min_password_length", _non_negative(int), 8, "shortest password"),
    Variable("ASSAY_TOKEN_TTL_DAYS", "token_ttl_days", _non_negative(float), 7.0, "days a login token lives"),
    Variable("ASSAY_LOGIN_MAX_FAILURES", "login_max_failures", _non_negative(int), 5,
             "failed logins per username before a back-off"),
    Variable("ASSAY_LOGIN_MAX_FAILURES_PER_ADDRESS", "login_max_failures_per_address", _non_negative(int), 50,
             "failed logins per client address before a back-off"),
    Variable("ASSAY_LOGIN_BACKOFF_SECONDS", "login_backoff_seconds", _non_negative(float), 15.0,
             "first back-off after too many failed logins"),
    Variable("ASSAY_LOGIN_MAX_BACKOFF_SECONDS", "login_max_backoff_seconds", _non_negative(float), 900.0,
             "longest back-off"),
)


@dataclass(frozen=True)
class Config:
    """The process's configuration (see :data:`VARIABLES`)."""

    home: Path | None = None
    database_url: str | None = None
    db_pool_size: int = 10
    public_url: str | None = None
    backend_allow: str | None = None
    backend_deny: str | None = None
    max_body_kb: float = 1024.0
    max_upload_mb: float = 200.0
    refit_interval: float = SCHEDULE.refit_interval
    max_image_pixels: int = 89_478_485
    max_image_mb: float = 64.0
    max_zip_mb: float = 2048.0
    max_zip_ratio: float = 100.0
    max_zip_members: int = 200_000
    min_password_length: int = 8
    token_ttl_days: float = 7.0
    login_max_failures: int = 5
    login_max_failures_per_address: int = 50
    login_backoff_seconds: float = 15.0
    login_max_backoff_seconds: float = 900.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Read every variable of :data:`VARIABLES` (unset or blank: the
        default); InvalidInput naming the first bad one."""
        env = os.environ if environ is None else environ
        values = {}
        for v in VARIABLES:
            raw = env.get(v.env)
            if raw is not None and raw.strip():
                values[v.field] = v.parse(v.env, raw)
        return cls(**values)

    @property
    def schedule(self) -> Schedule:
        """:data:`SCHEDULE` with this configuration's re-fit interval."""
        return replace(SCHEDULE, refit_interval=self.refit_interval)


_lock = threading.Lock()
_cached: tuple[tuple, Config] | None = None


def _fingerprint() -> tuple:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("ASSAY_")))


def config() -> Config:
    """The configuration (read from the environment once; again only when an
    ``ASSAY_*`` variable changed)."""
    global _cached
    key = _fingerprint()
    hit = _cached
    if hit is not None and hit[0] == key:
        return hit[1]
    with _lock:
        cfg = Config.from_env()
        _cached = (key, cfg)
    return cfg


def reload() -> Config:
    """Read the environment again now."""
    global _cached
    with _lock:
        _cached = None
    return config()
