"""Background jobs: what runs without a request, and how.

The jobs (each round looks at every project; one project's failure is
logged and the round goes on with the others):

``lease-sweeper`` (:func:`sweep_leases`)
    returns the slots of expired leases to the pool, every
    ``reclaim_interval`` seconds (one batched statement over all projects).
``quality-and-model`` (:func:`refit_round`)
    re-fits annotator skills of projects whose answers grew enough
    (:meth:`Workspace.refits_due`, :meth:`Workspace.refit_quality`), then
    runs a model step (:func:`assay.learn.step.ml_step`) for projects whose model
    is due (:func:`assay.learn.step.ml_due` with :data:`assay.config.SCHEDULE`)
    or that were just re-fitted (a re-fit drops the model's prior from the
    consensus: the step puts it back in the same round), every
    ``refit_interval`` seconds.
``teaching`` (:func:`teach_round`)
    the detection round of teaching by nuance (:mod:`assay.engine.teach`) for
    every project with teaching on, every ``refit_interval`` seconds.
webhooks (:mod:`assay.jobs.webhooks`)
    answers to ML backends, from the ``answer.created`` event, on a
    per-process queue (not a leader job: the queue is in memory).

Backend prediction runs are not scheduled: ``POST …/ml-backend/predict``
starts one in a worker thread.

Curation runs (:mod:`assay.jobs.curation`) are not scheduled either: a
request (``POST /api/datasets/{id}/map``, ``assay map``) starts one worker
thread per (kind, dataset, space, variant) in a per-process registry that
reports queued/running/done/failed, and the result is cached in a file
beside the space's vector shards, keyed by a version of the input (now the
embedding map; duplicates and outliers fit the same registry).

:func:`server_jobs` lists the jobs with their intervals; the server starts
them on a :class:`ThreadRunner` whose leadership (:func:`leader.for_database`)
lets one process run each job across all processes sharing the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from assay.jobs import events, leader
from assay.jobs.runner import Job, Runner, ThreadRunner

__all__ = ["Job", "Runner", "ThreadRunner", "events", "leader", "server_jobs", "server_runner",
           "sweep_leases", "refit_round", "teach_round", "each_project"]

log = logging.getLogger("assay.jobs")


def each_project(what: str, project_ids: Iterable[int], fn: Callable[[int], Any]) -> dict[int, Any]:
    """``fn(pid)`` for each project; one that raises is logged and skipped.
    Returns ``{pid: result}`` of the projects that succeeded."""
    done = {}
    for pid in project_ids:
        try:
            done[pid] = fn(pid)
        except Exception:  # noqa: BLE001 - one project must not stop the others
            log.exception("%s failed for project %s", what, pid)
    return done


def sweep_leases(ws) -> int:
    """One round of the lease sweeper: how many expired leases were returned."""
    n = ws.reclaim_expired()
    if n:
        log.info("returned %d expired leases to the pool", n)
    return n


def refit_round(ws) -> dict[str, dict[int, Any]]:
    """One round of re-fits and model steps (see the module docstring):
    ``{"refitted": {pid: summary}, "stepped": {pid: summary}}`` of the
    projects that succeeded."""
    from assay.learn import step as ml_step_module
    from assay.config import SCHEDULE

    def refit(pid: int) -> dict:
        summary = ws.refit_quality(pid)
        log.info("re-fitted project %s: %s", pid, summary)
        return summary

    def step(pid: int) -> dict:
        summary = ml_step_module.ml_step(ws, pid)
        log.info("model step for project %s: version %s, %s auto-labeled",
                 pid, summary.get("version"), summary.get("auto_labeled"))
        return summary

    refitted = each_project("re-fit", ws.refits_due(), refit)
    due = set(ml_step_module.ml_due(ws, growth=SCHEDULE.ml_growth, min_new=SCHEDULE.ml_min_new))
    with_model = each_project("project lookup", refitted, lambda pid: ws.get_project(pid)["ml_space"] is not None)
    due |= {pid for pid, has in with_model.items() if has}
    stepped = each_project("model step", sorted(due), step)
    return {"refitted": refitted, "stepped": stepped}


def teach_round(ws) -> dict[int, Any]:
    """One detection round of teaching: ``{pid: needs opened and measured}``."""
    return each_project("teaching round", ws.teaching_projects(), ws.refresh_teaching)


def server_jobs(ws, *, reclaim_interval: float, refit_interval: float) -> list[Job]:
    """The server's jobs over ``ws``; an interval of 0 leaves its job out."""
    jobs = []
    if reclaim_interval > 0:
        jobs.append(Job("lease-sweeper", lambda: sweep_leases(ws), reclaim_interval, run_first=True))
    if refit_interval > 0:
        jobs.append(Job("quality-and-model", lambda: refit_round(ws), refit_interval))
        jobs.append(Job("teaching", lambda: teach_round(ws), refit_interval))
    return jobs


def server_runner(ws, *, reclaim_interval: float, refit_interval: float) -> ThreadRunner:
    """A started runner with :func:`server_jobs`, one leader per job across
    the processes sharing ``ws``'s database. Stop it with ``stop()``."""
    runner = ThreadRunner(leader.for_database(ws.db))
    for job in server_jobs(ws, reclaim_interval=reclaim_interval, refit_interval=refit_interval):
        runner.start(job)
    return runner
